"""Seeded, bounded fuzzing of every command's inputs: no mutation may end in a traceback.

Each test takes valid inputs, mutates them (a JSON node replaced by a hostile value, a key
dropped or added, the text cut, a byte flipped, lines joined or split by odd line breaks),
runs the command in-process and accepts only exit status 0 or a one-line user error (2).
Any other exception propagates and fails the test, with the seed and mutation in its name.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from fusionbrain.cli import main

# CI runs the fixed seed; FUZZ_SEED=N FUZZ_SCALE=10 explores further by hand
SEED = int(os.environ.get("FUZZ_SEED", "2026"))
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
HOSTILE: list[Any] = [
    None, True, False, 0, -1, 7, 2**63, -(2**70), 1e308, -1e-308, 0.5, "", " ", "²", "٣",
    "a\u2028b", "\x00", "x" * 2000, "../../etc/passwd", "NaN", [], {}, [[]], [None],
    {"": None}, [1, 2, 3], [[1, 2, 3, 4]], {"a": [1, "b"]}, [0.1, 0.2, 0.3, 0.4, 0.5],
]
# raw JSON texts that json.dumps cannot write
RAW_HOSTILE = ["9" * 5000, "[" * 3000 + "]" * 3000, "NaN", "-Infinity", "1e999", '"\\ud800"']


def _paths(obj: Any, at: tuple = ()) -> Iterator[tuple]:
    yield at
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*at, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*at, i))


def _set(obj: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = obj
    for k in path[:-1]:
        parent = parent[k]
    parent[path[-1]] = value
    return obj


def mutate_json(obj: Any, rng: random.Random) -> str:
    """A mutated JSON text of ``obj`` (a deep copy is changed, never ``obj``)."""
    obj = json.loads(json.dumps(obj))
    op = rng.randrange(7)
    paths = list(_paths(obj))
    if op <= 2:  # replace a node with a hostile value
        return json.dumps(_set(obj, rng.choice(paths), rng.choice(HOSTILE)), ensure_ascii=False)
    if op == 3:  # replace a node with raw text json.dumps cannot produce
        marker = "@@RAW@@"
        text = json.dumps(_set(obj, rng.choice(paths), marker))
        return text.replace(json.dumps(marker), rng.choice(RAW_HOSTILE), 1)
    if op == 4:  # drop or add a key in some object
        dicts = [p for p in paths if isinstance(_get(obj, p), dict)]
        if dicts:
            d = _get(obj, rng.choice(dicts))
            if d and rng.random() < 0.5:
                d.pop(rng.choice(list(d)))
            else:
                d[rng.choice(["id", "x", "²", "", "0"])] = rng.choice(HOSTILE)
        return json.dumps(obj, ensure_ascii=False)
    text = json.dumps(obj, ensure_ascii=False)
    if op == 5:  # cut
        return text[: rng.randrange(len(text) + 1)]
    pos = rng.randrange(len(text) + 1)  # insert an odd character
    return text[:pos] + rng.choice(["\u2028", "\x0c", "\u0085", "\ufeff", "\\", '"', "{", "\x00",
                                    "é"]) + text[pos:]


def _get(obj: Any, path: tuple) -> Any:
    for k in path:
        obj = obj[k]
    return obj


def _write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    return path


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), (120, 30, 60)).save(path)
    return path


def _run(capsys, argv: list) -> None:
    """The command ends in 0 or one line and status 2; anything else fails the test."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert rc in (0, 2), (argv, rc, err)
    if rc == 2:
        # split on \n only: a message may quote a value holding U+2028
        lines = [x for x in err.strip().split("\n") if not x.startswith("warning: ")
                 and not x.startswith("error: ")]
        assert len(lines) == 1 and "Traceback" not in err, (argv, err)


def _fuzz(n: int, salt: str, one: Callable[[random.Random, int], None]) -> None:
    rng = random.Random(f"{SEED}:{salt}")
    for i in range(max(1, round(n * SCALE))):
        one(random.Random(rng.random()), i)


