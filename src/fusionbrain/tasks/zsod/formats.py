"""zsOD challenge files: ``input/zsOD/images/`` + ``requests.json`` ``{"0.jpg": [phrases]}``;
truth ``{"0.jpg": {phrase: [[x, y, w, h], ...]}}``; prediction
``{"0.jpg": {phrase: [[score, x, y, w, h], ...]}}`` (torch-free).

A sample's key is its id when the id is a file name (``"0.jpg"``, as :func:`read_input` makes
them), else the id plus ``.jpg``; renumbering samples (``id = "0", "1", ...``) before
:func:`write_input` gives the challenge's own names.
"""

from __future__ import annotations

import os
from pathlib import Path

from fusionbrain.data.images import IMAGE_FORMAT, copy_image, image_key, image_problem
from fusionbrain.data.inputs import InputSamples, merge_defaults, natural_file_key, warn_skipped
from fusionbrain.data.lang import detect_lang
from fusionbrain.data.report import SkipReport, start_report
from fusionbrain.errors import UserError
from fusionbrain.tasks.zsod.data import ZsODSample
from fusionbrain.utils.io import read_json, write_json_atomic

IMAGES = "images"
REQUESTS = "requests.json"


def key(sample: ZsODSample) -> str:
    """The challenge key (image file name) of a sample."""
    return image_key(sample.id, ".jpg", "zsOD")


def read_input(task_input_dir: str | os.PathLike[str],
               report: SkipReport | None = None) -> list[ZsODSample]:
    """Read ``requests.json`` + ``images/`` as unlabelled samples (every phrase → ``[]``),
    keys in numeric order; the language is detected from the phrases ("" if unknown).

    A missing or corrupt image is skipped and reported (its key keeps every phrase with no
    box in the prediction, see :mod:`fusionbrain.data.inputs`); a request that is not a list
    of strings is an error in the file.
    """
    root = Path(task_input_dir)
    path = root / REQUESTS
    req = read_json(path, expect=dict)
    report, own, before = start_report(report)
    out = InputSamples()
    for k in sorted(req, key=natural_file_key):
        phrases = req[k]
        if not isinstance(phrases, list) or not all(isinstance(p, str) for p in phrases):
            raise UserError("expected a list of phrases", path=path, key=k)
        image = root / IMAGES / k
        problem = image_problem(image)
        if problem:
            report.add(path, k, f"{problem}: {image}")
            out.defaults[k] = {p: [] for p in phrases}
            continue
        lang = detect_lang(" ".join(phrases)) or ""
        out.append(ZsODSample(k, str(image.resolve()), {p: [] for p in phrases}, lang))
    if own:
        warn_skipped(report, before, "zsOD")
    return out


def write_input(samples: list[ZsODSample], task_input_dir: str | os.PathLike[str]) -> list[ZsODSample]:
    """Write ``images/<key>`` (converted to the key's format) and ``requests.json``; returns
    the samples as they are now in the folder (id = key, image_path = the copy)."""
    root = Path(task_input_dir)
    images = root / IMAGES
    images.mkdir(parents=True, exist_ok=True)
    req: dict[str, list[str]] = {}
    out = []
    for s in samples:
        name = key(s)
        if name in req:
            raise ValueError(f"duplicate zsOD key {name!r}")
        req[name] = list(s.phrases)
        dst = images / name
        if Path(s.image_path).resolve() != dst.resolve():
            copy_image(s.image_path, dst, IMAGE_FORMAT.get(dst.suffix.lower()))
        out.append(ZsODSample(name, str(dst.resolve()),
                              {p: [list(b) for b in boxes] for p, boxes in s.phrases.items()},
                              s.lang))
    write_json_atomic(root / REQUESTS, req)
    return out


def truth_json(samples: list[ZsODSample]) -> dict:
    """``true_zsOD.json``: ``{key: {phrase: [[x, y, w, h], ...]}}`` (``[]`` = absent)."""
    return {key(s): {p: [list(b) for b in boxes] for p, boxes in s.phrases.items()}
            for s in samples}


def prediction_json(samples: list[ZsODSample], outputs: list[dict]) -> dict:
    """``prediction_zsOD.json``: ``{key: {phrase: [[score, x, y, w, h], ...]}}``; every
    requested phrase is a key (``[]`` when the model found nothing, or the image could not be
    read)."""
    if len(outputs) != len(samples):
        raise ValueError(f"{len(outputs)} outputs for {len(samples)} zsOD samples")
    out = {}
    for s, o in zip(samples, outputs, strict=True):
        o = o or {}
        pred = {p: [[float(v) for v in b] for b in o.get(p, [])] for p in s.phrases}
        for p, boxes in o.items():  # phrases the model added are kept (the metric ignores them)
            if p not in pred:
                pred[p] = [[float(v) for v in b] for b in boxes]
        out[key(s)] = pred
    return merge_defaults(out, samples, natural_file_key)
