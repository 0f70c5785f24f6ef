"""VQA data: the sample type (readers of real datasets are added below it)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from fusionbrain.data.images import image_problem
from fusionbrain.data.jsonl import read_samples, write_samples
from fusionbrain.data.lang import check_lang
from fusionbrain.data.report import SkipReport, finish, read_labelled_challenge, start_report
from fusionbrain.data.sizes import pick
from fusionbrain.errors import UserError
from fusionbrain.utils.io import json_type, read_json


@dataclass
class VQASample:
    id: str
    image_path: str
    question: str
    answers: list[str] = field(default_factory=list)  # first = canonical; ten for VQA v2
    lang: str = "en"  # "en" or "ru"
    question_type: str = ""  # e.g. count, colour, shape, exist, spatial ("" when unknown)


# ---------------------------------------------------------------------------------------------
# Training format, readers of real datasets, and the embedded default (synthetic scenes).

# Questions per split (several questions share one scene image).
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"train": 24, "valid": 8, "test": 8},
    "small": {"train": 1500, "valid": 150, "test": 150},
    "medium": {"train": 8000, "valid": 500, "test": 500},
    "large": {"train": 30000, "valid": 2000, "test": 2000},
}

TRAIN_QUESTIONS_PER_IMAGE = 3

# VQA v2 names images COCO_<data_subtype>_<12-digit id>.jpg.
VQA_V2_PATTERN = "COCO_{subtype}_{image_id:012d}.jpg"


def _problem(s: VQASample) -> str | None:
    if not isinstance(s.question, str) or not s.question.strip():
        return "empty question"
    if (not isinstance(s.answers, list) or not s.answers
            or not all(isinstance(a, str) for a in s.answers)):
        return "bad record: answers must be a non-empty list of strings"
    if not s.answers[0].strip():
        return "empty answer"
    if check_lang(s.lang) is None:
        return f"unknown language: {s.lang!r}"
    return None


def read_split(folder: str | os.PathLike[str], report: SkipReport | None = None,
               verify_images: bool = False) -> list[VQASample]:
    """Read ``folder/samples.jsonl`` (training format); image paths come back absolute."""
    return read_samples(VQASample, folder, _problem, report, verify_images)


def write_split(samples: list[VQASample], folder: str | os.PathLike[str]) -> None:
    """Write ``folder/samples.jsonl``, copying images into ``folder/images`` where needed."""
    write_samples(samples, folder)


def answers_of(value: object) -> list[str] | None:
    """A truth ``answer`` (string or list of strings) as a list, or None when malformed."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(a, str) for a in value):
        return list(value)
    return None


