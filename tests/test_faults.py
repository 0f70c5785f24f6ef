"""Bad input and faults (issue 16): one regression test per case.

1 damaged checkpoints, 2 line splitting of parallel corpora, 3 exact resume (the thread count;
see test_train_real.py), 4 NaN never reaches a prediction file, 5 hostile values, 6 pipes and
FIFOs, 7 two predicts into one folder, 8 memory bounded below the size cap, 9 smaller ones.
Every user error is one line, exit status 2, no traceback.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import test_train_support as toy
import torch
from PIL import Image

from fusionbrain.cli import main
from fusionbrain.errors import UserError
from fusionbrain.train import checkpoint as ckpt_lib
from fusionbrain.train.config import TrainConfig
from fusionbrain.train.engine import RunSpec, train
from fusionbrain.utils.io import read_json, write_json_atomic


def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (48, 32), (30, 90, 200)).save(path)
    return path


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line(rc: int, err: str, *names: str) -> str:
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in err, err
    return err


# --- 1. damaged checkpoints ------------------------------------------------------------------

def _toy_cfg(**kw) -> TrainConfig:
    base = dict(model=None, model_class=toy.TOY_CLASS, steps=8, batch_size=4, eval_every=0,
                save_every=2, lr=0.05, sampling="proportional", energy={"enabled": False})
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def toy_engine(monkeypatch):
    import fusionbrain.train.engine as engine

    monkeypatch.setattr(engine, "load_split", toy.toy_load_split)
    real = engine.task_module
    monkeypatch.setattr(engine, "task_module", lambda t, part: (
        toy.ToyFormats if part == "formats" else toy.ToyMetric if part == "metric"
        else real(t, part)))


def _stopped_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    train(RunSpec(mode="fusion", data=tmp_path, out=run, stop_at=4, progress=False), _toy_cfg())
    assert (run / "last" / "state.pt").is_file()
    return run


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage_same_size", "missing"])
def test_damaged_state_is_one_line_before_any_work(tmp_path, toy_engine, damage):
    run = _stopped_run(tmp_path)
    state = run / "last" / "state.pt"
    data = state.read_bytes()
    if damage == "truncate":
        state.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        state.write_bytes(b"")
    elif damage == "garbage_same_size":
        state.write_bytes(bytes(len(data)))
    else:
        state.unlink()
    with pytest.raises(UserError, match="damaged training state") as e:
        train(RunSpec(mode="fusion", data=None, out=run, resume=True, progress=False),
              _toy_cfg())
    assert "state.pt" in str(e.value) and "--out" in str(e.value)
    assert "\n" not in str(e.value)


def test_truncated_state_without_checksum_is_still_one_line(tmp_path, toy_engine):
    """A checkpoint written before the checksum existed: torch's own error, caught."""
    run = _stopped_run(tmp_path)
    info = read_json(run / "last" / "info.json")
    info.pop(ckpt_lib.STATE_CHECK)
    write_json_atomic(run / "last" / "info.json", info)
    state = run / "last" / "state.pt"
    state.write_bytes(state.read_bytes()[:1000])
    with pytest.raises(UserError, match="damaged training state"):
        ckpt_lib.load_state(run / "last")


def test_full_disk_while_writing_state_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    model = toy.ToyModel()
    run = tmp_path / "run"
    ckpt_lib.save_checkpoint(run, "last", model, info={"step": 1}, state={"step": 1})
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserError, match="No space left on device") as e:
        ckpt_lib.save_checkpoint(run, "last", model, info={"step": 2}, state={"step": 2})
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert "\n" not in str(e.value) and "previous checkpoint is kept" in str(e.value)
    assert read_json(run / "last" / "info.json")["step"] == 1
    assert not list(run.glob(".*.tmp"))


# --- 2. parallel corpora split on \n only ----------------------------------------------------

