"""COCO-format detection data as zsOD samples, and COCO128 as the embedded real zsOD set.

Phrases are category names — COCO's English names, or the reviewed Russian table
:data:`EN_RU` (nominative singular; plural-only nouns such as "ножницы" stay plural).
Each image asks for its present categories (boxes = the image's non-crowd boxes) plus a few
absent ones as negatives (``[]``). A category that occurs in an image only as a crowd box is
neither asked nor used as a negative, since its truth would be ambiguous.

COCO128 split (fixed, independent of the build seed, so test scores compare across seeds):
images that contain any :data:`HELD_OUT` category are test-only; the rest go to
train / valid / test by a hash of the image id (about 70 / 15 / 15 %). Held-out phrases are
therefore never seen in train or valid — not as positives, not as negatives — and the test
split measures zero-shot detection of them by name.
"""

from __future__ import annotations

import os
import random
from collections import defaultdict
from pathlib import Path

from fusionbrain.data.images import image_problem
from fusionbrain.data.jsonl import stable_rank
from fusionbrain.data.lang import check_lang
from fusionbrain.data.report import SkipReport, finish, start_report
from fusionbrain.errors import UserError
from fusionbrain.tasks.zsod.data import ZsODSample
from fusionbrain.utils.io import read_json

COCO128_DIR = Path(__file__).resolve().parents[2] / "assets" / "coco128"

# COCO category name -> Russian phrase (nominative singular).
EN_RU: dict[str, str] = {
    "person": "человек",
    "bicycle": "велосипед",
    "car": "автомобиль",
    "motorcycle": "мотоцикл",
    "airplane": "самолёт",
    "bus": "автобус",
    "train": "поезд",
    "truck": "грузовик",
    "boat": "лодка",
    "traffic light": "светофор",
    "fire hydrant": "пожарный гидрант",
    "stop sign": "знак стоп",
    "parking meter": "паркомат",
    "bench": "скамейка",
    "bird": "птица",
    "cat": "кошка",
    "dog": "собака",
    "horse": "лошадь",
    "sheep": "овца",
    "cow": "корова",
    "elephant": "слон",
    "bear": "медведь",
    "zebra": "зебра",
    "giraffe": "жираф",
    "backpack": "рюкзак",
    "umbrella": "зонт",
    "handbag": "сумка",
    "tie": "галстук",
    "suitcase": "чемодан",
    "frisbee": "фрисби",
    "skis": "лыжи",
    "snowboard": "сноуборд",
    "sports ball": "мяч",
    "kite": "воздушный змей",
    "baseball bat": "бейсбольная бита",
    "baseball glove": "бейсбольная перчатка",
    "skateboard": "скейтборд",
    "surfboard": "доска для сёрфинга",
    "tennis racket": "теннисная ракетка",
    "bottle": "бутылка",
    "wine glass": "бокал",
    "cup": "чашка",
    "fork": "вилка",
    "knife": "нож",
    "spoon": "ложка",
    "bowl": "миска",
    "banana": "банан",
    "apple": "яблоко",
    "sandwich": "бутерброд",
    "orange": "апельсин",
    "broccoli": "брокколи",
    "carrot": "морковь",
    "hot dog": "хот-дог",
    "pizza": "пицца",
    "donut": "пончик",
    "cake": "торт",
    "chair": "стул",
    "couch": "диван",
    "potted plant": "растение в горшке",
    "bed": "кровать",
    "dining table": "обеденный стол",
    "toilet": "унитаз",
    "tv": "телевизор",
    "laptop": "ноутбук",
    "mouse": "компьютерная мышь",
    "remote": "пульт",
    "keyboard": "клавиатура",
    "cell phone": "мобильный телефон",
    "microwave": "микроволновая печь",
    "oven": "духовка",
    "toaster": "тостер",
    "sink": "раковина",
    "refrigerator": "холодильник",
    "book": "книга",
    "clock": "часы",
    "vase": "ваза",
    "scissors": "ножницы",
    "teddy bear": "плюшевый мишка",
    "hair drier": "фен",
    "toothbrush": "зубная щётка",
}

