"""Scenes, synthetic VQA and synthetic zsOD: determinism, labels, answers, the zero-shot split."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import numpy as np
import pymorphy3
import pytest
from PIL import Image

from fusionbrain.data import scenes as S
from fusionbrain.tasks.vqa import synthetic as V
from fusionbrain.tasks.vqa.normalize import normalize_answer
from fusionbrain.tasks.zsod import synthetic as Z

MORPH = pymorphy3.MorphAnalyzer()


@cache
def lemmas(word: str) -> frozenset[str]:
    return frozenset(p.normal_form for p in MORPH.parse(word))


@pytest.fixture(scope="module")
def vqa(tmp_path_factory) -> dict[str, list[V.VQARecord]]:
    root = tmp_path_factory.mktemp("vqa")
    sizes = {"train": 160, "valid": 40, "test": 80}
    return {sp: V.generate_records(sp, n, 11, root / sp) for sp, n in sizes.items()}


@pytest.fixture(scope="module")
def zsod(tmp_path_factory) -> dict[str, list[Z.ZsODRecord]]:
    root = tmp_path_factory.mktemp("zsod")
    sizes = {"train": 100, "valid": 40, "test": 120}
    return {sp: Z.generate_records(sp, n, 5, root / sp) for sp, n in sizes.items()}


# --------------------------------------------------------------------------- helpers


def matches(q: S.Query, o: S.SceneObject) -> bool:
    """Written again here (not S.Query.matches) so the test checks the generator."""
    for attr in ("shape", "colour", "size", "texture"):
        want = getattr(q, attr)
        if want is not None and want != getattr(o, attr):
            return False
    return True


def clearly(a: S.SceneObject, b: S.SceneObject, rel: str) -> bool:
    """a is entirely on the ``rel`` side of b (box projections disjoint)."""
    ax, ay, aw, ah = a.box
    bx, by, bw, bh = b.box
    return {"left": ax + aw <= bx, "right": bx + bw <= ax,
            "above": ay + ah <= by, "below": by + bh <= ay}[rel]


def centre_other_side(a: S.SceneObject, b: S.SceneObject, rel: str) -> bool:
    """a's centre is strictly on the opposite side of b's centre."""
    (ax, ay), (bx, by) = a.centre, b.centre
    return {"left": ax > bx, "right": ax < bx, "above": ay > by, "below": ay < by}[rel]


def colour_shape_pairs(text: str, lang: str) -> list[tuple[str, str]]:
    """Adjacent (colour, shape) word pairs named in a text, read back from its words."""
    words = re.findall(r"[\wё]+", text.lower())
    out = []
    ru_col = {v: k for k, v in S.RU_COLOUR.items()}
    ru_shape = {v["nom"]: k for k, v in S.RU_NOUN.items() if k}
    en_shape = {s: s for s in S.SHAPES} | {p: s for s, p in S.EN_PLURAL.items()}
    for w1, w2 in zip(words, words[1:], strict=False):
        if lang == "en":
            if w1 in S.COLOURS and w2 in en_shape:
                out.append((w1, en_shape[w2]))
        else:
            c = [ru_col[x] for x in lemmas(w1) if x in ru_col]
            s = [ru_shape[x] for x in lemmas(w2) if x in ru_shape]
            if c and s:
                out.append((c[0], s[0]))
    return out


def named_lemmas(text: str, lang: str) -> set[str]:
    words = re.findall(r"[\wё]+", text.lower())
    if lang == "en":
        return set(words) | {w[:-1] for w in words} | {w[:-2] for w in words}  # plurals
    return {x for w in words for x in lemmas(w)}


def word_of(attr: str, value: str, lang: str) -> str:
    if lang == "en":
        return value
    table = {"colour": S.RU_COLOUR, "size": S.RU_SIZE,
             "shape": {k: v["nom"] for k, v in S.RU_NOUN.items() if k},
             "texture": {"striped": S.RU_STRIPED, "dotted": "горошек"}}
    return table[attr][value]


def assert_names(q: S.Query, text: str, lang: str) -> None:
    """Every attribute of the query is said in the text."""
    said = named_lemmas(text, lang)
    for attr in ("shape", "colour", "size", "texture"):
        v = getattr(q, attr)
        if v is not None:
            assert word_of(attr, v, lang) in said, (attr, v, text)


# --------------------------------------------------------------------------- scenes


def test_deterministic_same_bytes(tmp_path: Path) -> None:
    for mod in (V, Z):
        a = mod.generate("train", 6, 7, tmp_path / "a")
        b = mod.generate("train", 6, 7, tmp_path / "b")
        c = mod.generate("train", 6, 8, tmp_path / "c")
        for x, y, z in zip(a, b, c, strict=True):
            bx, by = Path(x.image_path).read_bytes(), Path(y.image_path).read_bytes()
            assert bx == by
            assert Path(z.image_path).read_bytes() != bx
            assert {**vars(x), "image_path": ""} == {**vars(y), "image_path": ""}
            assert Path(x.image_path).is_absolute()
            assert Path(x.image_path).parent == (tmp_path / "a" / "images").resolve()
    # a prefix of a longer run is the shorter run
    d = Z.generate("train", 3, 7, tmp_path / "d")
    assert [s.phrases for s in d] == [s.phrases for s in Z.generate("train", 6, 7,
                                                                   tmp_path / "e")[:3]]


def test_images_are_224_rgb_jpeg(vqa, zsod) -> None:
    for rec in vqa["train"][:5] + zsod["test"][:5]:
        with Image.open(rec.sample.image_path) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (224, 224))


def test_scene_variety() -> None:
    objs = []
    counts = set()
    for i in range(60):
        sc = S.sample_scene(S.split_rng("t", "train", 0, i), S.SEEN_COMBOS)
        counts.add(len(sc.objects))
        objs += sc.objects
        # limited overlap: no box covers more than 10 % of another's box
        for a in sc.objects:
            for b in sc.objects:
                if a is b:
                    continue
                iw = min(a.box[0] + a.box[2], b.box[0] + b.box[2]) - max(a.box[0], b.box[0])
                ih = min(a.box[1] + a.box[3], b.box[1] + b.box[3]) - max(a.box[1], b.box[1])
                assert max(iw, 0) * max(ih, 0) <= 0.1 * min(a.box[2] * a.box[3],
                                                            b.box[2] * b.box[3])
    assert counts >= {2, 3, 4, 5, 6}
    assert {o.shape for o in objs} == set(S.SHAPES)
    assert {o.colour for o in objs} == set(S.COLOURS)
    assert {o.texture for o in objs} == set(S.TEXTURES)
    small = [max(o.box[2:]) for o in objs if o.size == "small"]
    large = [max(o.box[2:]) for o in objs if o.size == "large"]
    assert max(small) * 1.3 < min(large)  # size classes never in doubt


def test_boxes_are_tight_around_the_ink() -> None:
    checked = 0
    for i in range(25):
        sc = S.sample_scene(S.split_rng("t", "valid", 1, i), S.SEEN_COMBOS)
        full = np.asarray(S.render(sc), np.int16)
        bare = np.asarray(S.render(S.Scene([], sc.background_seed)), np.int16)
        for k, obj in enumerate(sc.objects):
            x, y, w, h = obj.box
            assert 0 <= x and 0 <= y and x + w <= 224 and y + h <= 224 and w > 5 and h > 5
            # alone on a blank background: the ink's bounding box is the reported box
            alone = np.asarray(S.render(sc, background=False, only=[k]), np.int16)
            ink = np.abs(alone - 128).max(axis=2) > 12
            ys, xs = np.nonzero(ink)
            got = (xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min())
            assert np.allclose(got, obj.box, atol=2), (obj, got)
            # in the scene: the middle of the box differs from the bare background
            mid = (slice(y + h // 4, y + h - h // 4), slice(x + w // 4, x + w - w // 4))
            changed = np.abs(full[mid] - bare[mid]).max(axis=2) > 20
            assert changed.mean() > 0.5, (obj, changed.mean())
            checked += 1
    assert checked > 60


# --------------------------------------------------------------------------- Russian grammar


def test_russian_agreement_and_cases() -> None:
    star = S.Query(shape="star", colour="red", size="small")
    assert S.ru_np(star) == "маленькая красная звезда"
    assert S.ru_np(S.Query(shape="heart", colour="blue", texture="striped")) == (
        "полосатое синее сердце")
    assert S.ru_relation("left", S.Query(shape="circle", colour="blue")) == "слева от синего круга"
    assert S.ru_relation("above", S.Query(shape="star", colour="blue")) == "над синей звездой"
    assert S.ru_relation("below", S.Query(shape="heart", size="large")) == "под большим сердцем"
    assert S.ru_plural_gen(S.Query(colour="red")) == "красных фигур"
    assert S.ru_plural_gen(S.Query(shape="star")) == "звёзд"
    tags = {"m": "masc", "f": "femn", "n": "neut", "nom": "nomn", "gen": "gent", "ins": "ablt"}
    adjs = [*S.RU_COLOUR.values(), *S.RU_SIZE.values(), S.RU_STRIPED]
    for lemma in adjs:
        for g in "mfn":
            for case in ("nom", "gen", "ins"):
                form = S.ru_adj(lemma, g, case)
                ok = [p for p in MORPH.parse(form) if p.normal_form.replace("ё", "е")
                      == lemma.replace("ё", "е") and {tags[g], tags[case]} <= set(p.tag.grammemes)]
                # большой's lemma in pymorphy is sometimes "больший"; accept either stem
                if not ok and lemma == "большой":
                    ok = [p for p in MORPH.parse(form) if tags[case] in p.tag.grammemes]
                assert ok, (lemma, g, case, form)
        assert "gent" in {t for p in MORPH.parse(S.ru_adj(lemma, "pl", "gen"))
                          for t in p.tag.grammemes if p.tag.number == "plur"}
    for shape, forms in S.RU_NOUN.items():
        for case in ("gen", "ins", "gen_pl"):
            want = {"gen": {"gent", "sing"}, "ins": {"ablt", "sing"}, "gen_pl": {"gent", "plur"}}
            assert any(want[case] <= set(p.tag.grammemes) and p.normal_form == forms["nom"]
                       for p in MORPH.parse(forms[case])), (shape, case)


# --------------------------------------------------------------------------- VQA


def test_vqa_languages_and_types_balanced(vqa) -> None:
    recs = vqa["train"] + vqa["valid"] + vqa["test"]
    langs = [r.sample.lang for r in recs]
    assert 0.35 < langs.count("ru") / len(langs) < 0.65
    for r in recs:
        has_cyr = bool(re.search("[а-яё]", r.sample.question.lower()))
        assert has_cyr == (r.sample.lang == "ru"), r.sample.question
    types = {r.sample.question_type for r in recs}
    assert types == set(V.QUESTION_TYPES)
    yn = [r.sample.answers[0] for r in recs if r.sample.answers[0] in ("yes", "no", "да", "нет")]
    yes = sum(a in ("yes", "да") for a in yn)
    assert 0.4 < yes / len(yn) < 0.6
    counts = {r.sample.answers[0] for r in recs if r.sample.question_type == "count"}
    assert {"0", "1", "2", "3"} <= counts


def test_vqa_answers_recomputed_from_scene(vqa) -> None:
    for r in vqa["train"] + vqa["valid"] + vqa["test"]:
        objs, spec, s = r.scene.objects, r.spec, r.sample
        ans = s.answers[0]
        hits = [o for o in objs if matches(spec.query, o)]
        if spec.type != "spatial" or spec.form == "yesno":
            assert_names(spec.query, s.question, s.lang)
        if spec.type == "count":
            assert ans == str(len(hits))
        elif spec.type == "colour":
            assert len(hits) == 1 and spec.query.colour is None
            assert ans == word_of("colour", hits[0].colour, s.lang)
        elif spec.type == "shape":
            assert len(hits) == 1 and spec.query.shape is None
            assert ans == word_of("shape", hits[0].shape, s.lang)
        elif spec.type == "exist":
            assert ans == {"en": ("no", "yes"), "ru": ("нет", "да")}[s.lang][bool(hits)]
        else:
            refs = [o for o in objs if matches(spec.ref, o)]
            assert len(refs) == 1
            assert_names(spec.ref, s.question, s.lang)
            ref = refs[0]
            if spec.form == "yesno":
                assert len(hits) == 1
                if ans in ("yes", "да"):
                    assert clearly(hits[0], ref, spec.rel)
                else:
                    assert centre_other_side(hits[0], ref, spec.rel)
            else:
                on_side = [o for o in objs if o is not ref and clearly(o, ref, spec.rel)]
                assert len(on_side) == 1
                assert ans == word_of("shape", on_side[0].shape, s.lang)
                for o in objs:
                    if o is not ref and o is not on_side[0]:
                        assert centre_other_side(o, ref, spec.rel)


def test_vqa_answers_are_already_normalised(vqa) -> None:
    seen_ru = set()
    for r in vqa["train"] + vqa["test"]:
        for a in r.sample.answers:
            assert normalize_answer(a, r.sample.lang) == a
            if r.sample.lang == "ru":
                for w in a.split():
                    assert MORPH.parse(w)[0].normal_form == w, a
                    seen_ru.add(w)
            else:
                assert re.fullmatch(r"[a-z0-9]+( [a-z0-9]+)*", a)
                assert not {"a", "an", "the"} & set(a.split())
    assert {"да", "нет"} <= seen_ru and len(seen_ru) > 12


# --------------------------------------------------------------------------- zsOD


def test_zsod_boxes_recomputed_from_scene(zsod) -> None:
    n_present = n_absent = n_rel = 0
    for r in zsod["train"] + zsod["valid"] + zsod["test"]:
        s = r.sample
        assert 3 <= len(s.phrases) <= 6
        assert set(s.phrases) == set(r.specs)
        for text, boxes in s.phrases.items():
            has_cyr = bool(re.search("[а-яё]", text))
            assert has_cyr == (s.lang == "ru"), text
            spec = r.specs[text]
            assert_names(spec.head, text, s.lang)
            heads = [o for o in r.scene.objects if matches(spec.head, o)]
            if spec.rel is None:
                want = heads
            else:
                n_rel += 1
                assert_names(spec.ref, text, s.lang)
                refs = [o for o in r.scene.objects if matches(spec.ref, o)]
                assert len(refs) == 1 and refs[0] not in heads
                want = [o for o in heads if clearly(o, refs[0], spec.rel)]
                for o in heads:
                    assert o in want or centre_other_side(o, refs[0], spec.rel)
            assert sorted(map(tuple, boxes)) == sorted(o.box for o in want)
            n_present += bool(boxes)
            n_absent += not boxes
    assert 0.3 < n_present / (n_present + n_absent) < 0.7
    assert n_rel > 50


def test_zsod_phrase_forms() -> None:
    sc = S.Scene([S.make_object(np.random.default_rng(0), "red", "star", "small", "striped")], 0)
    ru = Z.phrase_text(Z.PhraseSpec(S.Query(shape="star", colour="red", size="small"), "left",
                                    S.Query(shape="circle", colour="blue")), "ru")
    assert ru == "маленькая красная звезда слева от синего круга"
    en = Z.phrase_text(Z.PhraseSpec(S.Query(shape="triangle", colour="red"), "left",
                                    S.Query(shape="circle", colour="blue")), "en")
    assert en == "red triangle left of the blue circle"
    assert Z.phrase_truth(sc, Z.PhraseSpec(S.Query(shape="star", colour="red"))) == [0]
    assert Z.phrase_truth(sc, Z.PhraseSpec(S.Query(shape="star", texture="dotted"))) == []


def test_held_out_combinations_split(vqa, zsod) -> None:
    assert len(S.HELD_OUT) == 6
    for split in ("train", "valid"):
        for r in vqa[split] + zsod[split]:
            assert not {o.combo for o in r.scene.objects} & S.HELD_OUT
        for r in vqa[split]:
            assert not set(colour_shape_pairs(r.sample.question, r.sample.lang)) & S.HELD_OUT
        for r in zsod[split]:
            for text in r.sample.phrases:
                pairs = colour_shape_pairs(text, r.sample.lang)
                assert pairs and not set(pairs) & S.HELD_OUT, text
    present = absent = 0
    for r in zsod["test"]:
        assert {o.combo for o in r.scene.objects} & S.HELD_OUT
        for text, boxes in r.sample.phrases.items():
            head = colour_shape_pairs(text, r.sample.lang)[0]
            assert head in S.HELD_OUT, text
            present += bool(boxes)
            absent += not boxes
    assert present > 50 and absent > 50
    # the VQA test split is free to show held-out pairs
    assert any({o.combo for o in r.scene.objects} & S.HELD_OUT for r in vqa["test"])


def test_vqa_several_questions_per_image(tmp_path: Path) -> None:
    samples = V.generate("valid", 12, 2, tmp_path, questions_per_image=3)
    assert len(samples) == 12 and len({s.id for s in samples}) == 12
    by_image: dict[str, list[str]] = {}
    for s in samples:
        by_image.setdefault(s.image_path, []).append(s.question)
    assert len(by_image) == 4
    for questions in by_image.values():
        assert len(set(questions)) == len(questions) == 3
    assert sorted(p.name for p in (tmp_path / "images").iterdir()) == sorted(
        Path(p).name for p in by_image)
