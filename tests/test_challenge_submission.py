"""`fusionbrain challenge`: zip checks (zip-slip, links, bombs), submit rules (daily limit,
duplicates, team), config, split, scoring policy and the leaderboard — no sandbox needed."""

from __future__ import annotations

import io
import json
import stat
import struct
import zipfile
from pathlib import Path

import pytest

from fusionbrain.challenge import leaderboard as lb
from fusionbrain.challenge import runner
from fusionbrain.challenge.config import ChallengeConfig, Layout, parse_overrides
from fusionbrain.challenge.store import Store
from fusionbrain.challenge.submission import Limits, check_zip, extract_zip, pack
from fusionbrain.cli import main
from fusionbrain.errors import UserError

META = {"entrypoint": "python run.py", "team": "", "method": "test"}
LIMITS = Limits(max_zip_bytes=50 << 20, max_unpacked_bytes=20 << 20, max_files=100)


def make_zip(path: Path, files: dict, meta: dict | None = META) -> Path:
    """files: name -> bytes | str | ZipInfo-tuple (ZipInfo, data)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        if meta is not None:
            zf.writestr("metadata.json", json.dumps(meta))
        for name, data in files.items():
            if isinstance(data, tuple):
                zf.writestr(*data)
            else:
                zf.writestr(name, data)
    return path


@pytest.fixture()
def challenge(tmp_path, data) -> Path:
    root = tmp_path / "ch"
    runner.init(root, data, ChallengeConfig(submissions_per_day=2, max_unpacked_mb=20,
                                            max_zip_mb=50), log=lambda s: None)
    return root


# -- zip checks --------------------------------------------------------------------------

def test_good_zip_passes_and_unpacks(tmp_path):
    z = make_zip(tmp_path / "s.zip", {"run.py": "print(1)\n", "w/weights.bin": b"\0" * 1000})
    assert check_zip(z, LIMITS)["entrypoint"] == "python run.py"
    extract_zip(z, tmp_path / "x", LIMITS)
    assert (tmp_path / "x" / "w" / "weights.bin").stat().st_size == 1000


@pytest.mark.parametrize("name, why", [
    ("../evil.py", "'..'"), ("a/../../evil.py", "'..'"), ("/etc/evil", "absolute"),
    ("C:/evil", "absolute"), ("..\\evil.py", "backslash")])
def test_zip_slip_names_are_rejected(tmp_path, name, why):
    z = make_zip(tmp_path / "s.zip", {name: "x"})
    with pytest.raises(UserError, match=why) as e:
        check_zip(z, LIMITS)
    assert "\n" not in str(e.value)
    with pytest.raises(UserError):
        extract_zip(z, tmp_path / "x", LIMITS)
    assert not (tmp_path / "evil.py").exists() and not (tmp_path / "x" / "evil.py").exists()


@pytest.mark.parametrize("kind, word", [(stat.S_IFLNK, "symlink"), (stat.S_IFCHR, "device"),
                                        (stat.S_IFIFO, "FIFO")])
def test_links_and_special_files_are_rejected(tmp_path, kind, word):
    info = zipfile.ZipInfo("link")
    info.create_system = 3
    info.external_attr = (kind | 0o777) << 16
    z = make_zip(tmp_path / "s.zip", {"link": (info, "/hidden/true/true_HTR.json")})
    with pytest.raises(UserError, match=word):
        check_zip(z, LIMITS)
    with pytest.raises(UserError, match=word):
        extract_zip(z, tmp_path / "x", LIMITS)
    assert not (tmp_path / "x" / "link").exists()


def test_zip_bomb_by_declared_size_is_rejected(tmp_path):
    z = make_zip(tmp_path / "bomb.zip", {"zeros.bin": b"\0" * (40 << 20)})
    assert z.stat().st_size < 1 << 20  # 40 MB of zeros pack to ~40 KB
    with pytest.raises(UserError, match="zip bomb"):
        check_zip(z, LIMITS)


def test_zip_bomb_with_lying_headers_is_rejected(tmp_path):
    """Headers claim 1000 bytes; the data inflates to 10 MB: caught while decompressing."""
    z = make_zip(tmp_path / "liar.zip", {"zeros.bin": b"\0" * (10 << 20)})
    raw = bytearray(z.read_bytes())
    for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        i = 0
        while (i := raw.find(sig, i)) >= 0:
            name_len = struct.unpack_from("<H", raw, i + (26 if sig == b"PK\x03\x04" else 28))[0]
            start = i + (30 if sig == b"PK\x03\x04" else 46)
            if raw[start:start + name_len] == b"zeros.bin":
                struct.pack_into("<I", raw, i + off, 1000)
            i += 4
    z.write_bytes(bytes(raw))
    with pytest.raises(UserError, match="declared size|corrupt"):
        check_zip(z, LIMITS)
    with pytest.raises(UserError):
        extract_zip(z, tmp_path / "x", LIMITS)
    assert (tmp_path / "x" / "zeros.bin").stat().st_size <= 1 << 20


def test_other_zip_problems(tmp_path):
    with pytest.raises(UserError, match="not a valid zip"):
        (tmp_path / "junk.zip").write_bytes(b"not a zip")
        check_zip(tmp_path / "junk.zip", LIMITS)
    with pytest.raises(UserError, match="no metadata.json"):
        check_zip(make_zip(tmp_path / "a.zip", {"run.py": "x"}, meta=None), LIMITS)
    with pytest.raises(UserError, match="entrypoint"):
        check_zip(make_zip(tmp_path / "b.zip", {}, meta={"team": "x"}), LIMITS)
    with pytest.raises(UserError, match="parameters"):
        check_zip(make_zip(tmp_path / "c.zip", {}, meta={**META, "parameters": {"total": 1}}),
                  LIMITS)
    with pytest.raises(UserError, match="entries"):
        check_zip(make_zip(tmp_path / "d.zip", {f"f{i}": "x" for i in range(101)}), LIMITS)
    with pytest.raises(UserError, match="twice"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf, pytest.warns(UserWarning):
            zf.writestr("metadata.json", json.dumps(META))
            zf.writestr("run.py", "a")
            zf.writestr("run.py", "b")
        (tmp_path / "e.zip").write_bytes(buf.getvalue())
        check_zip(tmp_path / "e.zip", LIMITS)


def test_pack_refuses_symlinks_and_round_trips(tmp_path):
    src = tmp_path / "sub"
    src.mkdir()
    (src / "metadata.json").write_text(json.dumps(META))
    (src / "run.py").write_text("print(1)\n")
    assert pack(src, tmp_path / "s.zip") == 2
    assert check_zip(tmp_path / "s.zip", LIMITS)["method"] == "test"
    (src / "link").symlink_to("/etc/passwd")
    with pytest.raises(UserError, match="symlink|regular"):
        pack(src, tmp_path / "t.zip")


# -- submit ------------------------------------------------------------------------------

def test_submit_stores_content_addressed_and_enforces_rules(challenge, tmp_path, capsys):
    z1 = make_zip(tmp_path / "1.zip", {"run.py": "print(1)"})
    z2 = make_zip(tmp_path / "2.zip", {"run.py": "print(2)"})
    z3 = make_zip(tmp_path / "3.zip", {"run.py": "print(3)"})
    a = runner.submit(challenge, z1, "alpha")
    layout = Layout(challenge)
    from fusionbrain.challenge.store import sha256_file

    assert (layout.zips / f"{sha256_file(z1)}.zip").read_bytes() == z1.read_bytes()
    # the same zip again: refused, one line, exit 2
    assert main(["challenge", "submit", str(challenge), str(z1), "--team", "alpha"]) == 2
    err = capsys.readouterr().err
    assert f"#{a}" in err and err.count("\n") == 1
    runner.submit(challenge, z2, "alpha")
    with pytest.raises(UserError, match="daily limit"):
        runner.submit(challenge, z3, "alpha")
    runner.submit(challenge, z3, "beta")  # the limit is per team
    with pytest.raises(UserError, match="reserved"):
        runner.submit(challenge, z3, "baseline")
    with pytest.raises(UserError, match="says team"):
        runner.submit(challenge, make_zip(tmp_path / "4.zip", {}, {**META, "team": "x"}), "gamma")
    with Store(layout.database) as store:
        rows = store.all()
    assert [r["status"] for r in rows] == ["scored", "submitted", "submitted", "submitted"]
    assert rows[0]["is_baseline"] and rows[0]["team"] == "baseline"


def test_hostile_zips_are_refused_by_the_cli(challenge, tmp_path, capsys):
    info = zipfile.ZipInfo("link")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    for z in (make_zip(tmp_path / "slip.zip", {"../../x.py": "x"}),
              make_zip(tmp_path / "link.zip", {"link": (info, "/")}),
              make_zip(tmp_path / "bomb.zip", {"z": b"\0" * (30 << 20)})):
        assert main(["challenge", "submit", str(challenge), str(z), "--team", "evil"]) == 2
        err = capsys.readouterr().err
        assert "rejected" in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(Layout(challenge).zips.iterdir()) == []


# -- config, split, init -----------------------------------------------------------------

def test_config_overrides_and_validation(tmp_path):
    cfg = ChallengeConfig(**parse_overrides(["time_limit_s=5", "memory_limit_mb=200",
                                             "profile=strict"])).check()
    assert cfg.time_limit_s == 5.0 and cfg.memory_limit_mb == 200 and cfg.profile == "strict"
    for bad in (["what=1"], ["memory_limit_mb=lots"], ["nothing"]):
        with pytest.raises(UserError):
            parse_overrides(bad)
    with pytest.raises(UserError, match="public_fraction"):
        ChallengeConfig(public_fraction=1.5).check()
    with pytest.raises(UserError, match="profile"):
        ChallengeConfig(profile="nope").check()


def test_split_is_deterministic_disjoint_and_complete(data, tmp_path):
    true = data / "test" / "true"
    a = runner.make_split(true, 0.5, 7)
    assert a == runner.make_split(true, 0.5, 7)
    assert a != runner.make_split(true, 0.5, 8)
    for task, s in a["tasks"].items():
        keys = set(json.loads((true / f"true_{task}.json").read_text()))
        assert set(s["public"]) | set(s["private"]) == keys
        assert not set(s["public"]) & set(s["private"]) and s["public"]


def test_init_hides_truths_and_refuses_reuse(challenge, data):
    layout = Layout(challenge)
    assert (layout.true / "true_HTR.json").exists() and (layout.input / "HTR").is_dir()
    assert not any(layout.input.rglob("true_*.json"))
    assert json.loads(layout.split.read_text())["tasks"]["HTR"]["public"]
    with pytest.raises(UserError, match="not empty"):
        runner.init(challenge, data, ChallengeConfig(), log=lambda s: None)
    assert main(["challenge", "leaderboard", str(data)]) == 2


# -- scoring policy and leaderboard ------------------------------------------------------

def test_scoring_bad_files_costs_only_their_task(challenge, data, tmp_path):
    layout = Layout(challenge)
    cfg = layout.load_config()
    cfg.max_prediction_mb = 1
    pred = tmp_path / "pred"
    pred.mkdir()
    true_vqa = json.loads((layout.true / "true_VQA.json").read_text())
    (pred / "prediction_VQA.json").write_text(json.dumps({"wrong": "x"}))
    true_zsod = json.loads((layout.true / "true_zsOD.json").read_text())
    (pred / "prediction_zsOD.json").write_text(json.dumps(
        {img: {ph: [[float("nan")] * 4] for ph in phrases} for img, phrases in true_zsod.items()}))
    (pred / "prediction_HTR.json").write_text(json.dumps({"0.png": "x" * (2 << 20)}))
    # C2C copied from the truth: a perfect-ish score, kept despite the other tasks' errors
    (pred / "prediction_C2C.json").write_text((layout.true / "true_C2C.json").read_text())
    scores = runner.score_all(layout, cfg, pred)
    for part in ("public", "private", "all"):
        t = scores[part]["tasks"]
        assert t["VQA"]["score"] == 0 and "wrong" in t["VQA"]["error"]
        # NaN: refused by the JSON reader or by the zsOD scorer (finite numbers only)
        assert t["zsOD"]["score"] == 0 and ("finite" in t["zsOD"]["error"]
                                            or "NaN" in t["zsOD"]["error"])
        assert t["HTR"]["score"] == 0 and "limit" in t["HTR"]["error"]
        assert t["C2C"]["score"] > 0.5 and "error" not in t["C2C"]
        assert str(tmp_path) not in json.dumps(t)  # host paths are not shown to teams
    assert len(true_vqa) > 0


def _row(i, team, s_pub, s_priv, meta=None, status="scored", baseline=False):
    tasks = {"C2C": {"score": s_pub}, "HTR": {"score": 0.0}}
    return {"id": i, "team": team, "method": "m<script>", "status": status,
            "is_baseline": baseline, "submitted_at": f"2026-11-30T00:00:0{i}+00:00",
            "reason": "", "wall_s": 1.0, "exit_code": 0, "metadata": meta or {},
            "scores": {} if status != "scored" else {
                "public": {"tasks": tasks, "S": s_pub},
                "private": {"tasks": {"C2C": {"score": s_priv}}, "S": s_priv},
                "all": {"tasks": tasks, "S": s_pub}}}


def test_leaderboard_best_per_team_private_multitask_and_html_escaping():
    subs = [_row(1, "baseline", 0.5, 0.5, baseline=True),
            _row(2, "a", 0.9, 0.2), _row(3, "a", 0.7, 0.95),
            _row(4, "<b>x</b>", 0.8, 0.8, meta={"parameters": {"total": 100, "shared": 20}}),
            _row(5, "c", 0.0, 0.0, status="failed"),
            _row(6, "d", 0.6, 0.6, meta={"parameters": {"total": 100, "shared": 97}})]
    pub = lb.rows(subs)
    assert [(r["team"], r["id"]) for r in pub] == [("a", 2), ("<b>x</b>", 4), ("d", 6),
                                                  ("baseline", 1)]
    assert pub[1]["multitask"]["passed"] is False and pub[2]["multitask"]["passed"] is True
    assert pub[0]["multitask"] is None
    # final ranking: each team's best public submission, ranked by its private S
    priv = lb.rows(subs, private=True)
    assert [(r["team"], r["id"], r["S"]) for r in priv][:2] == [("<b>x</b>", 4, 0.8),
                                                                ("d", 6, 0.6)]
    page = lb.html_page(pub, subs)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<script>" not in page
    js = lb.json_list(subs)
    assert [s["status"] for s in js["submissions"]] == ["scored"] * 4 + ["failed", "scored"]
    assert "private" not in js["submissions"][1]
    assert "not reported" in lb.text_table(pub)


def test_a_runner_failure_puts_the_submission_back_in_the_queue(challenge, tmp_path,
                                                                monkeypatch):
    from fusionbrain.challenge import sandbox

    sub = runner.submit(challenge, make_zip(tmp_path / "1.zip", {"run.py": "print(1)"}), "a")

    def broken(spec, bwrap):
        raise OSError(28, "No space left on device", str(spec.submission))

    monkeypatch.setattr(sandbox, "run", broken)
    with pytest.raises(OSError):
        runner.run_queue(challenge, unsafe_no_sandbox=True, log=lambda s: None)
    with Store(Layout(challenge).database) as store:
        assert store.get(sub)["status"] == "submitted"
    assert not (Layout(challenge).work / str(sub)).exists()