# --- score ---------------------------------------------------------------------------------

TRUTHS: dict[str, dict] = {
    "HTR": {"0.png": "hello", "1.png": "мир", "2.png": "x"},
    "VQA": {"0": {"answer": "red", "question_id": 0, "lang": "en"},
            "1": {"answer": ["да", "конечно"], "question_id": 1, "lang": "ru"}},
    "zsOD": {"0.jpg": {"cat": [[1, 2, 30, 40]], "dog": []},
             "1.jpg": {"красный круг": [[5.5, 6, 7, 8], [1, 1, 2, 2]]}},
    "C2C": {"0": "def f ( x ) : NEW_LINE INDENT return x + 1 NEW_LINE DEDENT",
            "1": "def g ( ) : NEW_LINE INDENT return 2 NEW_LINE DEDENT"},
}
PREDS: dict[str, dict] = {
    "HTR": {"0.png": "hello", "1.png": "мир", "2.png": "y"},
    "VQA": {"0": "red", "1": "да"},
    "zsOD": {"0.jpg": {"cat": [[0.9, 1, 2, 30, 40]], "dog": []},
             "1.jpg": {"красный круг": [[0.5, 5, 6, 7, 8]]}},
    "C2C": {"0": "def f ( x ) : NEW_LINE INDENT return x NEW_LINE DEDENT", "1": "x = 1"},
}


@pytest.mark.parametrize("task", ["HTR", "VQA", "zsOD", "C2C"])
def test_fuzz_score(tmp_path, capsys, task):
    n = 12 if task == "C2C" else 40

    def one(rng: random.Random, i: int) -> None:
        pred = _write_text(tmp_path / f"p{i}.json", json.dumps(PREDS[task]))
        true = _write_text(tmp_path / f"t{i}.json", json.dumps(TRUTHS[task]))
        which = pred if rng.random() < 0.7 else true
        _write_text(which, mutate_json(PREDS[task] if which == pred else TRUTHS[task], rng))
        profile = rng.choice(["aij2021", "strict"])
        _run(capsys, ["score", "--task", task, "--pred", pred, "--true", true,
                      "--profile", profile])

    _fuzz(n, f"score-{task}", one)


# --- data import ---------------------------------------------------------------------------

