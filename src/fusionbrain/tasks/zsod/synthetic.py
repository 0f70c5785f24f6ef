"""Synthetic zsOD (the embedded default): referring phrases over procedural scenes, EN or RU.

Each image gets 3-6 phrases in one language, about half present (with the boxes of ALL the
objects they describe) and half absent (``[]``), as in the challenge. Phrase forms: "red
triangle", "small red triangle", "striped blue circle", "dotted pink star", "red triangle
left of the blue circle"; in Russian "красный
треугольник", "маленькая красная звезда", "синий круг в горошек", "красный треугольник слева
от синего круга" / "... над синей звездой". A relation phrase's boxes are those of its head
objects for which the relation clearly holds (phrases whose truth would be debatable are
never asked).

Zero-shot split: train and valid images and phrases never contain a colour-shape pair of
:data:`fusionbrain.data.scenes.HELD_OUT`; every test image contains 1-3 held-out objects and
every test phrase's head is a held-out pair (present or absent), so test scores measure
generalisation to unseen attribute combinations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fusionbrain.data import scenes as S
from fusionbrain.data.scenes import Query, Scene
from fusionbrain.tasks.zsod.data import ZsODSample


@dataclass(frozen=True)
class PhraseSpec:
    """A phrase in scene-model terms: head objects, optionally in a relation to a reference."""

    head: Query
    rel: str | None = None
    ref: Query | None = None


@dataclass
class ZsODRecord:
    sample: ZsODSample
    scene: Scene
    specs: dict[str, PhraseSpec] = field(default_factory=dict)


def phrase_text(spec: PhraseSpec, lang: str) -> str:
    if lang == "ru":
        text = S.ru_np(spec.head)
        if spec.rel:
            text += " " + S.ru_relation(spec.rel, spec.ref)
    else:
        text = S.en_np(spec.head)
        if spec.rel:
            text += " " + S.en_relation(spec.rel, spec.ref)
    return text


def phrase_truth(scene: Scene, spec: PhraseSpec) -> list[int] | None:
    """Indices of the objects the phrase denotes, or None when that is debatable."""
    heads = S.select(scene, spec.head)
    if spec.rel is None:
        return heads
    refs = S.select(scene, spec.ref)
    if len(refs) != 1 or refs[0] in heads:
        return None  # the reference must be one object, distinct from the heads
    ref = scene.objects[refs[0]]
    vals = [S.relation(scene.objects[i], ref, spec.rel) for i in heads]
    if None in vals:
        return None
    return [i for i, v in zip(heads, vals, strict=True) if v]


_REF_FORMS = [("colour", "shape"), ("size", "colour", "shape"), ("texture", "colour", "shape")]


def _candidates(rng: np.random.Generator, scene: Scene,
                heads: tuple[tuple[str, str], ...]) -> list[PhraseSpec]:
    """Phrase specs worth asking: every plain and qualified form of the head pairs, and for
    each head object one relation to a random uniquely describable other object."""
    specs: list[PhraseSpec] = []
    for colour, shape in heads:
        specs.append(PhraseSpec(Query(shape=shape, colour=colour)))
        for size in S.SIZES:
            specs.append(PhraseSpec(Query(shape=shape, colour=colour, size=size)))
        for tex in ("striped", "dotted"):
            specs.append(PhraseSpec(Query(shape=shape, colour=colour, texture=tex)))
    objs = scene.objects
    for i, obj in enumerate(objs):
        if obj.combo not in heads:
            continue
        others = [j for j in range(len(objs)) if j != i]
        rng.shuffle(others)
        for j in others:
            refs = S.unique_queries(scene, j, _REF_FORMS)
            if not refs:
                continue
            rel = S.RELATIONS[int(rng.integers(len(S.RELATIONS)))]
            head = Query(shape=obj.shape, colour=obj.colour,
                         size=obj.size if rng.random() < 0.3 else None)
            specs.append(PhraseSpec(head, rel, refs[0]))
            # the same reference with the opposite relation gives a hard negative
            opposite = {"left": "right", "right": "left", "above": "below", "below": "above"}
            specs.append(PhraseSpec(head, opposite[rel], refs[0]))
            break
    return specs


def make_phrases(rng: np.random.Generator, scene: Scene, lang: str,
                 heads: tuple[tuple[str, str], ...]) -> dict[str, tuple[PhraseSpec, list[int]]]:
    """3-6 phrases, about half present, each with the indices of the objects it denotes."""
    present, absent, seen = [], [], set()
    for spec in _candidates(rng, scene, heads):
        truth = phrase_truth(scene, spec)
        text = phrase_text(spec, lang)
        if truth is None or text in seen:
            continue
        seen.add(text)
        (present if truth else absent).append((text, spec, truth))
    k = int(rng.integers(3, 7))
    n_pos = min(int(rng.binomial(k, 0.5)), len(present))
    n_pos = max(n_pos, min(1, len(present)))  # at least one present phrase when possible
    n_neg = min(k - n_pos, len(absent))
    in_scene = {o.combo for o in scene.objects}

    def pick(pool: list, m: int) -> list:
        if m == 0:
            return []
        # relation phrases and near misses (a pair that is in the image, with the wrong size,
        # texture or relation) are few among the candidates but the most telling: favour them
        weights = np.array([3.0 if p[1].rel or p[1].head.combo() in in_scene else 1.0
                            for p in pool])
        idx = rng.choice(len(pool), size=m, replace=False, p=weights / weights.sum())
        return [pool[int(t)] for t in idx]

    chosen = pick(present, n_pos) + pick(absent, n_neg)
    order = rng.permutation(len(chosen))
    return {chosen[int(t)][0]: (chosen[int(t)][1], chosen[int(t)][2]) for t in order}


def generate_records(split: str, n: int, seed: int, out_dir: Path) -> list[ZsODRecord]:
    """Like :func:`generate`, also returning each image's scene and phrase specs."""
    out_dir = Path(out_dir)
    img_dir = out_dir / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    records: list[ZsODRecord] = []
    for i in range(n):
        rng = S.split_rng("zsod", split, seed, i)
        lang = "ru" if rng.random() < 0.5 else "en"
        if split == "test":
            k = int(rng.integers(1, 4))
            required = [S.HELD_OUT_COMBOS[int(t)]
                        for t in rng.choice(len(S.HELD_OUT_COMBOS), size=k, replace=False)]
            scene = S.sample_scene(rng, S.SEEN_COMBOS, required=required,
                                   n_objects=(max(2, k + 1), 6))
            heads = S.HELD_OUT_COMBOS
        else:
            scene = S.sample_scene(rng, S.SEEN_COMBOS)
            heads = S.SEEN_COMBOS
        phrases = make_phrases(rng, scene, lang, heads)
        path = (img_dir / f"{split}_{i:06d}.jpg").resolve()
        S.save_jpeg(S.render(scene), path)
        boxes = {text: [list(scene.objects[j].box) for j in truth]
                 for text, (_, truth) in phrases.items()}
        sample = ZsODSample(id=f"{split}_{i:06d}", image_path=str(path), phrases=boxes,
                            lang=lang)
        records.append(ZsODRecord(sample, scene, {t: s for t, (s, _) in phrases.items()}))
    return records


def generate(split: str, n: int, seed: int, out_dir: Path) -> list[ZsODSample]:
    """``n`` synthetic zsOD images with phrases for ``split`` (train/valid/test); images go to
    ``out_dir/images/``, samples carry absolute image paths. Same arguments, same bytes."""
    return [r.sample for r in generate_records(split, n, seed, out_dir)]
