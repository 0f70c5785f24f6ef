"""`fusionbrain data build` and the embedded default's real parts (COCO128, AVATAR)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fusionbrain.cli import main
from fusionbrain.data import build as build_mod
from fusionbrain.errors import UserError
from fusionbrain.tasks import TASKS
from fusionbrain.tasks.c2c import data as c2c_data
from fusionbrain.tasks.zsod import coco


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_coco128_held_out_categories_only_in_test():
    held = set(coco.HELD_OUT) | {coco.EN_RU[n] for n in coco.HELD_OUT}
    by_split = {s: coco.coco128_samples(s, seed=5) for s in ("train", "valid", "test")}
    for split in ("train", "valid"):
        phrases = {p for s in by_split[split] for p in s.phrases}
        assert not phrases & held, split
    test_pos = {p for s in by_split["test"] for p, boxes in s.phrases.items() if boxes}
    assert set(coco.HELD_OUT) <= test_pos and {coco.EN_RU[n] for n in coco.HELD_OUT} <= test_pos
    images = {s: {x.image_path for x in v} for s, v in by_split.items()}
    assert not images["test"] & (images["train"] | images["valid"])
    assert not images["train"] & images["valid"]
    assert len(images["train"] | images["valid"] | images["test"]) == 128
    for split, samples in by_split.items():
        assert {s.lang for s in samples} == {"en", "ru"}, split
        assert any(b == [] for s in samples for b in s.phrases.values())  # negatives
        ru = [p for s in samples if s.lang == "ru" for p in s.phrases]
        assert ru and all(any("а" <= c <= "я" or c == "ё" for c in p.lower()) for p in ru)


def test_coco128_split_does_not_depend_on_seed():
    ids = [[s.id for s in coco.coco128_samples("test", seed=k)] for k in (0, 1)]
    assert ids[0] == ids[1]


def test_c2c_default_is_avatar_subsampled_deterministically(tmp_path):
    small0 = c2c_data.build_default("train", "small", 0, tmp_path)
    assert len(small0) == 400
    assert small0 == c2c_data.build_default("train", "small", 0, tmp_path)
    assert small0 != c2c_data.build_default("train", "small", 1, tmp_path)
    tiny = c2c_data.build_default("test", "tiny", 0, tmp_path)
    test_small = c2c_data.build_default("test", "small", 7, tmp_path)
    assert test_small == c2c_data.build_default("test", "small", 0, tmp_path)  # fixed test set
    assert {s.id for s in tiny} <= {s.id for s in test_small}
    assert len(c2c_data.build_default("test", "large", 0, tmp_path)) == 682


def test_cli_build_is_complete_deterministic_and_rerun_safe(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "build", "--out", str(out), "--size", "tiny", "--seed", "3",
                 "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    assert "task" in printed and "split" in printed and " en " in printed and " ru " in printed
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["seed"] == 3 and manifest["size"] == "tiny"
    assert manifest["tasks"] == list(TASKS)
    for task in TASKS:
        for split in ("train", "valid", "test"):
            c = manifest["counts"][task][split]
            assert c["total"] > 0
            row = [ln for ln in printed.splitlines()
                   if ln.split()[:2] == [task, split] and "samples" not in ln]  # table, not progress
            assert row and row[0].split()[-1] == str(c["total"])
        assert (out / "train" / task / "samples.jsonl").is_file()
        assert (out / "valid" / task / "samples.jsonl").is_file()
        assert (out / "test" / "input" / task).is_dir()
        truth = json.loads((out / "test" / "true" / f"true_{task}.json").read_text("utf-8"))
        assert len(truth) == manifest["counts"][task]["test"]["total"]
    # bilingual tasks have both languages in every split
    for task in ("HTR", "VQA", "zsOD"):
        for split in ("train", "valid", "test"):
            assert manifest["counts"][task][split].get("en", 0) > 0
            assert manifest["counts"][task][split].get("ru", 0) > 0
    # challenge keys are "0", "1", ...
    assert "0.png" in json.loads((out / "test/true/true_HTR.json").read_text("utf-8"))
    assert "0.jpg" in json.loads((out / "test/input/zsOD/requests.json").read_text("utf-8"))
    assert not (out / build_mod.STAGING).exists()
    first = snapshot(out)

    # A re-run is a no-op.
    assert main(["data", "build", "--out", str(out), "--size", "tiny", "--seed", "3"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert snapshot(out) == first
    # Another seed needs --force.
    assert main(["data", "build", "--out", str(out), "--size", "tiny", "--seed", "4"]) == 2
    assert "--force" in capsys.readouterr().err
    # --force rebuilds the same bytes (one worker this time: parallelism changes nothing).
    assert main(["data", "build", "--out", str(out), "--size", "tiny", "--seed", "3",
                 "--force", "--workers", "1"]) == 0
    assert snapshot(out) == first


@pytest.fixture
def c2c_only(monkeypatch):
    """Build only C2C (instant), to test the folder handling quickly."""
    monkeypatch.setattr(build_mod, "task_names", lambda: ["C2C"])


def test_killed_build_leaves_no_manifest_and_is_cleaned_up(tmp_path, c2c_only, monkeypatch):
    out = tmp_path / "ds"
    real_job = build_mod.build_job

    def dies_on_test(task, split, *a):
        if split == "test":
            raise KeyboardInterrupt
        return real_job(task, split, *a)

    monkeypatch.setattr(build_mod, "build_job", dies_on_test)
    with pytest.raises(KeyboardInterrupt):
        build_mod.build(out, "tiny", 0, workers=1)
    assert not (out / "manifest.json").exists()
    monkeypatch.setattr(build_mod, "build_job", real_job)
    (out / "train").mkdir()  # a leftover from an even older attempt
    (out / "train" / "junk.txt").write_text("x")
    m = build_mod.build(out, "tiny", 0, workers=1)
    assert m["counts"]["C2C"]["test"]["total"] == 8
    assert not (out / "train" / "junk.txt").exists() and not (out / ".building").exists()
    assert (out / "manifest.json").is_file()


def test_refuses_a_foreign_folder(tmp_path, c2c_only):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="not empty"):
        build_mod.build(tmp_path, "tiny", 0, workers=1)
    build_mod.build(tmp_path, "tiny", 0, workers=1, force=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"  # --force never touches foreign files


def test_unknown_size_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="unknown size"):
        build_mod.build(tmp_path, "huge", 0)