def _plain_id(value: object) -> bool:
    """An id JSON can hold as a key: a whole number or a non-empty string."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value != "")


def read_vqa_v2(questions_json: str | os.PathLike[str],
                annotations_json: str | os.PathLike[str] | None,
                images_dir: str | os.PathLike[str], pattern: str | None = None,
                lang: str = "en", report: SkipReport | None = None) -> list[VQASample]:
    """Read VQA v2 questions (+ annotations, else unlabelled) with a COCO image folder.

    Keeps all ten human answers, the ``multiple_choice_answer`` moved first (the canonical
    one). ``pattern`` names image files with ``{image_id}`` and ``{subtype}`` (the questions
    file's ``data_subtype``), default ``COCO_{subtype}_{image_id:012d}.jpg``.
    ``question_type`` is VQA v2's ``answer_type`` (yes/no, number, other).
    """
    qpath = Path(questions_json)
    qdata = read_json(qpath, expect=dict)
    questions = qdata.get("questions")
    if not isinstance(questions, list):
        raise UserError("expected a \"questions\" list", path=qpath, key="questions")
    if check_lang(lang) is None:
        raise UserError(f"unknown language {lang!r}; expected en or ru")
    lang = check_lang(lang) or lang
    subtype = str(qdata.get("data_subtype", ""))
    pattern = pattern or VQA_V2_PATTERN
    anns: dict[object, dict] | None = None
    if annotations_json is not None:
        adata = read_json(annotations_json, expect=dict)
        alist = adata.get("annotations")
        if not isinstance(alist, list):
            raise UserError("expected an \"annotations\" list", path=annotations_json,
                            key="annotations")
        # ids are numbers or strings; a list or object id (unhashable) matches nothing
        anns = {a.get("question_id"): a for a in alist
                if isinstance(a, dict) and _plain_id(a.get("question_id"))}
    images_dir = Path(images_dir)
    report, own, before = start_report(report)
    out: list[VQASample] = []
    for n, q in enumerate(questions):
        if not isinstance(q, dict) or "question_id" not in q or "image_id" not in q:
            report.add(qpath, f"questions[{n}]", "bad record: needs question_id and image_id")
            continue
        qid = q["question_id"]
        if not _plain_id(qid):
            report.add(qpath, f"questions[{n}]", "bad record: question_id must be a number "
                       f"or a string, got {json_type(qid)}")
            continue
        if not _plain_id(q["image_id"]):
            report.add(qpath, qid, "bad record: image_id must be a number or a string, got "
                       f"{json_type(q['image_id'])}")
            continue
        question = q.get("question")
        if not isinstance(question, str) or not question.strip():
            report.add(qpath, qid, "empty question")
            continue
        try:
            name = pattern.format(image_id=int(q["image_id"]), subtype=subtype)
        except (ValueError, TypeError, KeyError, IndexError) as e:
            report.add(qpath, qid, f"bad record: image name from {q['image_id']!r}: {e}")
            continue
        answers: list[str] = []
        qtype = ""
        if anns is not None:
            a = anns.get(qid)
            if a is None:
                report.add(annotations_json, qid, "missing annotation")
                continue
            raw_answers = a.get("answers")
            answers = [x.get("answer") for x in raw_answers if isinstance(x, dict)] \
                if isinstance(raw_answers, list) else []
            answers = [x for x in answers if isinstance(x, str)]
            mca = a.get("multiple_choice_answer")
            if isinstance(mca, str) and mca in answers:
                answers.insert(0, answers.pop(answers.index(mca)))
            elif isinstance(mca, str) and mca.strip():
                answers.insert(0, mca)
            if not answers or not answers[0].strip():
                report.add(annotations_json, qid, "empty answer")
                continue
            qtype = str(a.get("answer_type", ""))
        image = images_dir / name
        problem = image_problem(image)
        if problem:
            report.add(qpath, qid, f"{problem}: {image}")
            continue
        out.append(VQASample(str(qid), str(image.resolve()), question, answers, lang, qtype))
    report.check_source(qpath, len(out), before)
    finish(report, own)
    return out


def read_challenge(input_dir: str | os.PathLike[str], true_json: str | os.PathLike[str] | None = None,
                   report: SkipReport | None = None) -> list[VQASample]:
    """Read a challenge ``input/VQA`` folder, labelled from ``true_VQA.json`` when given.

    The truth's ``lang`` wins over the language detected from the question; an ``answer``
    list keeps all its answers (first = canonical).
    """
    from fusionbrain.tasks.vqa.formats import read_input

    def label(s: VQASample, t: object) -> str | None:
        if not isinstance(t, dict):
            return "bad record: not an object"
        answers = answers_of(t.get("answer"))
        if answers is None or not answers[0].strip():
            return "empty answer"
        lang = check_lang(t.get("lang", s.lang))  # detected from the question when absent
        if lang is None:
            return f"unknown language: {t.get('lang')!r}"
        s.answers, s.lang = answers, lang
        return None

    return read_labelled_challenge(read_input, input_dir, true_json, report, label)


def build_default(split: str, size: str, seed: int, out_dir: str | os.PathLike[str],
                  report: SkipReport | None = None) -> list[VQASample]:
    """The VQA part of the embedded default: synthetic scenes with EN + RU questions, images
    in ``out_dir/images``."""
    from fusionbrain.tasks.vqa.synthetic import generate

    n = pick(SIZES, size, split)
    # Training questions share scenes (cheaper to render, several questions per picture);
    # evaluation keeps one question per scene for more varied images.
    return generate(split, n, seed, Path(out_dir),
                    questions_per_image=TRAIN_QUESTIONS_PER_IMAGE if split == "train" else 1)
