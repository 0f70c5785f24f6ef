"""HTR data: the sample type (readers of real datasets are added below it)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fusionbrain.data.images import image_problem
from fusionbrain.data.jsonl import read_samples, write_samples
from fusionbrain.data.lang import check_lang, detect_lang
from fusionbrain.data.report import SkipReport, finish, start_report
from fusionbrain.data.sizes import pick
from fusionbrain.errors import UserError
from fusionbrain.utils.io import json_type, read_json


@dataclass
class HTRSample:
    id: str
    image_path: str  # a word or line image (any mode; heads convert to grayscale)
    text: str  # the transcription; "" when unknown (challenge input)
    lang: str  # "en" or "ru"


# ---------------------------------------------------------------------------------------------
# Training format, readers of real datasets, and the embedded default (synthetic handwriting).

SIZES: dict[str, dict[str, int]] = {
    "tiny": {"train": 24, "valid": 8, "test": 8},
    "small": {"train": 2000, "valid": 200, "test": 200},
    "medium": {"train": 10000, "valid": 500, "test": 500},
    "large": {"train": 40000, "valid": 2000, "test": 2000},
}
# Training hands per size (synthetic.HAND_SETS): the small build feeds the 10-minute main job,
# which learns fewer styles faster; the long recipe's builds draw with every training hand.
HAND_SET_BY_SIZE: dict[str, str] = {"tiny": "core", "small": "core", "medium": "all",
                                    "large": "all"}


def _problem(s: HTRSample) -> str | None:
    if not isinstance(s.text, str) or not s.text.strip():
        return "empty transcription"
    if check_lang(s.lang) is None:
        return f"unknown language: {s.lang!r}"
    return None


def read_split(folder: str | os.PathLike[str], report: SkipReport | None = None,
               verify_images: bool = False) -> list[HTRSample]:
    """Read ``folder/samples.jsonl`` (training format); image paths come back absolute."""
    return read_samples(HTRSample, folder, _problem, report, verify_images)


def write_split(samples: list[HTRSample], folder: str | os.PathLike[str]) -> None:
    """Write ``folder/samples.jsonl``, copying images into ``folder/images`` where needed."""
    write_samples(samples, folder)


def labelled(sample_id: str, image: Path, text: object, lang: str | None, source: object,
             report: SkipReport) -> HTRSample | None:
    """One checked labelled sample, or None after reporting why it is unusable."""
    if not isinstance(text, str):
        report.add(source, sample_id, f"bad record: transcription is {json_type(text)}")
        return None
    if not text.strip():
        report.add(source, sample_id, "empty transcription")
        return None
    lg = check_lang(lang) if lang else detect_lang(text)
    if lg is None:
        report.add(source, sample_id, f"unknown language: {lang or text!r}")
        return None
    problem = image_problem(image)
    if problem:
        report.add(source, sample_id, f"{problem}: {image}")
        return None
    return HTRSample(sample_id, str(image.resolve()), text, lg)


def read_copybook(labels_json: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None = None,
                  lang: str | None = None, report: SkipReport | None = None) -> list[HTRSample]:
    """Read ``{"image.png": "text"}`` labels beside an image folder (copybook / challenge style).

    ``images_dir`` defaults to ``images/`` beside the JSON, else the JSON's own folder.
    ``lang`` forces a language; by default Cyrillic text is "ru" and Latin text "en".
    """
    labels_json = Path(labels_json)
    labels = read_json(labels_json, expect=dict)
    if images_dir is None:
        images_dir = labels_json.parent / "images"
        if not images_dir.is_dir():
            images_dir = labels_json.parent
    images_dir = Path(images_dir)
    if lang is not None and check_lang(lang) is None:
        raise UserError(f"unknown language {lang!r}; expected en or ru")
    report, own, before = start_report(report)
    out = []
    for name, text in labels.items():
        s = labelled(name, images_dir / name, text, lang, labels_json, report)
        if s is not None:
            out.append(s)
    report.check_source(labels_json, len(out), before)
    finish(report, own)
    return out


def read_challenge(input_dir: str | os.PathLike[str], true_json: str | os.PathLike[str] | None = None,
                   report: SkipReport | None = None) -> list[HTRSample]:
    """Read a challenge ``input/HTR`` folder, labelled from ``true_HTR.json`` when given."""
    from fusionbrain.tasks.htr.formats import read_input

    report, own, _ = start_report(report)
    if true_json is None:
        samples = read_input(input_dir, report=report)
        finish(report, own)
        return samples
    out = read_copybook(true_json, Path(input_dir) / "images", report=report)
    finish(report, own)
    return out


def build_default(split: str, size: str, seed: int, out_dir: str | os.PathLike[str],
                  report: SkipReport | None = None) -> list[HTRSample]:
    """The HTR part of the embedded default: synthetic handwriting (EN + RU), images in
    ``out_dir/images``."""
    from fusionbrain.tasks.htr.synthetic import generate

    n = pick(SIZES, size, split)
    # The training split is the build's longest job: two processes once the short jobs are
    # done (the bytes do not depend on the number of workers).
    return generate(split, n, seed, Path(out_dir), workers=2 if n >= 1000 else 1,
                    hand_set=HAND_SET_BY_SIZE[size])