# Held-out categories: each has a seen relative (zebra~horse, giraffe~elephant, train~bus,
# laptop~keyboard, toilet~sink, kite~frisbee, stop sign~traffic light, microwave~oven,
# skateboard~surfboard, teddy bear~bear). 28 of the 128 images contain one of them.
HELD_OUT: tuple[str, ...] = ("zebra", "giraffe", "train", "laptop", "toilet", "kite",
                             "stop sign", "microwave", "skateboard", "teddy bear")

VALID_SHARE, TEST_SHARE = 0.15, 0.15
MAX_NEGATIVES = 4


def phrase(name: str, lang: str) -> str | None:
    """The phrase for COCO category ``name`` in ``lang`` (None: no translation known)."""
    return name if lang == "en" else EN_RU.get(name)


def _box(bbox: object) -> list[float] | None:
    if not isinstance(bbox, list) or len(bbox) != 4:
        return None
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError, OverflowError):
        return None
    if not all(v == v and abs(v) != float("inf") for v in (x, y, w, h)) or w <= 0 or h <= 0:
        return None
    return [round(x, 2), round(y, 2), round(w, 2), round(h, 2)]


def _plain_id(value: object) -> bool:
    """An id usable as a key: a whole number or a non-empty string (not a list, object,
    boolean or null)."""
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value != "")


class CocoIndex:
    """A COCO detection JSON, checked once: images, category names, boxes per image."""

    def __init__(self, instances_json: str | os.PathLike[str],
                 images_dir: str | os.PathLike[str] | None = None,
                 report: SkipReport | None = None) -> None:
        self.path = Path(instances_json)
        data = read_json(self.path, expect=dict)
        for k in ("images", "categories"):
            if not isinstance(data.get(k), list):
                raise UserError(f"expected a {k!r} list (COCO detection format)", path=self.path,
                                key=k)
        if images_dir is None:
            images_dir = self.path.parent.parent / "images"
            if not images_dir.is_dir():
                images_dir = self.path.parent
        self.images_dir = Path(images_dir)
        self.report = report if report is not None else SkipReport()
        self._reported: set[object] = set()
        self.categories: dict[object, str] = {}
        for c in data["categories"]:
            if isinstance(c, dict) and isinstance(c.get("name"), str) and c["name"].strip() \
                    and _plain_id(c.get("id")):
                self.categories[c.get("id")] = c["name"].strip()
        self.images: list[dict] = []
        ids: set[object] = set()
        names: set[str] = set()
        for n, im in enumerate(data["images"]):
            if not (isinstance(im, dict) and _plain_id(im.get("id"))
                    and isinstance(im.get("file_name"), str) and im["file_name"].strip()):
                self.report.add(self.path, f"images[{n}]", "bad record: needs a number or "
                                "string id and a file_name")
                continue
            # sample ids come from the file name: a second image of one file (or one id)
            # would give two samples of one id with contradictory boxes
            stem = Path(im["file_name"]).stem
            if im["id"] in ids or stem in names:
                what = f"id {im['id']!r}" if im["id"] in ids else f"file name {stem!r}"
                self.report.add(self.path, f"images[{n}]", f"duplicate {what} (only its "
                                "first image is used)")
                continue
            ids.add(im["id"])
            names.add(stem)
            self.images.append(im)
        self.boxes: dict[object, dict[str, list[list[float]]]] = defaultdict(dict)
        self.crowd: dict[object, set[str]] = defaultdict(set)
        # categories with an unusable box: present, but their box list would be incomplete,
        # so they are neither asked (wrong truth) nor used as an absent negative
        self.unsure: dict[object, set[str]] = defaultdict(set)
        annotations = data.get("annotations")
        for n, a in enumerate(annotations if isinstance(annotations, list) else []):
            if not isinstance(a, dict):
                continue
            if not (_plain_id(a.get("image_id")) and _plain_id(a.get("category_id"))):
                self.report.add(self.path, f"annotations[{n}]", "bad record: image_id and "
                                "category_id must be numbers or strings")
                continue
            name = self.categories.get(a.get("category_id"))
            if name is None:
                self.report.add(self.path, f"annotations[{n}]", "bad record: unknown category_id")
                continue
            if a.get("iscrowd"):
                self.crowd[a.get("image_id")].add(name)
                continue
            box = _box(a.get("bbox"))
            if box is None:
                self.report.add(self.path, f"annotations[{n}]", f"bad box: {a.get('bbox')!r}")
                self.unsure[a.get("image_id")].add(name)
                continue
            self.boxes[a.get("image_id")].setdefault(name, []).append(box)

    def names_in(self, image_id: object) -> set[str]:
        """Every category in the image, crowd-only ones and ones with a bad box included."""
        return (set(self.boxes.get(image_id, {})) | self.crowd.get(image_id, set())
                | self.unsure.get(image_id, set()))

    def sample(self, image: dict, lang: str, seed: int, exclude: frozenset[str] = frozenset(),
               negatives: int = MAX_NEGATIVES) -> ZsODSample | None:
        """The zsOD sample of one image in ``lang``; None (reported) when it is unusable.

        Negatives are absent categories not in ``exclude``, chosen by a generator seeded with
        the image id only, so the EN and RU samples of an image ask the same questions.
        """
        iid = image["id"]
        path = self.images_dir / image["file_name"]
        problem = image_problem(path)
        if problem:
            if iid not in self._reported:  # once per image, not once per language
                self._reported.add(iid)
                self.report.add(self.path, image["file_name"], f"{problem}: {path}")
            return None
        unsure = self.unsure.get(iid, set())
        present = {n: b for n, b in self.boxes.get(iid, {}).items() if n not in unsure}
        rng = random.Random(f"{seed}:{iid}")
        pool = sorted(set(self.categories.values()) - self.names_in(iid) - exclude)
        k = min(negatives, max(2, len(present)), len(pool))
        chosen = [(n, present[n]) for n in sorted(present)] + [(n, []) for n in rng.sample(pool, k)]
        rng.shuffle(chosen)  # mixed order: position must not tell present from absent
        phrases: dict[str, list[list[float]]] = {}
        for name, boxes in chosen:
            p = phrase(name, lang)
            if p is not None:
                phrases[p] = [list(b) for b in boxes]
        if not phrases:
            self.report.add(self.path, image["file_name"], "no phrase to ask")
            return None
        return ZsODSample(f"{Path(image['file_name']).stem}-{lang}", str(path.resolve()),
                          phrases, lang)


