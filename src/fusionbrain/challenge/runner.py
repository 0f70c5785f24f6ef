"""Organiser side: make a challenge folder, accept submissions, run and score them.

Scoring policy (documented in the README):

- A run that hits the time, memory or output limit, exits non-zero, or writes no
  ``prediction_<TASK>.json`` at all is ``failed`` with that reason; it gets no score.
- Otherwise it is ``scored``. Each task is scored exactly as ``fusionbrain score`` would
  (profile from the config, ``aij2021`` by default) on the public part, the private part and
  all test items. A task whose prediction file is missing, larger than
  ``max_prediction_mb``, or rejected by the scorer (malformed JSON, wrong keys under
  aij2021, NaN boxes, ...) scores 0 and carries the scorer's one-line reason, as the
  official scorer's error would have; the other tasks keep their scores.
- A part keeps the prediction keys of its own items plus any key unknown to the truth, so
  extra keys are judged exactly as the official scorer judges them on the whole file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from fusionbrain.challenge import sandbox
from fusionbrain.challenge.config import ChallengeConfig, Layout
from fusionbrain.challenge.store import Store, now_utc, sha256_file, store_zip
from fusionbrain.challenge.submission import (
    METADATA,
    Limits,
    check_metadata,
    check_zip,
    extract_zip,
)
from fusionbrain.data.inputs import natural_key
from fusionbrain.errors import UserError
from fusionbrain.scoring import (
    integral_score,
    pred_file_name,
    read_score_json,
    score_files,
    true_file_name,
)
from fusionbrain.tasks import TASKS
from fusionbrain.utils.io import read_json, write_json_atomic

PARTS = ("public", "private", "all")
BASELINE_TEAM = "baseline"


def limits(cfg: ChallengeConfig) -> Limits:
    return Limits(cfg.mb("max_zip_mb"), cfg.mb("max_unpacked_mb"), cfg.max_files)


# -- init --------------------------------------------------------------------------------------

def make_split(true_dir: Path, fraction: float, seed: int) -> dict[str, Any]:
    """Deterministic public/private split of each task's test keys (by seed and task)."""
    tasks: dict[str, dict[str, list[str]]] = {}
    for task in TASKS:
        path = true_dir / true_file_name(task)
        if not path.exists():
            continue
        keys = sorted(read_score_json(path), key=natural_key)
        order = keys[:]
        random.Random(f"{seed}:{task}").shuffle(order)
        n = max(1, round(len(keys) * fraction)) if keys else 0
        public = set(order[:n])
        tasks[task] = {"public": [k for k in keys if k in public],
                       "private": [k for k in keys if k not in public]}
    return {"seed": seed, "public_fraction": fraction, "tasks": tasks}


def init(root: str | os.PathLike[str], data: str | os.PathLike[str], cfg: ChallengeConfig,
         *, baseline: bool = True, log: Callable[[str], None] = print) -> Layout:
    """Make an organiser's folder from a built dataset (``data/test/{input,true}``)."""
    layout = Layout(root)
    data = Path(data)
    src_in, src_true = data / "test" / "input", data / "test" / "true"
    for p in (src_in, src_true):
        if not p.is_dir():
            raise UserError("not a built dataset (expected test/input and test/true; make one "
                            "with `fusionbrain data build`)", path=p)
    if layout.root.exists() and any(layout.root.iterdir()):
        raise UserError("folder exists and is not empty; choose a new one", path=layout.root)
    cfg.check()
    layout.root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".hidden.", dir=layout.root))
    shutil.copytree(src_in, tmp / "input", symlinks=False)
    shutil.copytree(src_true, tmp / "true", symlinks=False)
    os.chmod(tmp, 0o700)
    os.replace(tmp, layout.hidden)
    os.chmod(layout.true, 0o700)
    split = make_split(layout.true, cfg.public_fraction, cfg.split_seed)
    if not split["tasks"]:
        raise UserError("no true_<TASK>.json files", path=src_true)
    write_json_atomic(layout.split, split, indent=1)
    layout.save_config(cfg)
    for d in (layout.zips, layout.runs, layout.work):
        d.mkdir(exist_ok=True)
    Store(layout.database).close()
    log(f"challenge folder {layout.root}: tasks {', '.join(split['tasks'])}; "
        + ", ".join(f"{t} {len(s['public'])} public / {len(s['private'])} private"
                    for t, s in split["tasks"].items()))
    if baseline:
        add_baseline_row(layout, cfg, data, log=log)
    return layout


