"""The tasks' trivial baselines as a challenge participant would run them: fit on the
training split, predict a challenge ``input/`` folder into ``prediction_<TASK>.json`` files.

Used by ``challenge init`` (the baseline rows of the leaderboard) and by the example
submission ``examples/submissions/trivial-baselines`` (inside its sandbox). Torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fusionbrain.scoring import pred_file_name
from fusionbrain.tasks import TASKS, task_module
from fusionbrain.utils.io import write_json_atomic


def fit_states(data: str | os.PathLike[str]) -> dict[str, Any]:
    """``{TASK: state}`` for every task with a training split in ``data/train/<TASK>``."""
    data = Path(data)
    states: dict[str, Any] = {}
    for task in TASKS:
        if (data / "train" / task).is_dir():
            split = task_module(task, "data").read_split(data / "train" / task)
            states[task] = task_module(task, "baseline").fit(split)
    return states


def names() -> dict[str, str]:
    return {t: getattr(task_module(t, "baseline"), "NAME", "baseline") for t in TASKS}


def predict_folder(states: dict[str, Any], input_dir: str | os.PathLike[str],
                   output_dir: str | os.PathLike[str]) -> list[str]:
    """Write ``prediction_<TASK>.json`` for every task with a state and an input folder;
    returns the tasks written."""
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    done = []
    for task, state in states.items():
        if task not in TASKS or not (input_dir / task).is_dir():
            continue
        fmt = task_module(task, "formats")
        samples = fmt.read_input(input_dir / task)
        preds = task_module(task, "baseline").predict(state, samples)
        write_json_atomic(output_dir / pred_file_name(task),
                          fmt.prediction_json(samples, preds))
        done.append(task)
    return done
