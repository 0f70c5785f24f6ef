"""Bad input gets one clear line naming the file, a non-zero exit, no traceback, and loses
nothing: prediction files keep every input key, writes are atomic.

Regression tests for the bad-input audit of the command-line tools.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from fusionbrain.cli import main
from fusionbrain.errors import UserError
from fusionbrain.scoring import score_dir
from fusionbrain.tasks import TASKS, task_module
from fusionbrain.utils.io import atomic_open, write_json_atomic


def _image(path: Path, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (60, 40), (200, 40, 40)).save(path, fmt)
    return path


def _truncated(path: Path) -> Path:
    _image(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    return path


def _write(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, ensure_ascii=False), encoding="utf-8")
    return path


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _one_line_error(rc: int, err: str, *names: str) -> None:
    assert rc == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for name in names:
        assert name in err, err


# --- the command line ---------------------------------------------------------------------------

def test_usage_errors_are_one_line(capsys):
    for argv in (["score", "--profile", "nope"], ["data", "build", "--out", "x", "--size", "huge"],
                 ["data", "build", "--out", "x", "--seed", "abc"], ["nope"], []):
        with pytest.raises(SystemExit) as e:
            main(argv)
        err = capsys.readouterr().err
        assert e.value.code == 2
        assert len(err.strip().splitlines()) == 1, err
        assert "--help" in err


def test_score_cli_process_bad_inputs(tmp_path):
    """Real processes: exit status 2, one stderr line naming the file, no traceback."""
    truth = _write(tmp_path / "true_zsOD.json", {"0.jpg": {"cat": [[1, 2, 3, 4]]}})
    cases = {
        "missing.json": None,
        "malformed.json": b'{"0.jpg": ',
        "latin1.json": b'{"0.jpg": "\xff"}',
        "list.json": b"[1, 2]",
        "box3.json": b'{"0.jpg": {"cat": [[1, 2, 3]]}}',
        "boxstr.json": b'{"0.jpg": {"cat": [[1, "a", 3, 4]]}}',
        "keys.json": b'{"1.jpg": {"cat": []}}',
    }
    for name, content in cases.items():
        if content is not None:
            (tmp_path / name).write_bytes(content)
        r = subprocess.run([sys.executable, "-m", "fusionbrain", "score", "--task", "zsOD",
                            "--pred", str(tmp_path / name), "--true", str(truth)],
                           capture_output=True, text=True, timeout=60)
        _one_line_error(r.returncode, r.stderr, name)


def test_score_huge_file_refused_before_reading(tmp_path, capsys):
    big = tmp_path / "prediction_HTR.json"
    with open(big, "wb") as f:
        f.truncate(200 << 20)  # sparse: 200 MB of zero bytes
    truth = _write(tmp_path / "true_HTR.json", {"0.png": "a"})
    rc, _, err = _cli(capsys, "score", "--task", "HTR", "--pred", str(big), "--true", str(truth))
    _one_line_error(rc, err, "prediction_HTR.json", "too large")


def test_score_unknown_task_and_half_folder_options(tmp_path, capsys):
    truth = _write(tmp_path / "t.json", {"0.png": "a"})
    rc, _, err = _cli(capsys, "score", "--task", "OCR", "--pred", str(truth), "--true", str(truth))
    _one_line_error(rc, err, "unknown task 'OCR'")
    rc, _, err = _cli(capsys, "score", "--pred-dir", str(tmp_path))
    _one_line_error(rc, err, "--true-dir")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    rc, _, err = _cli(capsys, "score", "--pred-dir", str(tmp_path / "a"),
                      "--true-dir", str(tmp_path / "b"))
    _one_line_error(rc, err, "no truth files")


def test_data_build_out_below_a_file_and_negative_seed(tmp_path, capsys):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    rc, _, err = _cli(capsys, "data", "build", "--out", str(blocker / "sub"), "--size", "tiny")
    _one_line_error(rc, err, "afile is a file")
    rc, _, err = _cli(capsys, "data", "build", "--out", str(tmp_path / "d"), "--size", "tiny",
                      "--seed", "-1")
    _one_line_error(rc, err, "--seed")
    assert not (tmp_path / "d").exists()


def test_data_import_out_is_a_file(tmp_path, capsys):
    _image(tmp_path / "images" / "a.png")
    labels = _write(tmp_path / "labels.json", {"a.png": "word"})
    rc, _, err = _cli(capsys, "data", "import", "copybook", str(labels), "--out", str(labels))
    _one_line_error(rc, err, "labels.json", "not a folder")
    rc, _, err = _cli(capsys, "data", "import", "copybook", str(labels),
                      "--out", str(labels / "x"))
    _one_line_error(rc, err, "labels.json is a file")
    assert json.loads(labels.read_text("utf-8")) == {"a.png": "word"}


def test_coco_bad_box_never_makes_a_present_category_a_negative(tmp_path):
    from fusionbrain.tasks.zsod.coco import read_coco

    _image(tmp_path / "images" / "a.png")
    ann = {"images": [{"id": 1, "file_name": "a.png", "width": 60, "height": 40}],
           "annotations": [{"image_id": 1, "bbox": [1, 2, 3], "category_id": 1},
                           {"image_id": 1, "bbox": [1, 2, 3, 4], "category_id": 1},
                           {"image_id": 1, "bbox": [1, 2, 3, 4], "category_id": 2}],
           "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"},
                          {"id": 3, "name": "car"}]}
    from fusionbrain.data.report import SkipReport

    report = SkipReport()
    samples = read_coco(_write(tmp_path / "ann" / "instances.json", ann), tmp_path / "images",
                        report=report)
    assert [e.reason.split(":")[0] for e in report.entries] == ["bad box"]
    (s,) = samples
    assert "cat" not in s.phrases  # its boxes are incomplete: neither asked nor a negative
    assert s.phrases["dog"] == [[1.0, 2.0, 3.0, 4.0]]
    assert s.phrases["car"] == []


# --- atomic writes ------------------------------------------------------------------------------

def test_atomic_write_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "p.json"
    write_json_atomic(target, {"old": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w", encoding="utf-8") as f:
            f.write('{"new": ')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.json"]


def test_atomic_write_errors_name_the_path_and_respect_umask(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="f is a file, not a folder"):
        write_json_atomic(tmp_path / "f" / "p.json", {})
    (tmp_path / "d").mkdir()
    with pytest.raises(UserError, match="is a folder"):
        write_json_atomic(tmp_path / "d", {})
    old = os.umask(0o022)
    os.umask(old)
    write_json_atomic(tmp_path / "ok.json", {})
    mode = stat.S_IMODE((tmp_path / "ok.json").stat().st_mode)
    assert mode == 0o666 & ~old  # what open() gives, not mkstemp's 0600


# --- model configs and folders --------------------------------------------------------------------

@pytest.mark.parametrize("spec, key", [
    ('{"preset": "nope"}', "preset"),
    ('{"preset": "tiny", "image_grid": 0}', "image_grid"),
    ('{"preset": "tiny", "body_layers": -1}', "body_layers"),
    ('{"preset": "tiny", "lora_dropout": 1.5}', "lora_dropout"),
    ('{"preset": "tiny", "lora_targets": []}', "lora_targets"),
])
def test_model_config_bad_values_name_the_key(spec, key):
    from fusionbrain.model.configuration import resolve_config

    with pytest.raises(UserError, match=f"key '{key}'"):
        resolve_config(spec)


def test_random_body_bad_body_config_is_a_user_error():
    from fusionbrain.model.body import load_body
    from fusionbrain.model.configuration import resolve_config

    for body_config, what in (({"hidden_size": "x"}, "hidden_size"),
                              ({"hidden_size": 65, "num_attention_heads": 4}, "multiple")):
        cfg = resolve_config({"preset": "tiny", "body_config": body_config})
        with pytest.raises(UserError, match=what):
            load_body(cfg, vocab_size=100)


def test_random_body_keeps_tiny_sizes_for_keys_left_out():
    """A partial body_config must not fall back to Llama's 7B defaults (out of memory)."""
    from fusionbrain.model.body import load_body
    from fusionbrain.model.configuration import resolve_config

    cfg = resolve_config({"preset": "tiny", "body_config": {"hidden_size": 32}})
    body = load_body(cfg, vocab_size=100)
    assert body.config.hidden_size == 32
    assert body.config.intermediate_size == 128 and body.config.num_hidden_layers == 2


