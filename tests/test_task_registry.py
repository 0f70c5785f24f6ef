"""One folder per task (issue 13): per-task configs, old configs converted on read, the
registry's declarations, the typed head <-> model contract, and shared code that never
names a task."""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from fusionbrain.errors import UserError
from fusionbrain.model.configuration import PRESETS, FusionBrainConfig, preset, resolve_config
from fusionbrain.tasks import TASKS, api_methods, importers, task_config_class, task_help, task_list
from fusionbrain.tasks.base import TaskConfig

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "fusionbrain"
LEGACY = Path(__file__).resolve().parent / "data" / "legacy_model_d05cf3d"


def flat(config: FusionBrainConfig) -> dict:
    """The config as saved before per-task configs: task fields flat, with their prefix."""
    out = {k: v for k, v in config.to_dict().items() if k != "tasks"}
    for sub in config.tasks.values():
        for name, value in dataclasses.asdict(sub).items():
            out[type(sub).LEGACY_PREFIX + name] = value
    return out


# -- configs ------------------------------------------------------------------------------

def test_every_task_owns_a_config_and_presets_reach_it():
    for task in TASKS:
        assert issubclass(task_config_class(task), TaskConfig)
        assert type(preset("default").tasks[task]) is task_config_class(task)
    small = preset("cpu-small")
    assert small.tasks["C2C"].decoder == "edit" and small.tasks["VQA"].answer_mode == "classify"
    assert preset("tiny").tasks["HTR"].height == 16 and preset("default").tasks["HTR"].height == 32


@pytest.mark.parametrize("name", list(PRESETS))
def test_old_flat_configs_convert_on_read(name):
    cfg = preset(name)
    old = flat(cfg)
    assert "tasks" not in old and any(k.startswith("htr_") for k in old)
    assert FusionBrainConfig.from_dict(old) == cfg
    # and the new nested form round-trips through JSON
    assert FusionBrainConfig.from_dict(json.loads(cfg.to_json())) == cfg


def test_flat_keys_over_a_preset_and_old_attribute_names():
    # a training config's model section as the shipped ones spell it (flat task keys)
    cfg = resolve_config({"preset": "cpu-small", "lora_r": 16, "htr_body_pool": 4})
    assert cfg.tasks["HTR"].body_pool == 4 and cfg.tasks["C2C"].decoder == "edit"
    assert cfg.htr_body_pool == 4  # the old attribute name reads the sub-config
    changed = cfg.replace(htr_height=20, lora_r=2)
    assert changed.tasks["HTR"].height == 20 and changed.lora_r == 2
    assert cfg.tasks["HTR"].height == 32  # a copy: the original is unchanged
    assert cfg.with_task("vqa", answers=["yes"]).tasks["VQA"].answers == ["yes"]
    with pytest.raises(TypeError):
        cfg.replace(htr_no_such_key=1)


@pytest.mark.parametrize("data, key", [
    ({"htr_height": 0}, "'htr_height'"),
    ({"tasks": {"HTR": {"height": 0}}}, "'tasks.HTR.height'"),
    ({"tasks": {"HTR": {"height": "x"}}}, "'tasks.HTR.height'"),
    ({"tasks": {"HTR": {"heigth": 3}}}, "'tasks.HTR.heigth'"),
    ({"tasks": {"OCR": {}}}, "'tasks.OCR'"),
    ({"tasks": []}, "'tasks'"),
    ({"tasks": {"VQA": {"answer_mode": "guess"}}}, "'tasks.VQA.answer_mode'"),
    ({"zsod_score_threshold": 2.0}, "'zsod_score_threshold'"),
    ({"c2c_phrases": [1]}, "'c2c_phrases'"),
    ({"htr_align_ce": -1.0}, "'htr_align_ce'"),
])
def test_bad_task_values_name_the_key_as_written(data, key):
    with pytest.raises(UserError, match=key):
        FusionBrainConfig.from_dict({"preset": "tiny", **data}, source="cfg.json")


def test_a_model_saved_before_per_task_configs_loads_and_predicts_the_same(tmp_path):
    """tests/data/legacy_model_d05cf3d was saved by the code before this change (make.py)."""
    from fusionbrain.model.modeling_fusionbrain import FusionBrain

    saved = json.loads((LEGACY / "config.json").read_text("utf-8"))
    assert "tasks" not in saved["model"] and saved["model"]["c2c_decoder"] == "edit"
    model = FusionBrain.from_pretrained(LEGACY)
    assert model.config.tasks["C2C"].decoder == "edit"
    assert model.config.tasks["C2C"].phrases == saved["model"]["c2c_phrases"]
    expected = json.loads((LEGACY / "expected.json").read_text("utf-8"))
    # the old code had no repair step: its raw decode is what the weights must reproduce
    assert model.config.tasks["C2C"].repair == "model-first"
    model.config.tasks["C2C"].repair = "none"
    assert model.translate(expected["java"]) == expected["python"]
    # saved again, it is in the new nested form and still the same model
    model.save_pretrained(tmp_path / "again")
    again_cfg = json.loads((tmp_path / "again" / "config.json").read_text("utf-8"))["model"]
    assert again_cfg["tasks"]["C2C"]["decoder"] == "edit" and "c2c_decoder" not in again_cfg
    again = FusionBrain.from_pretrained(tmp_path / "again")
    assert again.config.tasks["C2C"].repair == "none"
    assert again.translate(expected["java"]) == expected["python"]