def test_parallel_import_keeps_pairs_aligned_across_unicode_line_breaks(tmp_path, capsys):
    java = tmp_path / "a.java"
    py = tmp_path / "a.python"
    # U+2028, U+0085 and form feed inside a line: str.splitlines() would break there
    java.write_text('int f ( ) { return "a\u2028b" ; }\r\nint g ( ) { return 1 ; }\x0c\n'
                    "int h ( ) { return 2 ; }\u0085\n", encoding="utf-8")
    py.write_text("def f ( ) : return 'a b'\ndef g ( ) : return 1\ndef h ( ) : return 2\n",
                  encoding="utf-8")
    out = tmp_path / "out"
    rc, text, err = _cli(capsys, "data", "import", "parallel", java, py, "--out", out)
    assert rc == 0, err
    rows = [json.loads(x) for x in (out / "samples.jsonl").read_text("utf-8").split("\n") if x]
    assert [r["python"][:5] for r in rows] == ["def f", "def g", "def h"]
    assert "\u2028" in rows[0]["java"] and rows[2]["java"].startswith("int h")
    # counted the same way in the message
    py.write_text("def f ( ) : return 1\n", encoding="utf-8")
    rc, _, err = _cli(capsys, "data", "import", "parallel", java, py, "--out", out, "--force")
    _one_line(rc, err, "3 lines but", "has 1")


# --- 4. non-finite model outputs -------------------------------------------------------------

class _NaNModel:
    """A model whose zsOD boxes are NaN for the second image (as NaN weights would give)."""

    task_names = ["zsOD"]
    device = torch.device("cpu")

    def predict(self, task, samples, batch_size=16):
        return [{p: [[0.9, 1.0, 2.0, 3.0, 4.0]] if i % 2 == 0 else [[float("nan"), 1, 2, 3, 4]]
                 for p in s.phrases} for i, s in enumerate(samples)]


def test_nan_outputs_are_reported_and_never_written(tmp_path, capsys):
    from fusionbrain.train.predict_cli import predict_folder

    inp = tmp_path / "input"
    for i in range(2):
        _image(inp / "zsOD" / "images" / f"{i}.jpg")
    _write(inp / "zsOD" / "requests.json", {f"{i}.jpg": ["cat"] for i in range(2)})
    out = tmp_path / "out"
    done = predict_folder(_NaNModel(), inp, out, progress=False)
    assert done == {"zsOD": 2}
    err = capsys.readouterr().err
    assert "non-finite" in err and "1 item" in err
    text = (out / "prediction_zsOD.json").read_text("utf-8")
    assert "NaN" not in text
    assert json.loads(text) == {"0.jpg": {"cat": [[0.9, 1.0, 2.0, 3.0, 4.0]]}, "1.jpg": {"cat": []}}
    truth = _write(tmp_path / "true_zsOD.json", {f"{i}.jpg": {"cat": [[1, 2, 3, 4]]}
                                                 for i in range(2)})
    rc, _, err = _cli(capsys, "score", "--task", "zsOD", "--pred", out / "prediction_zsOD.json",
                      "--true", truth)
    assert rc == 0, err


def test_json_writer_never_writes_nan(tmp_path):
    with pytest.raises(UserError, match="cannot write"):
        write_json_atomic(tmp_path / "x.json", {"a": float("nan")}, non_finite="error")
    assert not (tmp_path / "x.json").exists()
    write_json_atomic(tmp_path / "x.json", {"a": [float("inf"), 1.5], "b": float("nan")})
    assert (tmp_path / "x.json").read_text() == '{"a": [null, 1.5], "b": null}'


# --- 5. hostile values -----------------------------------------------------------------------

def _big_int_file(path: Path) -> Path:
    path.write_text('{"0.png": ' + "9" * 5000 + "}", encoding="utf-8")
    return path


def _deep_line(path: Path) -> Path:
    good = {"id": "1", "java": "int f ( ) { }", "python": "def f ( ) : pass"}
    path.write_text(json.dumps(good) + "\n" + "[" * 100_000 + "]" * 100_000 + "\n",
                    encoding="utf-8")
    return path