def test_model_folder_with_unknown_task_names_config(tmp_path, capsys):
    _write(tmp_path / "m" / "config.json",
           {"format": 1, "model": {"preset": "tiny"}, "tasks": ["OCR"], "frozen": {}})
    rc, _, err = _cli(capsys, "info", "--model", str(tmp_path / "m"))
    _one_line_error(rc, err, "config.json", "'tasks'", "OCR")
    (tmp_path / "file").write_text("x")
    rc, _, err = _cli(capsys, "info", "--model", str(tmp_path / "file"))
    _one_line_error(rc, err, "file", "is a file")


# --- predict: unreadable input items still get a prediction ---------------------------------------

def _challenge_input(root: Path) -> tuple[Path, Path]:
    """A 3-item input folder per task with one corrupt image (or empty request) each."""
    inp, true = root / "input", root / "true"
    _image(inp / "HTR" / "images" / "0.png")
    _truncated(inp / "HTR" / "images" / "1.png")
    _image(inp / "HTR" / "images" / "2.png")
    _write(true / "true_HTR.json", {"0.png": "a", "1.png": "b", "2.png": "c"})
    _image(inp / "VQA" / "images" / "0.jpg", "JPEG")
    _truncated(inp / "VQA" / "images" / "1.jpg")
    _write(inp / "VQA" / "questions.json",
           {str(i): {"file_name": f"{i % 2}.jpg", "question": "what?"} for i in range(3)})
    _write(true / "true_VQA.json",
           {str(i): {"answer": "x", "question_id": i, "lang": "en"} for i in range(3)})
    for n in ("0.jpg", "2.jpg"):
        _image(inp / "zsOD" / "images" / n, "JPEG")
    _truncated(inp / "zsOD" / "images" / "1.jpg")
    _write(inp / "zsOD" / "requests.json", {f"{i}.jpg": ["cat", "dog"] for i in range(3)})
    _write(true / "true_zsOD.json", {f"{i}.jpg": {"cat": [[1, 2, 3, 4]], "dog": []}
                                     for i in range(3)})
    _write(inp / "C2C" / "requests.json", {"0": "int f() { return 1; }", "1": "  ", "2": "x"})
    _write(true / "true_C2C.json", {"0": "def f ( ) : return 1", "1": "x = 1", "2": "y = 2"})
    return inp, true