def add_baseline_row(layout: Layout, cfg: ChallengeConfig, data: Path,
                     log: Callable[[str], None] = print) -> int | None:
    """Fit the trivial baselines on ``data/train``, predict the hidden inputs (outside any
    sandbox: it is the organiser's own code) and store the scored row."""
    from fusionbrain.challenge import baselines

    states = baselines.fit_states(data)
    if not states:
        log(f"no {data}/train/<TASK> folders: no baseline rows")
        return None
    with Store(layout.database) as store:
        sub_id = store.add(team=BASELINE_TEAM, method="trivial baselines: " + "; ".join(
            f"{t} {n}" for t, n in baselines.names().items() if t in states),
            sha256="", zip_bytes=0, metadata={"entrypoint": "", "team": BASELINE_TEAM},
            status="running", is_baseline=True)
        out = layout.runs / str(sub_id) / "output"
        baselines.predict_folder(states, layout.input, out)
        scores = score_all(layout, cfg, out)
        store.update(sub_id, status="scored", scores=scores, finished_at=now_utc(),
                     reason=_task_errors(scores), sandbox="none (organiser's baseline)")
    log(f"baseline row #{sub_id}: S {scores['public']['S']:.3f} on the public part")
    return sub_id


# -- submit ------------------------------------------------------------------------------------

def submit(root: str | os.PathLike[str], zip_path: str | os.PathLike[str], team: str,
           *, now: datetime | None = None) -> int:
    """Check, store (content-addressed) and queue a submission; returns its id."""
    layout = Layout(root).check()
    cfg = layout.load_config()
    team = team.strip()
    if not team or len(team) > 100 or any(ord(c) < 32 for c in team):
        raise UserError(f"--team {team!r}: give a team name of 1-100 printable characters")
    if team == BASELINE_TEAM:
        raise UserError(f"--team {team!r} is reserved for the organiser's baseline rows")
    zip_path = Path(zip_path)
    meta = check_zip(zip_path, limits(cfg))
    if meta.get("team") and meta["team"].strip() != team:
        raise UserError(f"metadata.json says team {meta['team']!r} but --team is {team!r}",
                        path=zip_path)
    sha = sha256_file(zip_path)
    when = (now or datetime.now(timezone.utc)).isoformat(timespec="seconds")
    with Store(layout.database) as store:
        dup = store.find_sha(team, sha)
        if dup is not None:
            raise UserError(f"the same zip (sha256 {sha[:12]}) was already submitted by "
                            f"{team!r} as #{dup}", path=zip_path)
        store_zip(layout.zips, zip_path, sha)
        sub_id = store.add(team=team, method=str(meta.get("method", ""))[:500], sha256=sha,
                           zip_bytes=zip_path.stat().st_size, metadata=meta,
                           submitted_at=when, max_per_day=int(cfg.submissions_per_day))
    if sub_id < 0:
        raise UserError(f"team {team!r} already has {cfg.submissions_per_day} submission(s) "
                        f"on {when[:10]} (UTC), the daily limit")
    return sub_id


# -- run ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def _run_lock(layout: Layout) -> Iterator[None]:
    with open(layout.root / ".run.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError("another `challenge run` is running on this folder",
                            path=layout.root) from None
        yield


def run_queue(root: str | os.PathLike[str], *, unsafe_no_sandbox: bool = False,
              limit: int | None = None, log: Callable[[str], None] = print) -> list[int]:
    """Run and score every queued submission, oldest first; returns their ids."""
    layout = Layout(root).check()
    cfg = layout.load_config()
    bwrap = None if unsafe_no_sandbox else sandbox.check_bwrap()
    if unsafe_no_sandbox:
        log("WARNING: --unsafe-no-sandbox: submissions run on this machine without isolation "
            "(trusted local testing only)")
    done = []
    with _run_lock(layout), Store(layout.database) as store:
        stale = store.requeue_stale()
        if stale:
            log(f"re-queued {len(stale)} run(s) left running by an interrupted run: "
                + ", ".join(f"#{i}" for i in stale))
        for sub_id in store.queued()[:limit]:
            row = run_one(layout, cfg, store, sub_id, bwrap)
            done.append(sub_id)
            if row["status"] == "scored":
                log(f"#{sub_id} {row['team']}: scored, S {row['scores']['public']['S']:.3f} "
                    f"(public){'; ' + row['reason'] if row['reason'] else ''}")
            else:
                log(f"#{sub_id} {row['team']}: failed: {row['reason']}")
    return done