def test_long_integers_and_deep_nesting(tmp_path, capsys):
    truth = _write(tmp_path / "true_HTR.json", {"0.png": "a"})
    rc, _, err = _cli(capsys, "score", "--task", "HTR", "--pred",
                      _big_int_file(tmp_path / "p.json"), "--true", truth)
    _one_line(rc, err, "p.json", "too many digits")
    deep = tmp_path / "deep.json"
    deep.write_text('{"0.png": ' + "[" * 100_000 + "]" * 100_000 + "}")
    rc, _, err = _cli(capsys, "score", "--task", "HTR", "--pred", deep, "--true", truth)
    _one_line(rc, err, "deep.json", "nested too deeply")
    # JSONL: the deep line is skipped and reported, the good one imported
    rc, out, err = _cli(capsys, "data", "import", "avatar", _deep_line(tmp_path / "a.jsonl"),
                        "--out", tmp_path / "c2c")
    assert rc == 0, err
    assert "wrote 1 samples" in out and "nested too deeply" in (
        tmp_path / "c2c" / "skipped.tsv").read_text("utf-8")
    big = tmp_path / "big.jsonl"
    big.write_text('{"id": ' + "1" * 5000 + ', "java": "x", "python": "y"}\n')
    rc, _, err = _cli(capsys, "data", "import", "avatar", big, "--out", tmp_path / "c2c2")
    _one_line(rc, err, "big.jsonl")


def test_vqa2_import_hostile_ids_and_null_answers(tmp_path, capsys):
    _image(tmp_path / "img" / "COCO_val_000000000001.jpg")
    qs = {"data_subtype": "val", "questions": [
        {"question_id": [1], "image_id": 1, "question": "what?"},
        {"question_id": {"a": 1}, "image_id": 1, "question": "what?"},
        {"question_id": 3, "image_id": [1], "question": "what?"},
        {"question_id": 4, "image_id": 1, "question": "what?"},
        {"question_id": 5, "image_id": "²", "question": "what?"},
        {"question_id": 6, "image_id": 1, "question": "ok?"},
    ]}
    anns = {"annotations": [
        {"question_id": [1], "answers": [{"answer": "x"}]},
        {"question_id": 4, "answers": None, "multiple_choice_answer": None},
        {"question_id": 6, "answers": [{"answer": "yes"}], "multiple_choice_answer": "yes"},
    ]}
    q, a = _write(tmp_path / "q.json", qs), _write(tmp_path / "a.json", anns)
    rc, out, err = _cli(capsys, "data", "import", "vqa2", q, a, "--images", tmp_path / "img",
                        "--out", tmp_path / "vqa")
    assert rc == 0, err
    assert "wrote 1 samples" in out
    skipped = (tmp_path / "vqa" / "skipped.tsv").read_text("utf-8")
    assert "question_id must be a number or a string, got array" in skipped
    assert "got object" in skipped and "empty answer" in skipped
    assert "NoneType" not in skipped


