"""HTR challenge files: ``input/HTR/images/NAME.png``, truth and prediction
``{"NAME.png": "text"}`` (torch-free).

A sample's challenge key is its id when the id is a file name (``"0.png"``, as
:func:`read_input` makes them), else the id plus ``.png`` — so renumbering samples
(``id = "0", "1", ...``) before :func:`write_input` gives the challenge's own names.
"""

from __future__ import annotations

import os
from pathlib import Path

from fusionbrain.data.images import IMAGE_EXTS, IMAGE_FORMAT, copy_image, image_key, image_problem
from fusionbrain.data.inputs import InputSamples, merge_defaults, natural_file_key, warn_skipped
from fusionbrain.data.report import SkipReport, start_report
from fusionbrain.errors import UserError
from fusionbrain.tasks.htr.data import HTRSample

IMAGES = "images"


def key(sample: HTRSample) -> str:
    """The challenge key (image file name) of a sample."""
    return image_key(sample.id, ".png", "HTR")


def read_input(task_input_dir: str | os.PathLike[str],
               report: SkipReport | None = None) -> list[HTRSample]:
    """Read ``images/`` as unlabelled samples (id = file name, text "", lang "").

    A missing or corrupt image is skipped and reported; it keeps its key with an empty
    prediction (see :mod:`fusionbrain.data.inputs`).
    """
    images = Path(task_input_dir) / IMAGES
    if not images.is_dir():
        raise UserError("image folder not found", path=images)
    report, own, before = start_report(report)
    out = InputSamples()
    for p in sorted(images.iterdir(), key=lambda p: natural_file_key(p.name)):
        if p.name.startswith(".") or p.suffix.lower() not in IMAGE_EXTS:
            continue
        problem = image_problem(p)
        if problem:
            report.add(images, p.name, problem)
            out.defaults[p.name] = ""
            continue
        out.append(HTRSample(p.name, str(p.resolve()), "", ""))
    if own:
        warn_skipped(report, before, "HTR")
    return out


def write_input(samples: list[HTRSample], task_input_dir: str | os.PathLike[str]) -> list[HTRSample]:
    """Write ``images/<key>`` per sample (converted to the key's format); returns the samples
    as they are now in the folder (id = key, image_path = the copy)."""
    images = Path(task_input_dir) / IMAGES
    images.mkdir(parents=True, exist_ok=True)
    out, seen = [], set()
    for s in samples:
        name = key(s)
        if name in seen:
            raise ValueError(f"duplicate HTR key {name!r}")
        seen.add(name)
        dst = images / name
        if Path(s.image_path).resolve() != dst.resolve():
            copy_image(s.image_path, dst, IMAGE_FORMAT.get(dst.suffix.lower()))
        out.append(HTRSample(name, str(dst.resolve()), s.text, s.lang))
    return out


def truth_json(samples: list[HTRSample]) -> dict:
    """``true_HTR.json``: ``{"0.png": "text"}``."""
    return {key(s): s.text for s in samples}


def prediction_json(samples: list[HTRSample], outputs: list[str]) -> dict:
    """``prediction_HTR.json``: ``{"0.png": "predicted text"}``; input images that could not
    be read get ``""``."""
    if len(outputs) != len(samples):
        raise ValueError(f"{len(outputs)} outputs for {len(samples)} HTR samples")
    pred = {key(s): str(o) for s, o in zip(samples, outputs, strict=True)}
    return merge_defaults(pred, samples, natural_file_key)

