"""Tests of the synthetic handwriting generator: fonts, stroke writers, held-out hands, forms."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fusionbrain.data import fonts as fontlib
from fusionbrain.errors import UserError
from fusionbrain.tasks.htr import forms, hershey, names
from fusionbrain.tasks.htr import synthetic as syn
from fusionbrain.utils import io as io_lib


def _all_fonts() -> list[fontlib.FontInfo]:
    return fontlib.installed_handwriting_fonts() + fontlib.fallback_fonts()


def _ink_bbox(img: Image.Image) -> tuple[int, int, int, int] | None:
    # Ink is dark: invert so that getbbox finds the non-paper pixels.
    return Image.eval(img, lambda v: 255 - v).point(lambda v: 255 if v > 60 else 0).getbbox()


def test_generate_is_deterministic_and_seed_dependent(tmp_path: Path) -> None:
    a = syn.generate("train", 6, 3, tmp_path / "a")
    b = syn.generate("train", 6, 3, tmp_path / "b")
    c = syn.generate("train", 6, 4, tmp_path / "c")
    assert [s.text for s in a] == [s.text for s in b]
    for sa, sb in zip(a, b, strict=True):
        assert Path(sa.image_path).read_bytes() == Path(sb.image_path).read_bytes()
    assert [Path(s.image_path).read_bytes() for s in a] != [
        Path(s.image_path).read_bytes() for s in c]
    # Exactly the n files, named after split and index, absolute paths, nothing else left.
    names = sorted(p.name for p in (tmp_path / "a" / "images").iterdir())
    assert names == sorted(f"train_{i}.png" for i in range(6))
    assert all(Path(s.image_path).is_absolute() for s in a)
    assert [s.id for s in a] == [f"train_{i}" for i in range(6)]


def test_parallel_generation_gives_the_same_bytes(tmp_path: Path) -> None:
    one = syn.generate("valid", 5, 1, tmp_path / "one")
    two = syn.generate("valid", 5, 1, tmp_path / "two", workers=2)
    assert [Path(s.image_path).read_bytes() for s in one] == [
        Path(s.image_path).read_bytes() for s in two]


def test_images_are_grayscale_fixed_height_capped_width(tmp_path: Path) -> None:
    for s in syn.generate("train", 8, 0, tmp_path):
        img = Image.open(s.image_path)
        assert img.mode == "L" and img.height == syn.HEIGHT
        assert syn.MIN_WIDTH <= img.width <= syn.MAX_WIDTH
        assert _ink_bbox(img) is not None
    sheet = syn.contact_sheet(syn.generate("train", 3, 0, tmp_path / "sheet"), columns=2)
    assert sheet.size == (2 * (syn.MAX_WIDTH + 8), 2 * (syn.HEIGHT + 6))
    long = syn.render_word("ж" * 60, seed=1)
    assert long.width == syn.MAX_WIDTH and long.height == syn.HEIGHT


def test_both_languages_and_their_scripts() -> None:
    specs = syn.plan("train", 200, 0)
    en = [s for s in specs if s.lang == "en"]
    ru = [s for s in specs if s.lang == "ru"]
    assert len(en) == len(ru) == 100
    assert all(not any("а" <= c.lower() <= "я" or c in "ёЁ" for c in s.text) for s in en)
    assert sum(any("а" <= c.lower() <= "я" for c in s.text) for s in ru) > 70
    texts = [s.text for s in specs]
    assert any(t.isupper() for t in texts) and any(t[:1].isupper() and t[1:].islower()
                                                   for t in texts)
    assert any(c.isdigit() for t in texts for c in t)


def test_hard_russian_letters_are_oversampled() -> None:
    ru = [s.text.lower() for s in syn.plan("train", 1200, 2) if s.lang == "ru" and s.kind == "word"]
    # ё and ъ are in well under 1% of the vocabulary's words; oversampling lifts them.
    vocab = syn.vocabulary("ru")
    for ch in "ёъ":
        base = sum(ch in w for w in vocab) / len(vocab)
        drawn = sum(ch in t for t in ru) / len(ru)
        assert drawn > 2 * base, (ch, base, drawn)


def test_labels_are_covered_by_their_hand_and_in_charset() -> None:
    from fusionbrain.tasks.htr import charset

    hands = {h.key: h for h in syn.all_hands()}
    for split in ("train", "test"):
        for spec in syn.plan(split, 300, 5):
            assert spec.text and spec.text == spec.text.strip()
            assert set(spec.text) <= set(syn.CHARSET), spec.text
            assert set(spec.text) <= set(charset.CHARSET), spec.text  # the head can write it
            assert hands[spec.font_path].covers(spec.text), (spec.text, spec.font_path)


def test_plain_rendering_ink_grows_with_text_length() -> None:
    for word in ("ab", "Жё"):
        for font in fontlib.fonts_covering(word)[:4]:
            widths = []
            for n in (1, 3, 6):
                img = syn.render_word(word * n, font, augment=False)
                box = _ink_bbox(img)
                assert box is not None, (font.name, word)
                # Plain rendering: white paper, nothing but the word.
                assert np.asarray(img)[0].min() == 255
                widths.append(box[2] - box[0])
            assert widths[0] < widths[1] < widths[2], (font.name, widths)


def test_test_only_words_never_in_train_or_valid() -> None:
    test = syn.plan("test", 300, 0)
    others = syn.plan("train", 300, 0) + syn.plan("valid", 300, 7)
    assert all(syn.is_test_only(s.text) for s in test)
    assert not any(syn.is_test_only(s.text) for s in others)
    assert not {syn.text_key(s.text) for s in test} & {syn.text_key(s.text) for s in others}
    # The test-only share of the vocabulary is a real, but minor, part.
    vocab = syn.vocabulary("en") + syn.vocabulary("ru")
    share = sum(map(syn.is_test_only, vocab)) / len(vocab)
    assert 0.1 < share < 0.2
    # Case and punctuation do not move a word across the split.
    assert syn.is_test_only("Word,") == syn.is_test_only("word") == syn.is_test_only("WORD")


def test_fallback_fonts_when_no_handwriting_font(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fontlib, "installed_handwriting_fonts", lambda: [])
    monkeypatch.setattr(hershey, "available_writers", lambda: [])
    fallback = {f.path for f in fontlib.fallback_fonts()}
    assert fallback
    assert all(not f.handwriting for f in fontlib.fallback_fonts())
    samples = syn.generate("train", 4, 0, tmp_path)
    specs = syn.plan("train", 4, 0)
    assert {s.font_path for s in specs} <= fallback
    assert [s.text for s in samples] == [s.text for s in specs]
    assert all(Path(s.image_path).is_file() for s in samples)


def test_font_coverage_checks() -> None:
    dejavu = fontlib.fallback_fonts()[0]
    assert dejavu.covers("Жёлтый Hello 123")
    latin_only = fontlib.font_chars(dejavu.path, frozenset({"CYRILLIC"}))
    assert "a" in latin_only and "ж" not in latin_only
    font = fontlib.FontInfo(dejavu.path, "latin", False, latin_only)
    assert fontlib.fonts_covering("привет", [font]) == []
    assert fontlib.fonts_covering("hello", [font]) == [font]
    # Default search: a word no handwriting font covers falls back to DejaVu, never to nothing.
    assert fontlib.fonts_covering("Жёлтый") and fontlib.fonts_covering("\u4e00") == []


def test_no_partial_files_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(io_lib.os, "replace", broken_replace)  # the atomic writer's rename
    with pytest.raises(UserError, match="disk full"):
        syn.generate("train", 3, 0, tmp_path)
    assert list((tmp_path / "images").iterdir()) == []


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        syn.plan("train", -1, 0)
    with pytest.raises(ValueError):
        syn.render_word("   ")
    with pytest.raises(ValueError):
        syn.vocabulary("de")


def test_letters_are_never_cut_off_by_the_canvas() -> None:
    # Narrow capitals get the widest letter spacing: the canvas must still hold all of them.
    for font in _all_fonts()[:8]:
        for seed, text in enumerate(("I" * 20, "Wjqy", "Ж" * 5)):
            if not font.covers(text):
                continue
            mask, _, _ = syn._draw_mask(text, font.path, np.random.default_rng(seed), True)
            border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
            assert mask.max() > 0.5 and border.max() < 0.05, (font.name, text)


def test_held_out_hands_only_in_valid_and_test() -> None:
    hands = syn.all_hands()
    held = {h.key for h in hands if h.held_out}
    assert held and len(held) < len(hands)
    # Both languages can be written by held-out and by training hands, fonts and strokes.
    for is_held in (True, False):
        group = [h for h in hands if h.held_out == is_held]
        assert any(h.covers("Жёлтый ЩИТ") for h in group)
        assert any(h.covers("Yellow SHIELD") for h in group)
        assert any(h.stroke for h in group) and any(not h.stroke for h in group)
    train = syn.plan("train", 400, 1)
    assert not {s.font_path for s in train} & held
    for split in ("valid", "test"):
        specs = syn.plan(split, 200, 1)
        assert {s.font_path for s in specs} <= held, split
        assert len({s.font_path for s in specs}) >= 6  # many hands, not one
    assert {h.key for h in syn.hands_for("train")}.isdisjoint(
        {h.key for h in syn.hands_for("test")})


def test_core_hand_set_leaves_out_the_extra_hands_and_keeps_valid_and_test() -> None:
    from fusionbrain.tasks.htr.data import HAND_SET_BY_SIZE

    names_of = {h.key: h.name for h in syn.all_hands()}
    extra = {h.key for h in syn.hands_for("train") if h.name in syn.EXTRA_HANDS}
    if not extra:
        pytest.skip("none of the extra training fonts is installed (scripts/setup.sh installs them)")
    core = syn.plan("train", 600, 2, "core")
    every = syn.plan("train", 600, 2, "all")
    assert not {s.font_path for s in core} & extra
    assert {s.font_path for s in every} & extra  # the large build draws with them
    assert not any(names_of.get(s.font_path) in syn.EXTRA_HANDS for s in core)
    for split in ("valid", "test"):  # held-out hands only: the same images either way
        assert syn.plan(split, 100, 2, "core") == syn.plan(split, 100, 2, "all")
    assert HAND_SET_BY_SIZE["small"] == "core" and HAND_SET_BY_SIZE["large"] == "all"
    with pytest.raises(ValueError, match="hand set"):
        syn.hands_for("train", "some")


def test_content_kinds_styles_and_strokes() -> None:
    specs = syn.plan("train", 400, 3)
    kinds = {s.kind for s in specs}
    assert kinds == set(syn.KIND_SHARES)
    assert {s.style for s in specs} == {"page", "form"}
    assert any(s.font_path.startswith(syn.HERSHEY) for s in specs)
    caps_names = [s for s in specs if s.kind == "name" and s.text.isupper()]
    assert len(caps_names) > 20 and any(s.lang == "ru" for s in caps_names)
    assert any(" " in s.text for s in specs)  # phrases and full names
    assert any(s.kind == "number" and s.text.count(".") == 2 for s in specs)  # full dates


def test_multi_word_labels_stay_on_their_split_side() -> None:
    test_words = {w for s in syn.plan("test", 300, 0) for w in map(syn.text_key, s.text.split())}
    train_words = {w for s in syn.plan("train", 300, 0) for w in map(syn.text_key, s.text.split())}
    assert not (test_words - {""}) & train_words
    a = next(w for w in syn.vocabulary("en") if syn.is_test_only(w))
    b = next(w for w in syn.vocabulary("en") if not syn.is_test_only(w))
    assert syn.split_side(f"{a} {a}") == "test" and syn.split_side(f"{b} {b}") == "train"
    assert syn.split_side(f"{a} {b}") is None and not syn.is_test_only(f"{a} {b}")


def test_glyph_coverage_decides_which_hand_draws_cyrillic() -> None:
    word = "Щёкин"
    for split in ("train", "test"):
        for hand in syn.hands_covering(word, split):
            assert set(word) <= hand.chars
    latin_only = [h for h in syn.all_hands() if h.covers("abc") and not h.covers("ж")]
    assert latin_only  # e.g. Delphine, Kristi: they must never draw a Russian word
    assert not {h.key for h in latin_only} & {h.key for h in syn.hands_covering(word, "train")}
    # Fonts whose Cyrillic is full-width are placed by ink: a 5-letter word is not spread out.
    klee = [f for f in fontlib.installed_handwriting_fonts() if f.ink_advance]
    for f in klee[:1]:
        img = syn.render_word("письмо", f, augment=False)
        box = _ink_bbox(img)
        assert box is not None and (box[2] - box[0]) < 5.5 * syn.HEIGHT


def test_hershey_writers_draw_every_letter_in_one_stroke() -> None:
    writers = hershey.available_writers()
    assert writers, "hershey-fonts-data is installed by scripts/setup.sh"
    for w in writers:
        chars = hershey.writer_chars(w)
        assert set(syn.LATIN + syn.CYRILLIC + syn.DIGITS) <= chars, w.name
    # Thinning: the serif Cyrillic's double stems and serifs go, the letter stays.
    raw = dict(zip(hershey._ASCII, hershey.parse_jhf(hershey.hershey_dir() / "cyrillic.jhf"),
                   strict=False))["$"]  # Ы
    thin = hershey.thin_glyph(raw)
    assert 2 <= len(thin.strokes) < len(raw.strokes)
    # The file's Й lacks its breve and its э is capital-sized: both are repaired.
    face = writers[0].face_obj()
    assert face is not None
    assert len(face.glyphs["Й"].strokes) > len(face.glyphs["И"].strokes)
    assert abs(hershey._height(face.glyphs["э"]) - hershey._height(face.glyphs["о"])) < 2
    assert hershey._height(face.glyphs["Э"]) > 1.3 * hershey._height(face.glyphs["э"])
    rng = np.random.default_rng(0)
    widths = []
    for text in ("Ы", "ЫЫЫ", "ЫЫЫЫЫЫ"):
        mask, base, cap = hershey.draw(text, writers[0], rng, 30, augment=False)
        cols = np.flatnonzero(mask.max(axis=0) > 0.5)
        widths.append(cols[-1] - cols[0])
        assert 0 < base < mask.shape[0] and cap == 30
    assert widths[0] < widths[1] < widths[2]
    with pytest.raises(ValueError):
        hershey.writer("nobody")


def test_form_style_is_deterministic_and_looks_like_a_crop() -> None:
    hand = syn.HERSHEY + "block-neat"
    a = syn.render_word("ИВАНОВ", hand, seed=5, style="form")
    b = syn.render_word("ИВАНОВ", hand, seed=5, style="form")
    c = syn.render_word("ИВАНОВ", hand, seed=6, style="form")
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()
    assert a.mode == "L" and a.height == syn.HEIGHT and a.width <= syn.MAX_WIDTH
    # compose: a label and lines add dark pixels outside the handwriting.
    alpha = np.zeros((syn.HEIGHT, 120), np.float32)
    alpha[20:44, 10:110] = 1.0
    rng = np.random.default_rng(0)
    outs = [forms.compose(alpha, 44.0, 24.0, rng, "ru", syn.MAX_WIDTH) for _ in range(20)]
    assert all(o.mode == "L" and o.height == syn.HEIGHT for o in outs)
    assert any(o.width > 120 for o in outs)  # some have a printed label beside the word
    with pytest.raises(ValueError):
        syn.render_word("x", hand, style="poster")


def test_name_lists() -> None:
    assert names.female_surname("Иванов") == "Иванова"
    assert names.female_surname("Достоевский") == "Достоевская"
    assert names.female_surname("Шевченко") == "Шевченко"
    assert names.patronymic("Сергей", False) == "Сергеевич"
    assert names.patronymic("Иван", True) == "Ивановна"
    for lang in ("en", "ru"):
        li = names.lists(lang)
        assert len(li["first"]) > 50 and len(li["surname"]) > 100
        rng = np.random.default_rng(0)
        made = {names.full_name(rng, lang) for _ in range(200)}
        assert len(made) > 100
    with pytest.raises(ValueError):
        names.lists("de")


def test_unicase_fonts_write_capitals_and_form_crops_are_test_side() -> None:
    for split in ("train", "test"):
        for spec in syn.plan(split, 300, 4):
            name = next(h.name for h in syn.all_hands() if h.key == spec.font_path)
            if name in syn.CAPS_ONLY_HANDS:
                assert spec.text == spec.text.upper(), (name, spec.text)
            if name in syn.NO_CAPS_HANDS:
                assert not any(c.isupper() for c in spec.text), (name, spec.text)
    crops = syn.form_name_crops(3, "ru", seed=1)
    again = syn.form_name_crops(3, "ru", seed=1)
    assert [t for _, t in crops] == [t for _, t in again]
    assert [im.tobytes() for im, _ in crops] == [im.tobytes() for im, _ in again]
    for im, text in crops:
        assert text == text.upper() and syn.is_test_only(text)
        assert im.mode == "L" and im.height == syn.HEIGHT