def test_coco_import_hostile_ids_and_duplicate_file_names(tmp_path, capsys):
    for n in ("a.jpg", "b.jpg"):
        _image(tmp_path / "images" / n)
    coco = {
        "images": [{"id": [1], "file_name": "a.jpg"}, {"id": 2, "file_name": "a.jpg"},
                   {"id": 3, "file_name": "a.jpg"}, {"id": 4, "file_name": "b.jpg"},
                   {"id": {"x": 1}, "file_name": "b.jpg"}],
        "categories": [{"id": 1, "name": "cat"}, {"id": [2], "name": "dog"},
                       {"id": 3, "name": "bird"}],
        "annotations": [{"image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]},
                        {"image_id": 3, "category_id": 3, "bbox": [2, 2, 5, 5]},
                        {"image_id": [4], "category_id": 1, "bbox": [1, 1, 5, 5]},
                        {"image_id": 4, "category_id": {"a": 1}, "bbox": [1, 1, 5, 5]},
                        {"image_id": 4, "category_id": 1, "bbox": [1, 1, 10 ** 400, 5]}],
    }
    path = tmp_path / "ann" / "instances.json"
    path.parent.mkdir()
    # 10**400 is a valid JSON number (a float overflow, not a 4,300-digit string)
    path.write_text(json.dumps(coco).replace(str(10 ** 400), "1" + "0" * 400))
    rc, out, err = _cli(capsys, "data", "import", "coco", path, "--images", tmp_path / "images",
                        "--out", tmp_path / "z")
    assert rc == 0, err
    rows = [json.loads(x) for x in (tmp_path / "z" / "samples.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == 2  # a-en (image 2 only), b-en
    a = next(r for r in rows if r["id"] == "a-en")
    # image 3 (the same file) is dropped: its bird box does not contradict image 2's labels
    assert a["phrases"]["cat"] == [[1.0, 1.0, 5.0, 5.0]] and a["phrases"].get("bird", []) == []
    skipped = (tmp_path / "z" / "skipped.tsv").read_text("utf-8")
    assert "duplicate file name 'a'" in skipped and "bad box" in skipped


def test_superscript_digit_keys_and_file_names(tmp_path, capsys):
    truth = _write(tmp_path / "true_HTR.json", {"²": "a", "2": "b", "10": "c"})
    rc, out, err = _cli(capsys, "score", "--task", "HTR", "--pred", truth, "--true", truth)
    assert rc == 0, err
    from fusionbrain.tasks.htr.formats import read_input

    for n in ("².png", "10.png", "2.png"):
        _image(tmp_path / "in" / "images" / n)
    names = [Path(s.image_path).name for s in read_input(tmp_path / "in")]
    assert names == ["2.png", "10.png", "².png"]


def _tiny_model_dir(root: Path) -> Path:
    from fusionbrain.model import FusionBrain

    torch.manual_seed(0)
    return FusionBrain("tiny", tasks=["HTR"]).save_pretrained(root / "model")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return _tiny_model_dir(tmp_path_factory.mktemp("tiny"))


@pytest.mark.parametrize("change,key", [
    ({"weights": None}, "weights"), ({"weights": "../x.safetensors"}, "weights"),
    ({"model": {"preset": "tiny", "image_size": None}}, "image_size"),
    ({"model": {"preset": "tiny", "tokenizer": 7}}, "tokenizer"),
    ({"frozen": {}}, "frozen"), ({"frozen": {"body": "x"}}, "frozen"),
])
def test_model_config_hostile_values(tmp_path, tiny_model, capsys, change, key):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(tiny_model, d)
    meta = json.loads((d / "config.json").read_text())
    meta.update(change)
    _write(d / "config.json", meta)
    rc, _, err = _cli(capsys, "info", "--model", d)
    err = _one_line(rc, err, "config.json", key)
    assert "NoneType" not in err


def test_run_config_hostile_values_never_import(tmp_path, capsys):
    run = tmp_path / "run"
    _write(run / "run_config.json", {"mode": "fusion", "data": "x", "steps": 3, "tasks": []})
    rc, _, err = _cli(capsys, "train", "--out", run, "--resume", "--no-progress")
    _one_line(rc, err, "run_config.json", "'config'")
    _write(run / "run_config.json", {"mode": "fusion", "data": "x", "steps": 3, "tasks": [],
                                     "config": {"model_class": "os:system", "model": "echo"}})
    rc, _, err = _cli(capsys, "train", "--out", run, "--resume", "--no-progress")
    _one_line(rc, err, "os:system")
    for spec in ("subprocess:Popen", "json:JSONDecoder", "x:y:z", "a b:C"):
        with pytest.raises(UserError):
            from fusionbrain.train.engine import import_class

            import_class(spec)
    assert "antigravity" not in sys.modules
    with pytest.raises(UserError, match="only classes of the fusionbrain package"):
        import_class("antigravity:X")
    assert "antigravity" not in sys.modules


@pytest.mark.parametrize("change,key", [
    ({"loss_weights": {"HTR": "x"}}, "loss_weights.HTR"), ({"betas": [0.9]}, "betas"),
    ({"threads": -3}, "threads"), ({"batch_size_per_task": {"FOO": 2}}, "batch_size_per_task.FOO"),
    ({"steps": True}, "steps"), ({"lr": 1e400}, "lr"), ({"tasks": ["OCR"]}, "tasks"),
    ({"energy": {"enabled": "yes"}}, "energy.enabled"), ({"model": {"image_size": None}}, "image_size"),
    ({"seed": "1"}, "seed"), ({"task_weights": {"VQA": -1}}, "task_weights.VQA"),
])
def test_train_config_refused_before_any_work(tmp_path, capsys, change, key):
    cfg = {"model": "tiny", "steps": 2, "energy": {"enabled": False}}
    cfg.update(change)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg).replace("Infinity", "1e400"))
    out = tmp_path / "run"
    t0 = time.perf_counter()
    rc, _, err = _cli(capsys, "train", "--data", tmp_path, "--out", out, "--config", path,
                      "--no-progress")
    _one_line(rc, err, "cfg.json", key)
    assert time.perf_counter() - t0 < 30  # no data or model load happened (generous bound)
    assert not out.exists()  # nothing left that would refuse a rerun


@pytest.mark.parametrize("args,msg", [
    (["--epochs", "nan"], "--epochs"), (["--epochs", "inf"], "--epochs"),
    (["--stop-at", "0"], "--stop-at"), (["--stop-at", "-3"], "--stop-at"),
    (["--steps", "0"], "--steps"),
])
def test_train_hostile_options(tmp_path, capsys, args, msg):
    rc, _, err = _cli(capsys, "train", "--data", tmp_path, "--out", tmp_path / "run",
                      "--no-progress", *args)
    _one_line(rc, err, msg)


def test_main_job_checks_its_config_before_building_data(tmp_path, capsys):
    cfg = _write(tmp_path / "cfg.json", {"betas": [0.9]})
    rc, _, err = _cli(capsys, "run", "--out", tmp_path / "main", "--config", cfg,
                      "--no-progress")
    _one_line(rc, err, "cfg.json", "betas")
    assert not (tmp_path / "main" / "data").exists()


def test_predict_threads_and_score_env(tmp_path, capsys, monkeypatch):
    rc, _, err = _cli(capsys, "predict", "--model", tmp_path, "--input", tmp_path, "--output",
                      tmp_path / "o", "--threads", "-1")
    _one_line(rc, err, "--threads")
    truth = _write(tmp_path / "true_HTR.json", {"0.png": "a"})
    for bad in ("nan", "inf", "-5", "abc"):
        monkeypatch.setenv("FUSIONBRAIN_SCORE_MAX_MB", bad)
        rc, _, err = _cli(capsys, "score", "--task", "HTR", "--pred", truth, "--true", truth)
        _one_line(rc, err, "FUSIONBRAIN_SCORE_MAX_MB")


# --- 6. pipes and FIFOs ----------------------------------------------------------------------

def test_score_reads_a_pipe_once(tmp_path):
    truth = _write(tmp_path / "true_HTR.json", {"0.png": "a", "1.png": "b"})
    # a big enough file that the old 64 KB sniff would have consumed a part of the pipe
    _write(tmp_path / "true_HTR.json", {f"{i}.png": "word" * 10 for i in range(5000)})
    cmd = (f"{sys.executable} -m fusionbrain score --task HTR --pred <(cat {truth}) "
           f"--true {truth} --json")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["score"] == 1.0
    # /dev/stdin fed by a pipe
    cmd = (f"cat {truth} | {sys.executable} -m fusionbrain score --task HTR --pred /dev/stdin "
           f"--true {truth} --json")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["score"] == 1.0


def test_fifo_without_writer_times_out_with_a_message(tmp_path, monkeypatch):
    from fusionbrain.scoring import read_score_json

    fifo = tmp_path / "f.json"
    os.mkfifo(fifo)
    monkeypatch.setenv("FUSIONBRAIN_PIPE_TIMEOUT_S", "0.3")
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="no data within 0.3 s") as e:
        read_score_json(fifo)
    assert time.perf_counter() - t0 < 10 and "\n" not in str(e.value)

    # with a writer, the FIFO is read whole
    def writer():
        with open(fifo, "w") as f:
            f.write('{"0.png": "a"}')

    t = threading.Thread(target=writer)
    t.start()
    assert read_score_json(fifo) == {"0.png": "a"}
    t.join(10)