def run_one(layout: Layout, cfg: ChallengeConfig, store: Store, sub_id: int,
            bwrap: str | None) -> dict[str, Any]:
    row = store.get(sub_id)
    store.update(sub_id, status="running", started_at=now_utc(), reason="")
    work = layout.work / str(sub_id)
    run_dir = layout.runs / str(sub_id)
    for d in (work, run_dir):
        shutil.rmtree(d, ignore_errors=True)
    try:
        lim = limits(cfg)
        zip_path = layout.zips / f"{row['sha256']}.zip"
        try:
            extract_zip(zip_path, work / "submission", lim)
            meta = check_metadata(read_json(work / "submission" / METADATA, expect=dict),
                                  METADATA)
        except UserError as e:
            return _finish(store, sub_id, "failed", f"cannot unpack: {e}")
        spec = sandbox.SandboxSpec(
            submission=work / "submission", input=layout.input, entrypoint=meta["entrypoint"],
            time_limit_s=float(cfg.time_limit_s), memory_bytes=cfg.mb("memory_limit_mb"),
            output_bytes=cfg.mb("output_limit_mb"), tmp_bytes=cfg.mb("tmp_limit_mb"),
            forbidden=[layout.true, layout.database, layout.zips, layout.runs, layout.config],
            unsafe_output=None if bwrap else work / "output")
        if spec.unsafe_output is not None:
            spec.unsafe_output.mkdir(parents=True)
        out = sandbox.run(spec, bwrap)
        run_dir.mkdir(parents=True, exist_ok=True)
        keep = int(cfg.log_tail_lines)
        stdout, stderr = _tail_lines(out.stdout, keep), _tail_lines(out.stderr, keep)
        (run_dir / "stdout.txt").write_text(out.stdout, encoding="utf-8")
        (run_dir / "stderr.txt").write_text(out.stderr, encoding="utf-8")
        common = dict(wall_s=round(out.wall_s, 3), exit_code=out.exit_code,
                      stdout_tail=stdout, stderr_tail=stderr,
                      sandbox=("bwrap" if bwrap else "NONE (--unsafe-no-sandbox)")
                      + f"; memory: {out.memory_mechanism}"
                      + (f"; peak {out.peak_bytes >> 20} MB" if out.peak_bytes else ""))
        reason = _failure(out, cfg)
        if reason:
            return _finish(store, sub_id, "failed", reason, **common)
        (run_dir / "output").mkdir()
        oversize = {}
        for name, data in out.files.items():
            if len(data) > cfg.mb("max_prediction_mb"):
                oversize[name] = len(data)  # rejected unread; not kept on disk
            else:
                (run_dir / "output" / name).write_bytes(data)
        scores = score_all(layout, cfg, run_dir / "output", oversize)
        note = _task_errors(scores)
        if out.full:
            note = "; ".join(x for x in (f"reached a size cap ({', '.join(out.full)})", note) if x)
        return _finish(store, sub_id, "scored", note, scores=scores, **common)
    except BaseException:
        # an interrupted or broken runner (the organiser's side: disk full, a bug) must not
        # leave the row 'running', nor fail the team for it: back in the queue
        store.update(sub_id, status="submitted", started_at=None)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _failure(out: sandbox.Outcome, cfg: ChallengeConfig) -> str:
    if out.timed_out:
        return (f"time limit: still running after {cfg.time_limit_s:g} s, the whole process "
                "tree was killed")
    if out.memory_exceeded:
        return f"memory limit: exceeded {cfg.memory_limit_mb} MB ({out.memory_mechanism})"
    if out.full and out.exit_code not in (0, None):
        return (f"output limit: {', '.join(out.full)} reached its size cap "
                f"(/output {cfg.output_limit_mb} MB, /tmp {cfg.tmp_limit_mb} MB); "
                f"exit code {out.exit_code}")
    if out.exit_code is None:
        return f"crashed: the sandbox ended without a result ({out.stream_error})"
    if out.exit_code != 0:
        if out.signal:
            import signal as _signal

            try:
                name = _signal.Signals(out.signal).name
            except ValueError:
                name = str(out.signal)
            return f"crashed: killed by signal {name} (exit code {out.exit_code})"
        return f"crashed: exit code {out.exit_code}"
    if out.stream_error:
        return f"output unreadable: {out.stream_error}"
    if not out.files:
        return ("no prediction files: /output holds no prediction_<TASK>.json "
                f"(expected {', '.join(pred_file_name(t) for t in TASKS)})")
    return ""