def test_a_legacy_artefact_with_a_bad_flat_value_is_a_user_error(tmp_path):
    from fusionbrain.model.modeling_fusionbrain import FusionBrain

    shutil.copytree(LEGACY, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "config.json").read_text("utf-8"))
    meta["model"]["c2c_decoder"] = "guess"
    (tmp_path / "m" / "config.json").write_text(json.dumps(meta), "utf-8")
    with pytest.raises(UserError, match="c2c_decoder"):
        FusionBrain.from_pretrained(tmp_path / "m")


# -- what the tasks declare -----------------------------------------------------------------

def test_tasks_declare_importers_helpers_and_help():
    kinds = importers()
    assert {k: t for k, (t, _) in kinds.items()} == {
        "avatar": "C2C", "parallel": "C2C", "copybook": "HTR", "coco": "zsOD", "vqa2": "VQA"}
    assert kinds["parallel"][1].paths == (2,) and kinds["vqa2"][1].paths == (1, 2)
    assert {m: t for m, (t, _) in api_methods().items()} == {
        "translate": "C2C", "read_text": "HTR", "detect": "zsOD", "answer": "VQA"}
    assert all(task_help(t) and task_help(t) != t for t in TASKS)
    assert task_list() == "C2C, HTR, zsOD or VQA"


def test_help_texts_come_from_the_registry(monkeypatch, capsys):
    from fusionbrain import cli

    monkeypatch.setitem(TASKS, "Toy", "fusionbrain.tasks")  # an importable package
    for argv, want in ((["score", "--help"], "VQA or Toy"), (["train", "--help"], "VQA, Toy"),
                       (["predict", "--help"], "Toy/")):
        with pytest.raises(SystemExit):
            cli.build_parser().parse_args(argv)
        assert want in " ".join(capsys.readouterr().out.split()), argv


def test_a_missing_subcommand_module_is_an_error_not_a_hidden_command(monkeypatch):
    from fusionbrain import cli

    monkeypatch.setitem(cli.COMMANDS, "ghost", ("fusionbrain.no_such_module", "gone"))
    with pytest.raises(ModuleNotFoundError):
        cli.build_parser()


# -- the head <-> model contract -------------------------------------------------------------

def _protocol_members() -> set[str]:
    from fusionbrain.model.protocol import HeadModel

    names = set(HeadModel.__annotations__)
    names |= {n for n in vars(HeadModel) if not n.startswith("_")}
    return names


def test_heads_use_only_the_head_model_protocol():
    """Every ``model.X`` in a head (``model`` being its HeadModel argument) is a member of
    the Protocol: no head reaches into the body or the vision encoder."""
    allowed = _protocol_members()
    assert {"run_body", "embed_ids", "encode_images", "vision_feature_maps"} <= allowed
    used: set[str] = set()
    for task in ("c2c", "htr", "vqa", "zsod"):
        tree = ast.parse((SRC / "tasks" / task / "head.py").read_text("utf-8"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id == "model"):
                assert node.attr in allowed, f"{task}/head.py uses model.{node.attr}"
                used.add(node.attr)
            if isinstance(node, ast.Attribute) and node.attr in ("vision", "body", "heads"):
                inner = node.value
                assert not (isinstance(inner, ast.Name) and inner.id == "model"), task
    assert "vision" not in used and "body" not in used


def test_shared_code_never_names_a_task():
    """No task name or task-prefixed key as a literal in the model, the config or the CLIs."""
    names = {"C2C", "HTR", "zsOD", "VQA"}
    prefixes = ("htr_", "vqa_", "c2c_", "zsod_")
    files = ["cli.py", "model/configuration.py", "model/modeling_fusionbrain.py",
             "model/protocol.py", "model/cli.py", "data/cli.py", "scoring/cli.py",
             "train/predict_cli.py"]  # (train.py's --from-corrections is the HTR pilot's)
    for rel in files:
        tree = ast.parse((SRC / rel).read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in names, f"{rel} names task {node.value!r}"
                assert not node.value.startswith(prefixes), f"{rel}: {node.value!r}"
            if isinstance(node, ast.Attribute):
                assert not node.attr.startswith(prefixes), f"{rel}: .{node.attr}"
