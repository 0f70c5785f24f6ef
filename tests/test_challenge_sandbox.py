"""`fusionbrain challenge run`: submissions in the bubblewrap sandbox.

Well-behaved submissions score exactly what `fusionbrain score` gives; hostile ones (reading
the truths, network, escaping processes, sleeping, allocating, writing 10 GB, malformed
predictions) fail safely and are reported with their reason. Limits are small (4 s, 300 MB)
so the module stays fast. Network tests only ever talk to a server on 127.0.0.1 that the
test itself runs.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from fusionbrain.challenge import runner, sandbox
from fusionbrain.challenge.config import ChallengeConfig, Layout
from fusionbrain.challenge.store import Store
from fusionbrain.challenge.submission import pack
from fusionbrain.cli import main
from fusionbrain.errors import UserError
from fusionbrain.scoring import score_dir

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "submissions"


def _bwrap_problem() -> str | None:
    try:
        sandbox.check_bwrap()
    except UserError as e:
        return str(e)
    return None


# As root (CI), scripts/setup.sh installs bubblewrap, so the sandbox tests must run there.
_PROBLEM = _bwrap_problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None and os.geteuid() != 0,
                                reason=f"no usable bwrap: {_PROBLEM}")


def folder_submission(root: Path, code: str, **meta) -> Path:
    root.mkdir(parents=True)
    (root / "metadata.json").write_text(json.dumps(
        {"entrypoint": "python run.py", "method": "test", **meta}))
    (root / "run.py").write_text(code)
    out = root.with_suffix(".zip")
    pack(root, out)
    return out


@pytest.fixture(scope="module")
def baseline_zip(tmp_path_factory, data) -> Path:
    d = tmp_path_factory.mktemp("ex") / "trivial-baselines"
    shutil.copytree(EXAMPLES / "trivial-baselines", d)
    subprocess.run([sys.executable, str(d / "prepare.py"), "--data", str(data)], check=True,
                   capture_output=True)
    out = d.parent / "baseline.zip"
    assert main(["challenge", "pack", str(d), "--out", str(out)]) == 0
    return out


def _rows(root: Path) -> dict[int, dict]:
    with Store(Layout(root).database) as store:
        return {r["id"]: r for r in store.all()}


def test_bwrap_is_usable_here():
    assert _PROBLEM is None, _PROBLEM


def test_the_truths_are_never_mounted(tmp_path):
    secret = tmp_path / "hidden" / "true"
    secret.mkdir(parents=True)
    spec = sandbox.SandboxSpec(submission=tmp_path / "sub", input=tmp_path / "hidden" / "input",
                               entrypoint="true", time_limit_s=1, memory_bytes=1 << 28,
                               output_bytes=1 << 20, tmp_bytes=1 << 20, forbidden=[secret])
    argv = sandbox.bwrap_argv("bwrap", spec, 3)
    assert not any(str(secret) in a for a in argv)
    assert {"--unshare-all", "--die-with-parent", "--new-session"} <= set(argv)
    # /tmp is mounted before the environment, which may live under /tmp itself
    env = str(sandbox.python_paths()[0])
    assert argv.index("/tmp") < argv.index(env)
    # a challenge folder inside a mounted folder would expose the truths: refused
    bad = sandbox.SandboxSpec(**{**spec.__dict__, "input": tmp_path})
    with pytest.raises(UserError, match="visible"):
        sandbox.bwrap_argv("bwrap", bad, 3)


def test_baseline_submission_scores_exactly_like_fusionbrain_score(tmp_path, data,
                                                                   baseline_zip, capsys):
    root = tmp_path / "ch"
    runner.init(root, data, ChallengeConfig(time_limit_s=60, memory_limit_mb=1024),
                log=lambda s: None)
    assert main(["challenge", "submit", str(root), str(baseline_zip), "--team", "alpha"]) == 0
    assert main(["challenge", "run", str(root)]) == 0
    capsys.readouterr()
    rows = _rows(root)
    base, sub = rows[1], rows[2]
    assert sub["status"] == "scored", sub
    assert sub["reason"] == "" and "bwrap" in sub["sandbox"]
    layout = Layout(root)
    out = layout.runs / "2" / "output"
    # all items: the very numbers of `fusionbrain score` on the same prediction files
    assert main(["score", "--pred-dir", str(out), "--true-dir", str(data / "test" / "true"),
                 "--json"]) == 0
    ref = json.loads(capsys.readouterr().out)
    assert sub["scores"]["all"]["S"] == ref["S"]
    for task, r in ref["tasks"].items():
        assert sub["scores"]["all"]["tasks"][task]["score"] == r["score"]
    # each part: `score_dir` on files the test cuts to that part's keys itself
    split = json.loads(layout.split.read_text())
    for part in ("public", "private"):
        d = tmp_path / part
        for sub_dir in ("pred", "true"):
            (d / sub_dir).mkdir(parents=True)
        for task, keys in split["tasks"].items():
            pred = json.loads((out / f"prediction_{task}.json").read_text())
            true = json.loads((data / "test" / "true" / f"true_{task}.json").read_text())
            (d / "pred" / f"prediction_{task}.json").write_text(
                json.dumps({k: pred[k] for k in keys[part]}))
            (d / "true" / f"true_{task}.json").write_text(
                json.dumps({k: true[k] for k in keys[part]}))
        ref = score_dir(d / "pred", d / "true")
        assert sub["scores"][part]["S"] == ref["S"]
        for task, r in ref["tasks"].items():
            assert sub["scores"][part]["tasks"][task]["score"] == r["score"]
    # the organiser's baseline row (computed outside the sandbox) agrees
    assert base["is_baseline"] and base["scores"] == sub["scores"]
    assert main(["challenge", "leaderboard", str(root), "--html", str(tmp_path / "lb.html")]) == 0
    table = capsys.readouterr().out
    assert "alpha" in table and "baseline *" in table
    assert "alpha" in (tmp_path / "lb.html").read_text()
    assert main(["challenge", "leaderboard", str(root), "--json", "--private"]) == 0
    js = json.loads(capsys.readouterr().out)
    assert js["submissions"][1]["private"]["S"] == sub["scores"]["private"]["S"]


# -- hostile submissions ---------------------------------------------------------------------

class _Server:
    """A TCP server on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop = True
        self.thread.join()
        self.sock.close()