def test_jsonl_import_from_a_fifo_without_writer(tmp_path, capsys, monkeypatch):
    fifo = tmp_path / "a.jsonl"
    os.mkfifo(fifo)
    monkeypatch.setenv("FUSIONBRAIN_PIPE_TIMEOUT_S", "0.3")
    rc, _, err = _cli(capsys, "data", "import", "avatar", fifo, "--out", tmp_path / "o")
    _one_line(rc, err, "a.jsonl", "no data within")


# --- 7. two predicts into one folder ---------------------------------------------------------

def test_second_predict_into_a_busy_folder_is_refused(tmp_path, capsys):
    from fusionbrain.train.predict_cli import output_lock

    _image(tmp_path / "input" / "HTR" / "images" / "0.png")
    out = tmp_path / "out"
    with output_lock(out):
        rc, _, err = _cli(capsys, "predict", "--model", tmp_path / "no-model", "--input",
                          tmp_path / "input", "--output", out, "--no-energy")
        _one_line(rc, err, "another `fusionbrain predict`", str(out))
    # released: the next run gets past the lock (and fails on the missing model instead)
    rc, _, err = _cli(capsys, "predict", "--model", tmp_path / "no-model", "--input",
                      tmp_path / "input", "--output", out, "--no-energy")
    _one_line(rc, err, "no-model", "not found")