def read_coco(instances_json: str | os.PathLike[str], images_dir: str | os.PathLike[str] | None = None,
              langs: tuple[str, ...] = ("en",), seed: int = 0,
              report: SkipReport | None = None) -> list[ZsODSample]:
    """Read a COCO-format detection JSON (+ image folder) as zsOD samples, one per image and
    language. ``images_dir`` defaults to ``images/`` beside the annotations folder."""
    for lg in langs:
        if check_lang(lg) is None:
            raise UserError(f"unknown language {lg!r}; expected en or ru")
    langs = tuple(check_lang(lg) or lg for lg in langs)  # "EN" -> "en"
    report, own, before = start_report(report)
    index = CocoIndex(instances_json, images_dir, report)
    out = [s for im in index.images for lg in langs
           if (s := index.sample(im, lg, seed)) is not None]
    report.check_source(instances_json, len(out), before)
    finish(report, own)
    return out


def coco128_split(index: CocoIndex, image: dict) -> str:
    """The fixed split of a COCO128 image (see the module docstring)."""
    if index.names_in(image["id"]) & set(HELD_OUT):
        return "test"
    r = stable_rank(str(image["id"]), 0) / 2**64
    return "test" if r < TEST_SHARE else "valid" if r < TEST_SHARE + VALID_SHARE else "train"


def coco128_samples(split: str, seed: int, max_images: int | None = None,
                    report: SkipReport | None = None) -> list[ZsODSample]:
    """COCO128's ``split`` as zsOD samples, EN and RU for every image.

    In train/valid, negatives never use a held-out category; in test they may.
    ``max_images`` keeps a fixed subset (tiny builds).
    """
    report, own, _ = start_report(report)
    index = CocoIndex(COCO128_DIR / "annotations" / "instances.json", COCO128_DIR / "images",
                      report)
    images = [im for im in index.images if coco128_split(index, im) == split]
    if max_images is not None:
        images = sorted(images, key=lambda im: stable_rank(str(im["id"]), 0))[:max_images]
        images.sort(key=lambda im: im["id"])
    exclude = frozenset() if split == "test" else frozenset(HELD_OUT)
    out = [s for im in images for lg in ("en", "ru")
           if (s := index.sample(im, lg, seed, exclude)) is not None]
    finish(report, own)
    return out