def _finish(store: Store, sub_id: int, status: str, reason: str, **fields: Any) -> dict:
    store.update(sub_id, status=status, reason=reason[:2000], finished_at=now_utc(), **fields)
    return store.get(sub_id)


def _tail_lines(text: str, n: int) -> str:
    lines = text.splitlines()[-n:]
    # control characters (terminal escapes) are shown, not obeyed
    return "\n".join("".join(c if c >= " " or c == "\t" else "�" for c in line)[:1000]
                     for line in lines)


def _task_errors(scores: dict[str, Any]) -> str:
    errs = [f"{t}: {r['error']}" for t, r in scores.get("all", {}).get("tasks", {}).items()
            if r.get("error")]
    return "; ".join(errs)


# -- scoring -----------------------------------------------------------------------------------

def score_all(layout: Layout, cfg: ChallengeConfig, pred_dir: Path,
              oversize: dict[str, int] | None = None) -> dict[str, Any]:
    """Scores of a prediction folder on each part: ``{part: {"tasks", "S"}}``;
    ``oversize`` names prediction files (with their sizes) refused for their size."""
    split = read_json(layout.split, expect=dict)
    out = {}
    for part in PARTS:
        if part != "all" and not any(s.get(part) for s in split["tasks"].values()):
            continue
        keys = None if part == "all" else {t: s[part] for t, s in split["tasks"].items()}
        out[part] = score_part(pred_dir, layout.true, keys, cfg, oversize or {})
    return out


def score_part(pred_dir: Path, true_dir: Path, keys: dict[str, list[str]] | None,
               cfg: ChallengeConfig, oversize: dict[str, int]) -> dict[str, Any]:
    """Score each task on the items in ``keys`` (None: all), as ``fusionbrain score`` does."""
    tasks: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="fb-part-") as tmp:
        for task in TASKS:
            true_path = true_dir / true_file_name(task)
            if not true_path.exists() or (keys is not None and not keys.get(task)):
                continue
            pred_path = pred_dir / pred_file_name(task)
            size = oversize.get(pred_path.name)
            if size is None and pred_path.is_file():
                size = pred_path.stat().st_size
            if size is not None and size > cfg.mb("max_prediction_mb"):
                tasks[task] = {"score": 0.0, "error": f"{pred_path.name} is {size} bytes, more "
                               f"than the {cfg.max_prediction_mb} MB limit"}
                continue
            tasks[task] = _score_task(task, pred_path, true_path, keys, cfg, Path(tmp))
    s = integral_score({t: r["score"] for t, r in tasks.items()})
    return {"tasks": tasks, "S": s}


def _score_task(task: str, pred_path: Path, true_path: Path,
                keys: dict[str, list[str]] | None, cfg: ChallengeConfig,
                tmp: Path) -> dict[str, Any]:
    name = pred_path.name
    if not pred_path.is_file():
        return {"score": 0.0, "error": f"{name} missing"}
    try:
        if keys is None:
            result = score_files(task, pred_path, true_path, cfg.profile)
        else:
            pred = read_score_json(pred_path, max_bytes=cfg.mb("max_prediction_mb"))
            true = read_score_json(true_path)
            part = set(keys[task])
            sub_true = {k: v for k, v in true.items() if k in part}
            sub_pred = {k: v for k, v in pred.items() if k in part or k not in true}
            folder = tmp / task
            folder.mkdir()
            write_json_atomic(folder / name, sub_pred)
            write_json_atomic(folder / true_path.name, sub_true)
            result = score_files(task, folder / name, folder / true_path.name, cfg.profile)
    except UserError as e:
        msg = str(e).replace(str(tmp / task) + os.sep, "").replace(str(pred_path), name)
        return {"score": 0.0, "error": msg.replace(str(true_path), true_path.name)[:500]}
    except RecursionError:
        return {"score": 0.0, "error": f"{name}: nested too deeply to score"}
    except ImportError:
        raise  # the organiser's environment is broken, not the submission
    except Exception as e:  # a hostile file must cost its task, never the runner
        return {"score": 0.0, "error": f"{name}: the scorer failed on it "
                                       f"({type(e).__name__}: {str(e)[:200]})"}
    result.pop("task", None)
    result.pop("profile", None)
    return json.loads(json.dumps(result, default=str))
