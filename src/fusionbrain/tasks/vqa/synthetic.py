"""Synthetic VQA (the embedded default): questions about procedural scenes, EN and RU.

Question types: ``count`` ("How many red objects are there?" / "Сколько красных фигур?"),
``colour`` ("What colour is the triangle?" / "Какого цвета треугольник?"), ``shape`` ("What
shape is the blue object?" / "Какой формы синяя фигура?"), ``exist`` ("Is there a green
star?" / "Есть ли на картинке зелёная звезда?") and ``spatial`` ("Is the circle left of the
square?" / "What shape is left of the blue circle?"). Only unambiguous questions are asked.

Answers are stored already normalised, because the official scorer normalises only the
prediction: lower case, digits for counts, no articles; Russian answers are dictionary lemmas
("красный", "звезда", "да", "3"). Train and valid images never contain a held-out
colour-shape combination (:data:`fusionbrain.data.scenes.HELD_OUT`); test images may.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusionbrain.data import scenes as S
from fusionbrain.data.scenes import Query, Scene
from fusionbrain.tasks.vqa.data import VQASample

QUESTION_TYPES = ("count", "colour", "shape", "exist", "spatial")


@dataclass
class QuestionSpec:
    """What a question asks, in scene-model terms (lets tests recompute the answer)."""

    type: str
    query: Query  # the counted / described / searched / subject object(s)
    ref: Query | None = None  # spatial: the reference object
    rel: str | None = None  # spatial: left/right/above/below
    form: str = ""  # spatial: "yesno" or "what"


@dataclass
class VQARecord:
    sample: VQASample
    scene: Scene
    spec: QuestionSpec


def _yes_no(value: bool, lang: str) -> str:
    if lang == "ru":
        return S.RU_YES if value else S.RU_NO
    return "yes" if value else "no"


def _cap(text: str) -> str:
    return text[0].upper() + text[1:]


def _allowed(q: Query, split: str) -> bool:
    """Train/valid never name a held-out colour-shape pair, not even in a "no" question."""
    return split == "test" or q.combo() not in S.HELD_OUT


_REF_FORMS = [("shape",), ("colour", "shape"), ("size", "shape"), ("size", "colour", "shape"),
              ("texture", "colour", "shape")]


def _count(rng: np.random.Generator, scene: Scene, lang: str, split: str):
    # every countable query, grouped by its answer; drawing the answer first keeps counts
    # varied (most colour-shape pairs occur once or never, which would swamp the data)
    pools = {"colour": S.COLOURS, "shape": S.SHAPES, "size": S.SIZES,
             "texture": ("striped", "dotted")}
    queries = [Query()]
    for k, vals in pools.items():
        queries += [Query(**{k: v}) for v in vals]
    queries += [Query(colour=c, shape=sh) for c, sh in S.ALL_COMBOS]
    by_count: dict[int, list[Query]] = {}
    for q in queries:
        if _allowed(q, split):
            by_count.setdefault(len(S.select(scene, q)), []).append(q)
    counts = sorted(by_count)
    n = counts[int(rng.integers(len(counts)))]
    q = by_count[n][int(rng.integers(len(by_count[n])))]
    if lang == "ru":
        text = "Сколько всего фигур?" if q == Query() else f"Сколько {S.ru_plural_gen(q)}?"
    else:
        text = f"How many {S.en_plural(q)} are there?"
    return text, [str(n)], QuestionSpec("count", q)


def _colour(rng: np.random.Generator, scene: Scene, lang: str, split: str):
    forms = [("shape",), ("size", "shape"), ("texture", "shape"), ("size", "texture", "shape")]
    for i in rng.permutation(len(scene.objects)):
        qs = S.unique_queries(scene, int(i), forms)
        if not qs:
            continue
        q = qs[0]
        colour = scene.objects[int(i)].colour
        if lang == "ru":
            return f"Какого цвета {S.ru_np(q)}?", [S.RU_COLOUR[colour]], QuestionSpec("colour", q)
        return f"What colour is {S.en_np(q, article='the')}?", [colour], QuestionSpec("colour", q)
    return None


def _shape(rng: np.random.Generator, scene: Scene, lang: str, split: str):
    forms = [("colour",), ("size", "colour"), ("texture", "colour"), ("size", "texture", "colour")]
    for i in rng.permutation(len(scene.objects)):
        qs = S.unique_queries(scene, int(i), forms)
        if not qs:
            continue
        q = qs[0]
        shape = scene.objects[int(i)].shape
        if lang == "ru":
            return (f"Какой формы {S.ru_np(q)}?", [S.RU_NOUN[shape]["nom"]],
                    QuestionSpec("shape", q))
        return f"What shape is {S.en_np(q, article='the')}?", [shape], QuestionSpec("shape", q)
    return None


def _exist(rng: np.random.Generator, scene: Scene, lang: str, split: str):
    forms = [("colour", "shape"), ("colour", "shape"), ("shape",), ("colour",),
             ("size", "colour", "shape"), ("texture", "colour", "shape")]
    want = bool(rng.random() < 0.5)
    for _ in range(40):
        form = forms[int(rng.integers(len(forms)))]
        obj = scene.objects[int(rng.integers(len(scene.objects)))]
        vals = {k: getattr(obj, k) for k in form}
        if not want:
            # a near miss: change one named attribute of a real object
            k = form[int(rng.integers(len(form)))]
            pool = {"colour": S.COLOURS, "shape": S.SHAPES, "size": S.SIZES,
                    "texture": ("striped", "dotted")}[k]
            vals[k] = str(rng.choice([v for v in pool if v != vals[k]]))
        if vals.get("texture") == "solid":
            continue
        q = Query(**vals)
        if not _allowed(q, split) or bool(S.select(scene, q)) != want:
            continue
        if lang == "ru":
            text = f"Есть ли на картинке {S.ru_np(q)}?"
        else:
            text = f"Is there {S.en_np(q, article='a')}?"
        return text, [_yes_no(want, lang)], QuestionSpec("exist", q)
    return None


def _spatial(rng: np.random.Generator, scene: Scene, lang: str, split: str):
    objs = scene.objects
    refs = {i: S.unique_queries(scene, i, _REF_FORMS) for i in range(len(objs))}
    if rng.random() < 0.5:
        want = bool(rng.random() < 0.5)
        cands = [(i, j, rel) for i in range(len(objs)) for j in range(len(objs))
                 if i != j and refs[i] and refs[j] for rel in S.RELATIONS
                 if S.relation(objs[i], objs[j], rel) is want]
        if not cands:
            return None
        i, j, rel = cands[int(rng.integers(len(cands)))]
        qa, qb = refs[i][0], refs[j][0]
        spec = QuestionSpec("spatial", qa, qb, rel, "yesno")
        if lang == "ru":
            text = f"Находится ли {S.ru_np(qa)} {S.ru_relation(rel, qb)}?"
        else:
            text = f"Is {S.en_np(qa, article='the')} {S.en_relation(rel, qb)}?"
        return text, [_yes_no(want, lang)], spec
    cands = []
    for j in range(len(objs)):
        if not refs[j]:
            continue
        for rel in S.RELATIONS:
            vals = [S.relation(objs[i], objs[j], rel) for i in range(len(objs)) if i != j]
            if None in vals or vals.count(True) != 1:
                continue  # the answer must be one clear object
            winner = [i for i in range(len(objs)) if i != j
                      and S.relation(objs[i], objs[j], rel)][0]
            cands.append((winner, j, rel))
    if not cands:
        return None
    i, j, rel = cands[int(rng.integers(len(cands)))]
    qb = refs[j][0]
    shape = objs[i].shape
    spec = QuestionSpec("spatial", Query(shape=shape), qb, rel, "what")
    if lang == "ru":
        return (f"Какой формы фигура {S.ru_relation(rel, qb)}?", [S.RU_NOUN[shape]["nom"]],
                spec)
    return f"What shape is {S.en_relation(rel, qb)}?", [shape], spec


_MAKERS = {"count": _count, "colour": _colour, "shape": _shape, "exist": _exist,
           "spatial": _spatial}


def make_question(rng: np.random.Generator, scene: Scene, lang: str, split: str,
                  qtype: str) -> tuple[str, list[str], QuestionSpec]:
    """A question of ``qtype`` about the scene, or of another type when that one has no
    unambiguous instance here (count always has one)."""
    order = [qtype] + [t for t in rng.permutation(QUESTION_TYPES).tolist() if t != qtype]
    for t in order + ["count"]:
        got = _MAKERS[t](rng, scene, lang, split)
        if got is not None:
            text, answers, spec = got
            return _cap(text), answers, spec
    raise RuntimeError("no question could be made")  # unreachable: count always works


def generate_records(split: str, n: int, seed: int, out_dir: Path,
                     questions_per_image: int = 1) -> list[VQARecord]:
    """Like :func:`generate`, also returning each sample's scene and question spec."""
    out_dir = Path(out_dir)
    img_dir = out_dir / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    combos = S.ALL_COMBOS if split == "test" else S.SEEN_COMBOS
    records: list[VQARecord] = []
    n_images = -(-n // questions_per_image)
    for i in range(n_images):
        rng = S.split_rng("vqa", split, seed, i)
        scene = S.sample_scene(rng, combos)
        path = (img_dir / f"{split}_{i:06d}.jpg").resolve()
        S.save_jpeg(S.render(scene), path)
        asked: set[str] = set()
        for k in range(min(questions_per_image, n - len(records))):
            for _ in range(10):  # several questions about one image: avoid repeats
                lang = "ru" if rng.random() < 0.5 else "en"
                qtype = QUESTION_TYPES[int(rng.integers(len(QUESTION_TYPES)))]
                text, answers, spec = make_question(rng, scene, lang, split, qtype)
                if text not in asked:
                    break
            asked.add(text)
            sid = f"{split}_{i:06d}" if questions_per_image == 1 else f"{split}_{i:06d}_{k}"
            sample = VQASample(id=sid, image_path=str(path), question=text, answers=answers,
                               lang=lang, question_type=spec.type)
            records.append(VQARecord(sample, scene, spec))
    return records


def generate(split: str, n: int, seed: int, out_dir: Path,
             questions_per_image: int = 1) -> list[VQASample]:
    """``n`` synthetic VQA samples for ``split`` (train/valid/test); images go to
    ``out_dir/images/``, samples carry absolute image paths. Same arguments, same bytes."""
    return [r.sample for r in generate_records(split, n, seed, out_dir, questions_per_image)]