EMPTY_PREDICTIONS = """
import json, os
for t in ("C2C", "HTR", "zsOD", "VQA"):
    with open(f"/output/prediction_{t}.json", "w") as f:
        json.dump({}, f)
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, data):
    """One challenge folder; every hostile submission queued and run once."""
    tmp = tmp_path_factory.mktemp("hostile")
    root = tmp / "ch"
    cfg = ChallengeConfig(time_limit_s=4, memory_limit_mb=300, output_limit_mb=128,
                          tmp_limit_mb=32, max_prediction_mb=16, submissions_per_day=100)
    runner.init(root, data, cfg, baseline=False, log=lambda s: None)
    truth = Layout(root).true / "true_HTR.json"
    marker = f"fb-daemon-{uuid.uuid4().hex}"
    server = _Server()
    codes = {
        "truth_abs": f"print(open({str(truth)!r}).read())\n",
        "truth_rel": "import os\nprint(os.getcwd())\n"
                     f"print(open('../' * 12 + {str(truth).lstrip('/')!r}).read())\n",
        "truth_up": "print(open('../../../hidden/true/true_HTR.json').read())\n",
        "socket": f"import socket\nsocket.create_connection(('127.0.0.1', {server.port}), "
                  "timeout=2).sendall(b'stolen')\n",
        "daemon": "import subprocess, sys, time\n"
                  f"subprocess.Popen([sys.executable, '-c', 'import time  # {marker}\\n"
                  "time.sleep(60)'], start_new_session=True)\n"
                  f"subprocess.Popen(['/bin/sh', '-c', '(sleep 60; echo {marker}) &'])\n"
                  + EMPTY_PREDICTIONS + "time.sleep(0.5)\nprint('daemons started')\n",
        "sleep": "import time\ntime.sleep(60)\n",
        "memory": "x = b'x' * (1 << 30)\nprint(len(x))\n",
        "write_10gb": "chunk = b'0' * (1 << 20)\n"
                      "with open('/output/prediction_HTR.json', 'wb') as f:\n"
                      "    for _ in range(10 * 1024):\n"
                      "        f.write(chunk)\n",
        "write_tmp": "chunk = b'0' * (1 << 20)\n"
                     "with open('/tmp/big', 'wb') as f:\n"
                     "    for _ in range(10 * 1024):\n"
                     "        f.write(chunk)\n",
        "bad_predictions": """