def test_fuzz_data_import(tmp_path, capsys):
    imgs = tmp_path / "images"
    for n in ("a.png", "b.png", "COCO_val_000000000001.jpg", "COCO_val_000000000002.jpg"):
        _image(imgs / n)
    valid = {
        "copybook": {"a.png": "hello", "b.png": "мир"},
        "coco": {"images": [{"id": 1, "file_name": "COCO_val_000000000001.jpg"},
                            {"id": 2, "file_name": "COCO_val_000000000002.jpg"}],
                 "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "dog"},
                                {"id": 3, "name": "bird"}],
                 "annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 10]},
                                 {"image_id": 2, "category_id": 2, "bbox": [3, 3, 5, 5],
                                  "iscrowd": 0}]},
        "vqa2_q": {"data_subtype": "val", "questions": [
            {"question_id": 10, "image_id": 1, "question": "What is it?"},
            {"question_id": 11, "image_id": 2, "question": "Is it red?"}]},
        "vqa2_a": {"annotations": [
            {"question_id": 10, "answers": [{"answer": "cat"}], "multiple_choice_answer": "cat",
             "answer_type": "other"},
            {"question_id": 11, "answers": [{"answer": "yes"}, {"answer": "no"}],
             "multiple_choice_answer": "yes", "answer_type": "yes/no"}]},
        "avatar": [{"id": "1", "java": "int f ( ) { return 1 ; }",
                    "python": "def f ( ) : NEW_LINE INDENT return 1 NEW_LINE DEDENT"},
                   {"id": "2", "java": "void g ( ) { }", "python": "def g ( ) : pass"}],
    }

    def one(rng: random.Random, i: int) -> None:
        kind = rng.choice(["copybook", "coco", "vqa2", "avatar", "parallel", "challenge"])
        d = tmp_path / f"case{i}"
        out = d / "out"
        if kind == "copybook":
            labels = _write_text(imgs / f"labels{i}.json", mutate_json(valid["copybook"], rng))
            argv = ["data", "import", "copybook", labels, "--images", imgs]
        elif kind == "coco":
            ann = _write_text(d / "instances.json", mutate_json(valid["coco"], rng))
            argv = ["data", "import", "coco", ann, "--images", imgs, "--lang",
                    rng.choice(["en", "en,ru", "ru"])]
        elif kind == "vqa2":
            q = _write_text(d / "q.json", json.dumps(valid["vqa2_q"]))
            a = _write_text(d / "a.json", json.dumps(valid["vqa2_a"]))
            target = q if rng.random() < 0.5 else a
            _write_text(target, mutate_json(valid["vqa2_q" if target == q else "vqa2_a"], rng))
            argv = ["data", "import", "vqa2", q, a, "--images", imgs]
        elif kind == "avatar":
            lines = [json.dumps(r, ensure_ascii=False) for r in valid["avatar"]]
            k = rng.randrange(len(lines))
            lines[k] = mutate_json(valid["avatar"][k], rng)
            path = _write_text(d / "a.jsonl", "\n".join(lines) + "\n")
            argv = ["data", "import", "avatar", path]
        elif kind == "challenge":  # a challenge input folder labelled by its truth file
            files = _inputs(d / "input")
            task = rng.choice(list(files))
            truth = {"zsOD": {"0.jpg": {"cat": [[1, 2, 3, 4]], "dog": []}, "1.jpg": {"круг": []}},
                     "VQA": {"0": {"answer": "red", "lang": "en"},
                             "1": {"answer": ["синий"], "lang": "ru"}},
                     "C2C": {"0": "def f ( ) : return 1", "1": "def g ( ) : pass"}}[task]
            path, obj = files[task]
            t = _write_text(d / f"true_{task}.json", json.dumps(truth, ensure_ascii=False))
            if rng.random() < 0.5:
                _write_text(t, mutate_json(truth, rng))
            else:
                _write_text(path, mutate_json(obj, rng))
            argv = ["data", "import", "challenge", d / "input" / task, "--truth", t]
        else:
            java = ["int f ( ) { return 1 ; }", "void g ( ) { }", "int h ( ) { return 2 ; }"]
            py = ["def f ( ) : return 1", "def g ( ) : pass", "def h ( ) : return 2"]
            k = rng.randrange(3)
            side = java if rng.random() < 0.5 else py
            pos = rng.randrange(len(side[k]) + 1)
            side[k] = side[k][:pos] + rng.choice(["\u2028", "\r", "\x0c", "\u0085", "\n",
                                                  "\ufeff", "é", "1 | "]) + side[k][pos:]
            j = _write_text(d / "x.java", "\n".join(java) + "\n")
            p = _write_text(d / "x.python", "\r\n".join(py) + rng.choice(["", "\n", "\r\n"]))
            argv = ["data", "import", "parallel", j, p]
        _run(capsys, [*argv, "--out", out])

    _fuzz(45, "import", one)


# --- train config ---------------------------------------------------------------------------