def test_prediction_files_keep_every_key_of_a_corrupt_input(tmp_path, capsys):
    inp, true = _challenge_input(tmp_path)
    out = tmp_path / "out"
    fake = {"HTR": "a", "VQA": "x", "C2C": "x = 1", "zsOD": {"cat": [[0.9, 1, 2, 3, 4]]}}
    for task in TASKS:
        fmt = task_module(task, "formats")
        samples = fmt.read_input(inp / task)
        err = capsys.readouterr().err
        assert len(samples) == 2
        assert len(err.strip().splitlines()) == 1 and err.startswith("warning: "), err
        assert "predicts empty" in err
        pred = fmt.prediction_json(samples, [fake[task]] * len(samples))
        truth = json.loads((true / f"true_{task}.json").read_text("utf-8"))
        assert list(pred) == list(truth)  # every key, in the input's order
        write_json_atomic(out / f"prediction_{task}.json", pred)
    assert json.loads((out / "prediction_zsOD.json").read_text())["1.jpg"] == {"cat": [],
                                                                               "dog": []}
    assert json.loads((out / "prediction_HTR.json").read_text())["1.png"] == ""
    assert json.loads((out / "prediction_VQA.json").read_text())["1"] == ""
    report = score_dir(out, true)  # the official rules need every key: this scores at all
    assert set(report["tasks"]) == set(TASKS)


def test_plain_lists_still_work_with_prediction_json():
    from fusionbrain.tasks.htr.data import HTRSample
    from fusionbrain.tasks.htr.formats import prediction_json

    s = [HTRSample("0.png", "/x/0.png", "", "")]
    assert prediction_json(s, ["a"]) == {"0.png": "a"}


def test_closed_stdout_is_not_a_traceback(tmp_path):
    """`fusionbrain score ... | head -1`: the reader leaves early; no traceback."""
    truth = _write(tmp_path / "true_HTR.json", {"0.png": "a"})
    p = subprocess.Popen([sys.executable, "-m", "fusionbrain", "score", "--task", "HTR",
                          "--pred", str(truth), "--true", str(truth)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # before the interpreter has started: every write hits a closed pipe
    err = p.stderr.read().decode()
    assert p.wait(timeout=60) == 141
    assert "Traceback" not in err and "BrokenPipe" not in err, err


# --- training: a bad item is skipped, never a crash hours in -----------------------------------

def test_run_out_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "out").write_text("x")
    rc, out, err = _cli(capsys, "run", "--out", str(tmp_path / "out"))
    _one_line_error(rc, err, "out", "must be a folder")
    assert "building" not in out  # refused before any work


def test_training_split_skips_a_corrupt_image(tmp_path, capsys):
    from fusionbrain.train.engine import load_split

    folder = tmp_path / "data" / "train" / "HTR"
    _image(folder / "images" / "a.png", "PNG")
    _truncated(folder / "images" / "b.png")
    (folder / "samples.jsonl").write_text("".join(
        json.dumps({"id": i, "image_path": f"images/{i}.png", "text": "word", "lang": "en"}) + "\n"
        for i in ("a", "b")), encoding="utf-8")
    sets = load_split(tmp_path / "data", "train", ["HTR", "VQA"])
    assert [s.id for s in sets["HTR"]] == ["a"] and "VQA" not in sets
    err = capsys.readouterr().err
    assert "skipped 1" in err and "b.png" in err


def test_train_init_errors_are_one_line(tmp_path, capsys):
    """--init names a model that is not there, or meets --resume: one line, exit 2."""
    (tmp_path / "data").mkdir()
    rc, _, err = _cli(capsys, "train", "--data", str(tmp_path / "data"), "--out",
                      str(tmp_path / "run"), "--config", "configs/tiny.json", "--init",
                      str(tmp_path / "no-such-model"))
    _one_line_error(rc, err, "no-such-model")
    rc, _, err = _cli(capsys, "train", "--out", str(tmp_path / "run"), "--resume", "--init",
                      str(tmp_path))
    _one_line_error(rc, err, "--init")