import json
true_like = json.load(open('/input/zsOD/requests.json'))
vqa = json.load(open('/input/VQA/questions.json'))
json.dump({"wrong-" + k: "yes" for k in vqa}, open('/output/prediction_VQA.json', 'w'))
json.dump({img: {ph: [[float('nan')] * 5] for ph in phrases} for img, phrases in true_like.items()},
          open('/output/prediction_zsOD.json', 'w'))
with open('/output/prediction_HTR.json', 'w') as f:
    f.write('{"0.png": "')
    for _ in range(100):
        f.write('x' * (1 << 20))
    f.write('"}')
with open('/output/prediction_C2C.json', 'w') as f:
    f.write('{"0": ')
""",
        "no_output": "print('nothing written')\n",
        "crash": "import sys\nprint('bye', file=sys.stderr)\nsys.exit(7)\n",
    }
    ids = {}
    for name, code in codes.items():
        z = folder_submission(tmp / name, code)
        ids[name] = runner.submit(root, z, f"team-{name}")
    try:
        runner.run_queue(root, log=lambda s: None)
    finally:
        server.close()
    rows = _rows(root)
    return {"rows": {name: rows[i] for name, i in ids.items()}, "root": root,
            "server": server, "marker": marker, "truth": truth}


def _failed(h, name: str, reason: str) -> dict:
    row = h["rows"][name]
    assert row["status"] == "failed", row
    assert reason in row["reason"], row["reason"]
    return row


@pytest.mark.parametrize("name", ["truth_abs", "truth_rel", "truth_up"])
def test_reading_the_truth_fails(hostile, name):
    row = _failed(hostile, name, "crashed: exit code 1")
    assert "FileNotFoundError" in row["stderr_tail"]
    assert "0.png" not in row["stdout_tail"]  # nothing of the truth came out


def test_network_is_unreachable(hostile):
    row = _failed(hostile, "socket", "crashed")
    assert hostile["server"].accepted == 0
    assert "ConnectionRefusedError" in row["stderr_tail"] or "unreachable" in row["stderr_tail"]


def test_forked_processes_do_not_outlive_the_run(hostile):
    row = hostile["rows"]["daemon"]
    assert "daemons started" in row["stdout_tail"]
    assert row["status"] == "scored"  # its (empty) predictions are scored: all wrong
    marker = hostile["marker"].encode()
    alive = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if marker in (p / "cmdline").read_bytes():
                    alive.append(p.name)
            except OSError:
                pass
    assert alive == []


def test_sleeping_past_the_time_limit_is_killed(hostile):
    row = _failed(hostile, "sleep", "time limit")
    assert row["wall_s"] < 30


def test_allocating_past_the_memory_limit(hostile):
    _failed(hostile, "memory", "memory limit")


@pytest.mark.parametrize("name", ["write_10gb", "write_tmp"])
def test_writing_10_gb_is_stopped_by_the_cap(hostile, name):
    row = _failed(hostile, name, "output limit")
    assert row["wall_s"] < 30
    root = hostile["root"]
    used = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    assert used < 20 << 20  # nothing of it (nor of the 100 MB prediction) is on the disk


def test_malformed_predictions_are_scored_as_the_scorer_judges_them(hostile):
    row = hostile["rows"]["bad_predictions"]
    assert row["status"] == "scored", row
    tasks = row["scores"]["all"]["tasks"]
    assert "wrong" in tasks["VQA"]["error"] or "missing" in tasks["VQA"]["error"]
    assert "finite" in tasks["zsOD"]["error"] or "NaN" in tasks["zsOD"]["error"]
    assert "limit" in tasks["HTR"]["error"]
    assert "C2C" in row["reason"] and tasks["C2C"]["error"]
    assert all(t["score"] == 0 for t in tasks.values())
    assert row["scores"]["public"]["S"] == 0


def test_no_output_and_crash_are_reported(hostile):
    _failed(hostile, "no_output", "no prediction files")
    row = _failed(hostile, "crash", "crashed: exit code 7")
    assert "bye" in row["stderr_tail"]


def test_refuses_without_a_working_bwrap(hostile, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: None)
    assert main(["challenge", "run", str(hostile["root"])]) == 2
    err = capsys.readouterr().err
    assert "bwrap" in err and "--unsafe-no-sandbox" in err and err.count("\n") == 1
    # a bwrap that cannot make its namespaces (here: one that always fails)
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: "/bin/false")
    assert main(["challenge", "run", str(hostile["root"])]) == 2
    err = capsys.readouterr().err
    assert "cannot create its namespaces" in err and err.count("\n") == 1


def test_unsafe_mode_runs_the_baseline_without_isolation(tmp_path, data, baseline_zip, capsys):
    root = tmp_path / "ch"
    runner.init(root, data, ChallengeConfig(), log=lambda s: None)
    runner.submit(root, baseline_zip, "alpha")
    assert main(["challenge", "run", str(root), "--unsafe-no-sandbox"]) == 0
    assert "WARNING" in capsys.readouterr().out
    rows = _rows(root)
    assert rows[2]["status"] == "scored" and "NONE" in rows[2]["sandbox"]
    assert rows[2]["scores"] == rows[1]["scores"]


def test_memory_limit_without_a_cgroup_falls_back_to_rlimit_as(tmp_path, data, monkeypatch):
    """Where no cgroup can be made (e.g. a non-delegated cgroup v2), RLIMIT_AS holds."""
    monkeypatch.setattr(sandbox.MemoryLimit, "_try_v2", lambda self: False)
    monkeypatch.setattr(sandbox.MemoryLimit, "_try_v1", lambda self: False)
    root = tmp_path / "ch"
    runner.init(root, data, ChallengeConfig(time_limit_s=20, memory_limit_mb=300),
                baseline=False, log=lambda s: None)
    hog = runner.submit(root, folder_submission(tmp_path / "hog", "x = b'x' * (1 << 30)\n"),
                        "hog")
    ok = runner.submit(root, folder_submission(tmp_path / "ok", EMPTY_PREDICTIONS), "ok")
    runner.run_queue(root, log=lambda s: None)
    rows = _rows(root)
    assert rows[hog]["status"] == "failed" and "memory limit" in rows[hog]["reason"]
    assert "RLIMIT_AS" in rows[hog]["reason"] and "MemoryError" in rows[hog]["stderr_tail"]
    assert rows[ok]["status"] == "scored", rows[ok]


def test_fusionbrain_predict_submission_runs_in_the_sandbox(tmp_path, data):
    """The example wrapping `fusionbrain predict` (a tiny random model here): torch, the
    model and the packed tokenizer cache load read-only, offline, inside the sandbox."""
    torch = pytest.importorskip("torch")
    from fusionbrain.model import FusionBrain

    torch.manual_seed(0)
    FusionBrain("tiny").save_pretrained(tmp_path / "model")
    d = tmp_path / "fusionbrain-predict"
    shutil.copytree(EXAMPLES / "fusionbrain-predict", d)
    subprocess.run([sys.executable, str(d / "prepare.py"), "--model", str(tmp_path / "model")],
                   check=True, capture_output=True)
    z = tmp_path / "fp.zip"
    pack(d, z)
    root = tmp_path / "ch"
    runner.init(root, data, ChallengeConfig(time_limit_s=300, memory_limit_mb=4096),
                baseline=False, log=lambda s: None)
    sub = runner.submit(root, z, "fusion")
    runner.run_queue(root, log=lambda s: None)
    row = _rows(root)[sub]
    assert row["status"] == "scored", (row["reason"], row["stderr_tail"])
    assert row["reason"] == ""  # every task's file was there and well-formed
    assert set(row["scores"]["all"]["tasks"]) == {"C2C", "HTR", "zsOD", "VQA"}
    from fusionbrain.challenge.leaderboard import rows

    ranked = rows(list(_rows(root).values()))
    assert ranked[0]["multitask"]["passed"] and ranked[0]["multitask"]["ratio"] > 0.3
