"""zsOD data: the sample type (readers of real datasets are added below it)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from fusionbrain.data.jsonl import read_samples, write_samples
from fusionbrain.data.lang import check_lang, detect_lang
from fusionbrain.data.report import SkipReport, read_labelled_challenge
from fusionbrain.data.sizes import pick


@dataclass
class ZsODSample:
    id: str
    image_path: str
    # phrase -> true boxes [x, y, w, h] in pixels; [] = the phrase is absent from the image
    phrases: dict[str, list[list[float]]] = field(default_factory=dict)
    lang: str = "en"  # "en" or "ru"


# ---------------------------------------------------------------------------------------------
# Training format, readers of real datasets, and the embedded default (synthetic + COCO128).

# Synthetic scene images per split; COCO128 (both languages) is added on top of these.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"train": 16, "valid": 6, "test": 6},
    "small": {"train": 700, "valid": 70, "test": 70},
    "medium": {"train": 4000, "valid": 300, "test": 300},
    "large": {"train": 20000, "valid": 1000, "test": 1000},
}
# COCO128 images per split in a tiny build (None = all of the split).
COCO_MAX_IMAGES: dict[str, int | None] = {"tiny": 3, "small": None, "medium": None, "large": None}


def box_problem(box: object) -> str | None:
    """Why ``box`` is not an ``[x, y, w, h]`` with finite numbers and positive size, or None."""
    if not isinstance(box, list) or len(box) != 4 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            for v in box):
        return f"bad box: {box!r}"
    if box[2] <= 0 or box[3] <= 0:
        return f"bad box (zero size): {box!r}"
    return None


def phrases_problem(phrases: object) -> str | None:
    """Why a ``{phrase: [[x, y, w, h], ...]}`` mapping is unusable, or None."""
    if not isinstance(phrases, dict) or not phrases:
        return "no phrases"
    for p, boxes in phrases.items():
        if not isinstance(p, str) or not p.strip():
            return "empty phrase"
        if not isinstance(boxes, list):
            return f"bad record: boxes of {p!r} are not a list"
        for b in boxes:
            reason = box_problem(b)
            if reason:
                return reason
    return None


def _problem(s: ZsODSample) -> str | None:
    reason = phrases_problem(s.phrases)
    if reason:
        return reason
    if check_lang(s.lang) is None:
        return f"unknown language: {s.lang!r}"
    return None


def read_split(folder: str | os.PathLike[str], report: SkipReport | None = None,
               verify_images: bool = False) -> list[ZsODSample]:
    """Read ``folder/samples.jsonl`` (training format); image paths come back absolute."""
    return read_samples(ZsODSample, folder, _problem, report, verify_images)


def write_split(samples: list[ZsODSample], folder: str | os.PathLike[str]) -> None:
    """Write ``folder/samples.jsonl``, copying images into ``folder/images`` where needed."""
    write_samples(samples, folder)


def read_coco(instances_json: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None = None,
              langs: tuple[str, ...] = ("en",), seed: int = 0,
              report: SkipReport | None = None) -> list[ZsODSample]:
    """COCO-format detection JSON (+ images) as zsOD samples; see :mod:`.coco`."""
    from fusionbrain.tasks.zsod.coco import read_coco as _read

    return _read(instances_json, images_dir, langs, seed, report)


def read_challenge(input_dir: str | os.PathLike[str], true_json: str | os.PathLike[str] | None = None,
                   report: SkipReport | None = None) -> list[ZsODSample]:
    """Read a challenge ``input/zsOD`` folder, labelled from ``true_zsOD.json`` when given.

    A truth phrase missing from the requests is added; a request without truth is skipped.
    """
    from fusionbrain.tasks.zsod.formats import read_input

    def label(s: ZsODSample, t: object) -> str | None:
        if not isinstance(t, dict):
            return "bad record: not an object"
        # The official files allow [[]] for "absent".
        phrases = {p: [b for b in boxes if b != []] if isinstance(boxes, list) else boxes
                   for p, boxes in t.items()}
        reason = phrases_problem(phrases)
        if reason:
            return reason
        lang = detect_lang(" ".join(phrases))
        if lang is None:
            return f"unknown language: {' | '.join(phrases)!r}"
        s.phrases = {p: [[float(v) for v in b] for b in boxes] for p, boxes in phrases.items()}
        s.lang = lang
        return None

    return read_labelled_challenge(read_input, input_dir, true_json, report, label)


def build_default(split: str, size: str, seed: int, out_dir: str | os.PathLike[str],
                  report: SkipReport | None = None) -> list[ZsODSample]:
    """The zsOD part of the embedded default: synthetic scenes (images in ``out_dir/images``;
    their test split uses held-out colour–shape combinations) followed by COCO128's split in
    EN and RU (held-out categories only in test; see :mod:`.coco`)."""
    from fusionbrain.tasks.zsod.coco import coco128_samples
    from fusionbrain.tasks.zsod.synthetic import generate

    n = pick(SIZES, size, split)
    synthetic = generate(split, n, seed, Path(out_dir))
    return list(synthetic) + coco128_samples(split, seed, COCO_MAX_IMAGES[size], report)