# --- 8. memory bounded below the size cap ----------------------------------------------------

def test_dense_empty_containers_are_refused_before_parsing(tmp_path, capsys):
    path = tmp_path / "p.json"
    path.write_text('{"a": [' + "[]," * 700_000 + "[]]}")  # 2 MB, 700k empty lists
    truth = _write(tmp_path / "true_HTR.json", {"0.png": "a"})
    rc, _, err = _cli(capsys, "score", "--task", "HTR", "--pred", path, "--true", truth)
    _one_line(rc, err, "p.json", "arrays/objects")
    # a real zsOD file of the same size (boxes of numbers) is read
    boxes = {f"{i}.jpg": {"a cat": [[0.5, 10.25, 20.5, 30.75, 40.0]] * 3} for i in range(12000)}
    real = _write(tmp_path / "z.json", boxes)
    assert real.stat().st_size > 1 << 20
    assert len(read_json(real)) == 12000
    # brackets inside strings do not count
    code = _write(tmp_path / "c.json", {str(i): "a[[[]]]{{}}" * 4 for i in range(40000)})
    assert len(read_json(code)) == 40000


# --- 9. smaller ones -------------------------------------------------------------------------

def test_symlink_loop_is_not_reported_as_missing(tmp_path, capsys):
    loop = tmp_path / "loop.json"
    os.symlink(loop, loop)
    rc, _, err = _cli(capsys, "score", "--task", "HTR", "--pred", loop, "--true", loop)
    _one_line(rc, err, "loop.json", "symbolic link loop")


def test_messages_say_null_not_nonetype(tmp_path):
    from fusionbrain.data.jsonl import sample_from_dict
    from fusionbrain.tasks.c2c.data import C2CSample

    with pytest.raises(ValueError, match="got null"):
        sample_from_dict(C2CSample, None)
    with pytest.raises(UserError, match="got null"):
        read_json(_write(tmp_path / "n.json", None), expect=dict)


def test_predict_checks_output_and_input_before_the_model_load(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    _image(tmp_path / "input" / "HTR" / "images" / "0.png")
    # the model path does not exist: had the model been loaded first, it would be named
    rc, _, err = _cli(capsys, "predict", "--model", tmp_path / "no-model", "--input",
                      tmp_path / "input", "--output", tmp_path / "file" / "out", "--no-energy")
    _one_line(rc, err, "file")
    assert "no-model" not in err
    (tmp_path / "empty").mkdir()
    rc, _, err = _cli(capsys, "predict", "--model", tmp_path / "no-model", "--input",
                      tmp_path / "empty", "--output", tmp_path / "out", "--no-energy")
    _one_line(rc, err, "no task folder")
    assert "no-model" not in err


def test_train_checks_the_run_folder_before_the_data(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    cfg = _write(tmp_path / "cfg.json", {"model": "tiny", "steps": 2,
                                         "energy": {"enabled": False}})
    rc, _, err = _cli(capsys, "train", "--data", tmp_path / "no-data", "--out",
                      tmp_path / "file" / "run", "--config", cfg, "--no-progress")
    _one_line(rc, err, "file")
    assert "no-data" not in err