def test_fuzz_train_config(tmp_path, capsys):
    """Every mutated config is refused in one line, or passes validation and then stops at
    the missing data folder: no work starts on a config that is not fully valid."""
    base = json.loads((Path(__file__).resolve().parents[1] / "configs" / "tiny.json").read_text())
    base.update(threads=1, energy={"enabled": False}, loss_weights={"HTR": 1.0},
                batch_size_per_task={"zsOD": 2}, lr_groups={"heads": 0.01},
                betas=[0.9, 0.99], model={"preset": "tiny", "image_size": 64})

    def one(rng: random.Random, i: int) -> None:
        cfg = _write_text(tmp_path / f"c{i}.json", mutate_json(base, rng))
        command = "run" if i % 3 == 2 else "train"  # the main job reads the same config
        _run(capsys, [command, "--config", cfg, "--data", tmp_path / "no-data",
                      "--out", tmp_path / f"run{i}", "--no-progress"])
        assert not (tmp_path / f"run{i}" / "run_config.json").exists()

    _fuzz(50, "train", one)


# --- predict ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> tuple[Path, Any]:
    import torch

    from fusionbrain.model import FusionBrain

    torch.manual_seed(0)
    model = FusionBrain("tiny")
    d = model.save_pretrained(tmp_path_factory.mktemp("m") / "model")
    return d, model


def _inputs(root: Path) -> dict[str, tuple[Path, Any]]:
    """A valid challenge input folder; returns the request file and its JSON per task."""
    for n in ("0.png", "1.png"):
        _image(root / "HTR" / "images" / n)
    for n in ("0.jpg", "1.jpg"):
        _image(root / "zsOD" / "images" / n)
        _image(root / "VQA" / "images" / n)
    files = {
        "zsOD": (root / "zsOD" / "requests.json", {"0.jpg": ["cat", "dog"], "1.jpg": ["круг"]}),
        "VQA": (root / "VQA" / "questions.json",
                {"0": {"file_name": "0.jpg", "question": "What colour?"},
                 "1": {"file_name": "1.jpg", "question": "Какой цвет?"}}),
        "C2C": (root / "C2C" / "requests.json", {"0": "int f ( ) { return 1 ; }",
                                                 "1": "void g ( ) { }"}),
    }
    for path, obj in files.values():
        _write_text(path, json.dumps(obj, ensure_ascii=False))
    return files


def test_fuzz_predict_inputs(tmp_path, capsys, monkeypatch, tiny_model):
    import fusionbrain.train.engine as engine

    model_dir, model = tiny_model
    # the model is loaded once (the real loader is fuzzed below); the command is the CLI's
    monkeypatch.setattr(engine, "load_model", lambda path, model_class=None: model)

    def one(rng: random.Random, i: int) -> None:
        root = tmp_path / f"in{i}"
        files = _inputs(root)
        task = rng.choice([*files, "HTR"])
        if task == "HTR":  # odd image names, a text file posing as an image, no images
            what = rng.randrange(3)
            if what == 0:
                _image(root / "HTR" / "images" / rng.choice(["².png", "٣.png", "-1.png", ".png"]))
            elif what == 1:
                (root / "HTR" / "images" / "2.png").write_bytes(b"not an image")
            else:
                shutil.rmtree(root / "HTR" / "images")
        else:
            path, obj = files[task]
            _write_text(path, mutate_json(obj, rng))
        _run(capsys, ["predict", "--model", model_dir, "--input", root, "--output",
                      tmp_path / f"out{i}", "--no-progress", "--no-energy", "--threads", "1",
                      "--batch-size", rng.choice(["1", "4"])])
        for p in (tmp_path / f"out{i}").glob("prediction_*.json"):
            json.loads(p.read_text("utf-8"), parse_constant=_no_constant)  # standard JSON

    _fuzz(30, "predict", one)


def _no_constant(name: str) -> None:
    raise AssertionError(f"{name} in a prediction file")


def test_fuzz_model_config(tmp_path, capsys, tiny_model):
    model_dir, _ = tiny_model
    meta = json.loads((model_dir / "config.json").read_text())

    def one(rng: random.Random, i: int) -> None:
        d = tmp_path / f"m{i}"
        shutil.copytree(model_dir, d)
        _write_text(d / "config.json", mutate_json(meta, rng))
        _run(capsys, ["info", "--model", d, "--json"])

    _fuzz(12, "model", one)
