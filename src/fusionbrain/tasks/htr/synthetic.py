"""Synthetic handwriting (English + Russian) on copybook paper and on scanned forms, offline.

What is written: words from ``wordfreq``'s frequency lists, first names and surnames (names.py;
in CAPITALS as on forms, or mixed case, with initials and patronymics), dates, numbers and
amounts, and short phrases.

Who writes it (a "hand"): a handwriting-like font that covers every character of the text
(fusionbrain.data.fonts checks each glyph), or a Hershey stroke writer (hershey.py: the text is
drawn as pen trajectories with the writer's slant, width, spacing, baseline drift, tremor and a
pen width that varies along the stroke). Whole hands are held out: valid and test use only
HELD_OUT_FONTS and HELD_OUT_WRITERS, train never sees them, so valid/test figures are "new
writer" figures. Training draws with a hand set: "all" training hands, or the "core" ones
(without EXTRA_HANDS) for the small build of the 10-minute main job.

How it looks: either a page (slant, rotation, elastic warp, stroke width, ink and paper tone,
ruled or squared lines, noise, blur) or a crop of a scanned form (forms.py: printed labels beside
the word, form lines and boxes crossing it, coloured ballpoint ink and dropout-colour lines,
paper texture, uneven margins), then scanner artefacts (rotation, blur, low contrast, JPEG).

Everything is deterministic: each image has its own generator seeded from (seed, split, index),
so the same (split, n, seed) gives the same bytes and the first k images do not depend on n.

A fixed share of the vocabulary (by a hash of each lower-cased word, independent of the seed) is
test-only: the ``test`` split uses only texts whose every word is test-only, every other split
only texts with none, so a test score measures reading unseen words rather than remembering
seen ones.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from fusionbrain.data import fonts as fontlib
from fusionbrain.tasks.htr import forms, hershey, names
from fusionbrain.tasks.htr.data import HTRSample
from fusionbrain.utils.io import atomic_open

LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
DIGITS = "0123456789"
PUNCT = ".,!?:;-'\"()%№/$"
CHARSET = LATIN + CYRILLIC + DIGITS + PUNCT + " "  # every character a generated label may contain

HEIGHT = 64  # output image height in pixels
MAX_WIDTH = 512  # wider words are scaled down as a whole (keeps the letter shapes)
MIN_WIDTH = 24
RENDER_PX = 48  # font size at which fonts are measured
CAP_PX = 34  # every font is drawn with capitals this tall, then normalised to HEIGHT

VOCAB_SIZE = {"en": 30000, "ru": 30000}
TOP_WORDS = 2000  # the most frequent words, drawn more often than their share of the vocab
TEST_SHARE = 0.15  # share of the vocabulary that only the test split uses
# Russian letters that models confuse (ё/е, й/и, щ/ш, ъ/ь, ы, ж): words with them are drawn
# more often. ё and ъ are rarest in running text, hence the bigger boost.
HARD_RU = {"ё": 18.0, "ъ": 15.0, "й": 1.0, "щ": 2.0, "ы": 0.5, "ж": 1.0}

_WORD_RE = {"en": re.compile(r"[a-z]+('[a-z]+)?"), "ru": re.compile(r"[а-яё]+(-[а-яё]+)?")}


# ----------------------------------------------------------------------------- vocabulary
def text_key(text: str) -> str:
    """The split key of a label: lower-cased letters and digits (case and punctuation dropped)."""
    return "".join(c for c in text.lower() if c.isalnum())


def _key_is_test(key: str) -> bool:
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10000 < int(TEST_SHARE * 10000)


def split_side(text: str) -> str | None:
    """"test" when every word of ``text`` is test-only, "train" when none is, else None.

    Words are the space-separated parts (keyed by text_key); a label of mixed words belongs to
    no split and is never drawn.
    """
    keys = [k for k in map(text_key, text.split()) if k] or [text_key(text)]
    flags = {_key_is_test(k) for k in keys}
    if flags == {True}:
        return "test"
    return "train" if flags == {False} else None


def is_test_only(text: str) -> bool:
    """True when every word of ``text`` belongs to the test-only part of the vocabulary."""
    return split_side(text) == "test"


@functools.lru_cache(maxsize=4)
def vocabulary(lang: str) -> tuple[str, ...]:
    """The word list of ``lang`` ("en"/"ru"), most frequent first, letters of CHARSET only."""
    import wordfreq

    if lang not in _WORD_RE:
        raise ValueError(f"unknown language {lang!r}; expected 'en' or 'ru'")
    out = []
    for w in wordfreq.top_n_list(lang, VOCAB_SIZE[lang]):
        if not (_WORD_RE[lang].fullmatch(w) and len(w) <= 18):
            continue
        if lang == "en" and (w == "i" or w.startswith("i'")):
            w = "I" + w[1:]  # wordfreq lower-cases everything; the pronoun is always capital
        out.append(w)
    return tuple(out)


@dataclass(frozen=True)
class _SplitVocab:
    words: tuple[str, ...]
    cum_weights: np.ndarray  # cumulative sampling weights, for searchsorted
    n_top: int  # how many of `words` are among the TOP_WORDS most frequent


@functools.lru_cache(maxsize=8)
def _split_vocab(lang: str, test: bool) -> _SplitVocab:
    words, weights, n_top = [], [], 0
    for rank, w in enumerate(vocabulary(lang)):
        if is_test_only(w) != test:
            continue
        words.append(w)
        weights.append(1.0 + sum(b for ch, b in HARD_RU.items() if ch in w))
        n_top += rank < TOP_WORDS
    return _SplitVocab(tuple(words), np.cumsum(np.asarray(weights)), n_top)


def _pick_word(rng: np.random.Generator, sv: _SplitVocab) -> str:
    hi = sv.n_top if (rng.random() < 0.3 and sv.n_top) else len(sv.words)
    r = rng.random() * sv.cum_weights[hi - 1]
    return sv.words[int(np.searchsorted(sv.cum_weights[:hi], r, side="right"))]


_MONTHS = {"en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                   "Nov", "Dec"),
           "ru": ("янв", "фев", "мар", "апр", "мая", "июн", "июл", "авг", "сен", "окт", "ноя",
                  "дек")}


def _number(rng: np.random.Generator, lang: str) -> str:
    """A number, date or amount as people write them on forms."""
    kind = rng.integers(12)
    d, m, y = int(rng.integers(1, 32)), int(rng.integers(1, 13)), int(rng.integers(1930, 2027))
    if kind == 0:
        return str(int(rng.integers(0, 100)))
    if kind == 1:
        return str(int(rng.integers(100, 100000)))
    if kind == 2:
        return str(y)
    if kind == 3:  # decimal: Russian writes a comma
        sep = "," if lang == "ru" else "."
        return f"{int(rng.integers(0, 1000))}{sep}{int(rng.integers(0, 100)):02d}"
    if kind == 4:  # a short date
        return f"{d:02d}.{m:02d}"
    if kind in (5, 6):  # a full date, dotted (RU, EU) or slashed
        sep = "." if lang == "ru" or rng.random() < 0.4 else "/"
        yy = f"{y % 100:02d}" if rng.random() < 0.3 else str(y)
        return f"{d:02d}{sep}{m:02d}{sep}{yy}" if rng.random() < 0.8 else f"{d}{sep}{m}{sep}{yy}"
    if kind == 7:  # a date with the month's abbreviation
        mon = _MONTHS[lang][m - 1]
        return f"{d} {mon.upper() if rng.random() < 0.4 else mon} {y}"
    if kind == 8:  # an amount
        units, cents = int(rng.integers(1, 100000)), int(rng.integers(0, 100))
        if lang == "ru":
            whole = f"{units:,}".replace(",", " ") if rng.random() < 0.5 else str(units)
            return f"{whole},{cents:02d}" if rng.random() < 0.7 else f"{whole} руб."
        return f"${units:,}.{cents:02d}" if rng.random() < 0.5 else f"{units:,}.{cents:02d}"
    if kind == 9:  # a phone number
        a, b, c = (int(v) for v in rng.integers(0, 1000, 3))
        return f"{a:03d}-{b:03d}-{c:03d}{int(rng.integers(0, 10))}"
    if lang == "ru" and rng.random() < 0.5:
        return f"№{int(rng.integers(1, 1000))}"
    return f"{int(rng.integers(1, 100))}%"


def _decorate(rng: np.random.Generator, word: str) -> str:
    r = rng.random()
    if r < 0.6:
        text = word
    elif r < 0.85:
        text = word[:1].upper() + word[1:]
    else:
        text = word.upper()
    r = rng.random()
    if r < 0.10:
        text += str(rng.choice(list(",.,.!?:;")))
    elif r < 0.12:
        text = f'"{text}"'
    elif r < 0.13:
        text = f"({text})"
    return text


def _name(rng: np.random.Generator, lang: str) -> str:
    """A name in the case forms use: mostly CAPITALS, else as written."""
    text = names.full_name(rng, lang)
    r = rng.random()
    if r < 0.55:
        return text.upper()
    return text.lower() if r < 0.58 else text


def _phrase(rng: np.random.Generator, lang: str, test: bool) -> str:
    """Two or three frequent words: what a short answer on a form says."""
    sv = _split_vocab(lang, test)
    k = 2 + int(rng.random() < 0.3)
    words = [sv.words[int(rng.integers(max(1, min(sv.n_top, len(sv.words)))))] for _ in range(k)]
    text = " ".join(words)
    r = rng.random()
    if r < 0.3:
        return text[:1].upper() + text[1:]
    return text.upper() if r < 0.4 else text


# Shares of what is written: words, names, numbers/dates/amounts, short phrases.
KIND_SHARES = {"word": 0.42, "name": 0.30, "number": 0.17, "phrase": 0.11}


def _make_text(rng: np.random.Generator, lang: str, test: bool) -> tuple[str, str]:
    """One label and its kind (see KIND_SHARES)."""
    kinds, p = list(KIND_SHARES), np.asarray(list(KIND_SHARES.values()))
    side = "test" if test else "train"
    # The kind first, then its content until it falls on the split's side: every split gets
    # the same mix of kinds (re-drawing the kind would favour those that pass most often).
    kind = kinds[int(np.searchsorted(np.cumsum(p), rng.random() * p.sum(), side="right"))]
    for _ in range(500):
        if kind == "number":
            text = _number(rng, lang)
        elif kind == "name":
            text = _name(rng, lang)
        elif kind == "phrase":
            text = _phrase(rng, lang, test)
        else:
            text = _decorate(rng, _pick_word(rng, _split_vocab(lang, test)))
        # Words are on the split's side by construction; the rest is re-drawn until it is.
        if split_side(text) == side:
            return text, kind
    raise RuntimeError("could not draw a label for the split")  # practically unreachable


# ----------------------------------------------------------------------------- hands
HERSHEY = "hershey:"  # prefix of a stroke writer's key (font hands are keyed by file path)
# Hands only valid and test see (font names from fonts.HANDWRITING_FONTS, writers from
# hershey.WRITERS). Kiloji is the held-out family that covers Cyrillic.
HELD_OUT_FONTS = frozenset({"DKG Handwriting", "DKG Handwriting Bold", "DKG Handwriting Italic",
                            "DKG Handwriting Bold Italic", "Kristi", "BecauseWeOrganize",
                            "Comic Neue Light Italic", "Kiloji", "Kiloji B", "Kiloji D",
                            "Kiloji P"})
HELD_OUT_WRITERS = frozenset({"block-hasty", "roman-back", "cursive-tight"})
# Training hands of the "all" hand set only (the medium and large builds, for the long recipe).
# The 10-minute main job trains on the small build's "core" set: with these eleven more its HTR
# read 0.080 instead of 0.145 (seed 0, BENCHMARKS.md): too many styles for ~550 HTR steps.
EXTRA_HANDS = frozenset({"Purisa", "Purisa Oblique", "Purisa Bold", "Purisa Bold Oblique",
                         "Lobster", "Lobster Two", "Lobster Two Italic", "Lobster Two Bold",
                         "Lobster Two Bold Italic", "Leckerli One", "Havana"})
HAND_SETS = ("core", "all")
STROKE_SHARE = 0.35  # share of labels drawn by a stroke writer when one covers the text
# Unicase fonts draw lowercase letters as capitals: they write the label in CAPITALS (else the
# image shows "OUR" under the label "our"). Femkeklaver's capitals are hollow outlines: it only
# writes labels without capitals.
CAPS_ONLY_HANDS = frozenset({"BecauseWeBuild", "BecauseWeConnect", "BecauseWeCreate",
                             "BecauseWeLearn", "BecauseWeMentor", "BecauseWeOrganize",
                             "Humor Sans", "Tomson Talks"})
NO_CAPS_HANDS = frozenset({"Femkeklaver"})
FORM_SHARE = {"word": 0.2, "name": 0.65, "number": 0.5, "phrase": 0.25}


@dataclass(frozen=True)
class Hand:
    """One writer: a handwriting font or a Hershey stroke writer."""

    key: str  # the font's path, or HERSHEY + writer name
    name: str
    held_out: bool
    chars: frozenset[str]

    def covers(self, text: str) -> bool:
        return all(c in self.chars or c == " " for c in text)

    @property
    def stroke(self) -> bool:
        return self.key.startswith(HERSHEY)


def all_hands() -> list[Hand]:
    """Every installed hand, fonts first, in a stable order (held-out ones included)."""
    out = [Hand(f.path, f.name, f.name in HELD_OUT_FONTS, f.chars)
           for f in fontlib.installed_handwriting_fonts()]
    out += [Hand(HERSHEY + w.name, w.name, w.name in HELD_OUT_WRITERS, hershey.writer_chars(w))
            for w in hershey.available_writers()]
    return out


def hands_for(split: str, hand_set: str = "all") -> list[Hand]:
    """The hands a split draws with: held-out ones for valid/test, the others for train
    (without EXTRA_HANDS in the "core" set; valid/test are the same in both sets)."""
    if hand_set not in HAND_SETS:
        raise ValueError(f"unknown hand set {hand_set!r}; expected one of {HAND_SETS}")
    held = split in ("valid", "test")
    return [h for h in all_hands() if h.held_out == held
            and not (hand_set == "core" and h.name in EXTRA_HANDS)]


def hand_text(hand: Hand, text: str) -> str:
    """``text`` as ``hand`` writes it: in CAPITALS for unicase fonts."""
    return text.upper() if hand.name in CAPS_ONLY_HANDS else text


def hands_covering(text: str, split: str, hand_set: str = "all") -> list[Hand]:
    """The split's hands that draw every character of ``text``; DejaVu when none does."""
    caps = any(c.isupper() for c in text)
    hands = [h for h in hands_for(split, hand_set) if h.covers(hand_text(h, text))
             and not (caps and h.name in NO_CAPS_HANDS)]
    if hands:
        return hands
    return [Hand(f.path, f.name, False, f.chars) for f in fontlib.fonts_covering(text)
            if not f.handwriting]


def _pick_hand(rng: np.random.Generator, hands: list[Hand]) -> Hand:
    strokes = [h for h in hands if h.stroke]
    fonts_ = [h for h in hands if not h.stroke]
    pool = strokes if strokes and (not fonts_ or rng.random() < STROKE_SHARE) else fonts_
    return pool[int(rng.integers(len(pool)))]


# ----------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class WordSpec:
    """What one synthetic image shows, decided before drawing it."""

    id: str
    text: str
    lang: str
    font_path: str  # the hand's key: a font file, or "hershey:<writer>"
    seed: tuple[int, ...]  # entropy for the drawing generator
    style: str = "page"  # "page" (copybook paper) or "form" (a crop of a scanned form)
    kind: str = "word"  # word / name / number / phrase


def _split_code(split: str) -> int:
    return zlib.crc32(split.encode("utf-8"))


def plan(split: str, n: int, seed: int, hand_set: str = "all") -> list[WordSpec]:
    """Labels, languages, hands and styles of the ``n`` images of ``split`` (no drawing).

    Languages alternate en/ru. Any split other than "test" draws from the shared vocabulary;
    "valid" and "test" draw with the held-out hands only. ``hand_set``: "all" training hands or
    the "core" ones (without EXTRA_HANDS).
    """
    if n < 0 or seed < 0:
        raise ValueError("n and seed must be non-negative")
    test = split == "test"
    specs = []
    for i in range(n):
        lang = ("en", "ru")[i % 2]
        rng = np.random.default_rng([seed, _split_code(split), i, 0])
        for _ in range(100):
            text, kind = _make_text(rng, lang, test)
            candidates = hands_covering(text, split, hand_set)
            if candidates:
                break
        else:
            raise RuntimeError(f"no font covers the labels of {lang!r}; are fonts installed?")
        hand = _pick_hand(rng, candidates)
        text = hand_text(hand, text)
        style = "form" if rng.random() < FORM_SHARE[kind] else "page"
        specs.append(WordSpec(f"{split}_{i}", text, lang, hand.key,
                              (seed, _split_code(split), i, 1), style, kind))
    return specs


# ----------------------------------------------------------------------------- drawing
@functools.lru_cache(maxsize=64)
def _pil_font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=64)
def _cap_height(path: str, size: int) -> float:
    """Height of a capital above the baseline; normalises the very different font designs."""
    font = _pil_font(path, size)
    chars = fontlib.font_chars(path)
    for ch in ("H", "Н", "E", "Е"):  # Latin first, Cyrillic for a Cyrillic-only font
        if ch in chars:
            return float(-font.getbbox(ch, anchor="ls")[1])
    return 0.7 * size


@functools.lru_cache(maxsize=64)
def _font_style(path: str) -> tuple[int, float]:
    """(font size giving a cap height of CAP_PX, stroke width / cap height) of a font.

    Drawing every font at the same cap height makes stroke changes comparable across fonts;
    the stroke ratio (2 * ink area / ink perimeter of a probe word) tells which fonts are
    already heavy and must not be thickened further.
    """
    size = max(8, round(RENDER_PX * CAP_PX / max(1.0, _cap_height(path, RENDER_PX))))
    font = _pil_font(path, size)
    probe = "Hamburg" if "a" in fontlib.font_chars(path) else "Набор"
    img = Image.new("L", (int(font.getlength(probe)) + 2 * size, 3 * size), 0)
    ImageDraw.Draw(img).text((size, 2 * size), probe, font=font, fill=255, anchor="ls")
    ink = np.asarray(img) > 127
    edge = ink & ~ndimage.binary_erosion(ink)
    ratio = 2 * ink.sum() / max(1, edge.sum()) / CAP_PX
    return size, float(ratio)


@functools.lru_cache(maxsize=4096)
def _ink_extent(path: str, size: int, ch: str) -> tuple[float, float]:
    """(left edge, width) of a glyph's ink: advances for fonts with full-width letters."""
    if ch == " ":
        return 0.0, 0.3 * size
    mask, _ = _pil_font(path, size).getmask2(ch, anchor="ls")
    box = mask.getbbox()
    if box is None:
        return 0.0, 0.3 * size
    return float(box[0]), float(box[2] - box[0])


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth random field in about [-1, 1]: coarse normal noise upsampled bicubically."""
    gh, gw = max(2, math.ceil(h / cell) + 1), max(2, math.ceil(w / cell) + 1)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((w, h), Image.BICUBIC))


def _draw_mask(text: str, font_path: str, rng: np.random.Generator,
               augment: bool) -> tuple[np.ndarray, float, float]:
    """Ink coverage (0..1, float32) of the word in a font, its baseline row and the cap height."""
    base_size, stroke_ratio = _font_style(font_path)
    size = int(round(base_size * (rng.uniform(0.9, 1.1) if augment else 1.0)))
    font = _pil_font(font_path, size)
    ascent, descent = font.getmetrics()
    margin = size
    # Thicker strokes only for light fonts: heavy ones (ratio >= 0.1) clog their counters.
    stroke = int(augment and stroke_ratio < 0.1 and rng.random() < 0.35)
    # Capitals of handwriting fonts often touch each other: space them a little.
    caps = sum(c.isupper() for c in text) >= 2
    # Fonts with full-width Cyrillic are placed letter by letter on their ink widths.
    ink_adv = Path(font_path).name in fontlib.INK_ADVANCE_FONTS
    jitter = ink_adv or (augment and (caps or rng.random() < 0.5))
    # Letter positions first (x offset, baseline offset), so the canvas fits them exactly.
    places: list[tuple[str, float, float]] = []
    if jitter:  # per-letter baseline and spacing wobble, as a hand does
        j = 1.0 if augment else 0.0
        x = 0.0
        spacing = (j * rng.uniform(-0.03, 0.08) + 0.06 * caps) * size
        if ink_adv:
            spacing += 0.1 * size
        x_end = 0.0
        for ch in text:
            if ink_adv:
                left, adv = _ink_extent(font_path, size, ch)
            else:
                left, adv = 0, font.getlength(ch)
            places.append((ch, x - left, float(j * rng.normal(0, 0.03 * size))))
            x_end = max(x_end, x - left + font.getlength(ch))
            x += adv + spacing + j * rng.normal(0, 0.03 * size)
        x_end = max(x, x_end)
    else:
        places.append((text, 0.0, 0.0))
        x_end = font.getlength(text)
    width = int(math.ceil(x_end)) + 2 * margin + 2 * stroke
    height = ascent + descent + 2 * margin
    img = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(img)
    baseline = margin + ascent
    for part, x, dy in places:
        draw.text((margin + x, baseline + dy), part, font=font, fill=255, anchor="ls",
                  stroke_width=stroke, stroke_fill=255)
    mask = np.asarray(img, dtype=np.float32) / 255.0
    cap = _cap_height(font_path, size) + stroke
    if not augment:
        return mask, float(baseline), cap
    mask, baseline = _warp(mask, float(baseline), cap, rng, size / RENDER_PX, (-0.25, 0.4))
    # Thinner strokes: raising coverage to a power > 1 erodes the anti-aliased edge.
    if stroke == 0 and rng.random() < (0.6 if stroke_ratio > 0.11 else 0.25):
        mask = mask ** rng.uniform(1.3, 2.0)
    return np.clip(mask, 0, 1).astype(np.float32), float(baseline), cap


def _warp(mask: np.ndarray, baseline: float, cap: float, rng: np.random.Generator, unit: float,
          shear_range: tuple[float, float]) -> tuple[np.ndarray, float]:
    """Slant, a small rotation and an elastic warp of an ink mask (``unit``: size / 48 px)."""
    height, width = mask.shape
    # Slant (shear about the baseline) and a small rotation in one affine map.
    shear = rng.uniform(*shear_range)
    angle = math.radians(rng.uniform(-2.5, 2.5))
    cx = width / 2
    ca, sa = math.cos(angle), math.sin(angle)
    to_c = np.array([[1, 0, -cx], [0, 1, -baseline], [0, 0, 1]])
    fwd = np.array([[ca, -sa, 0], [sa, ca, 0], [0, 0, 1]]) @ np.array(
        [[1, -shear, 0], [0, 1, 0], [0, 0, 1]]) @ to_c
    fwd = np.linalg.inv(to_c) @ fwd
    inv = np.linalg.inv(fwd)
    warped = Image.fromarray(mask, "F").transform(
        (width, height), Image.AFFINE, tuple(inv[:2].ravel()), resample=Image.BILINEAR)
    mask = np.asarray(warped, dtype=np.float32)

    # Elastic warp: a smooth random displacement field (a few pixels, cells of ~15 px).
    amp = rng.uniform(0.8, 2.2) * unit
    cell = rng.uniform(10, 20) * unit
    # Warp only the ink's surroundings (the canvas margins are mostly empty: 2x faster), but
    # keep the rows of the cap-height window that render_word crops to.
    rows = np.flatnonzero(mask.max(axis=1) > 0.01)
    cols = np.flatnonzero(mask.max(axis=0) > 0.01)
    if rows.size:
        pad = int(3 * amp) + 4
        r0 = max(0, min(int(rows[0]) - pad, math.floor(baseline - 1.4 * cap)))
        r1 = min(height, max(int(rows[-1]) + 1 + pad, math.ceil(baseline + 0.55 * cap)))
        c0, c1 = max(0, int(cols[0]) - pad), min(width, int(cols[-1]) + 1 + pad)
        mask = mask[r0:r1, c0:c1]
        baseline -= r0
        height, width = mask.shape
    dy = _smooth_noise(rng, height, width, cell) * amp
    dx = _smooth_noise(rng, height, width, cell) * amp
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    mask = ndimage.map_coordinates(mask, [yy + dy, xx + dx], order=1, mode="constant")
    return mask, baseline


def _hand_mask(text: str, key: str, rng: np.random.Generator,
               augment: bool) -> tuple[np.ndarray, float, float, float]:
    """(ink mask, baseline row, cap height, stroke width / cap height) of ``text`` by a hand."""
    if key.startswith(HERSHEY):
        w = hershey.writer(key[len(HERSHEY):])
        cap_px = CAP_PX * (rng.uniform(0.9, 1.1) if augment else 1.0)
        mask, baseline, cap = hershey.draw(text, w, rng, cap_px, augment)
        if augment:  # the writer has its own slant: only a little more here
            mask, baseline = _warp(mask, baseline, cap, rng, cap_px / CAP_PX, (-0.08, 0.08))
        return np.clip(mask, 0, 1).astype(np.float32), baseline, cap, w.pen
    mask, baseline, cap = _draw_mask(text, key, rng, augment)
    return mask, baseline, cap, _font_style(key)[1]


def _hline(img: np.ndarray, y0: float, slope: float, dark: float, thick: int) -> None:
    """Darken an anti-aliased, slightly tilted horizontal line into ``img`` in place."""
    h, w = img.shape
    ys = y0 + slope * np.arange(w)
    for t in range(thick):
        y = ys + t
        lo = np.floor(y).astype(int)
        frac = (y - lo).astype(np.float32)
        cols = np.arange(w)
        for rows, weight in ((lo, 1 - frac), (lo + 1, frac)):
            ok = (rows >= 0) & (rows < h)
            img[rows[ok], cols[ok]] -= dark * weight[ok]


def _vline(img: np.ndarray, x0: float, dark: float, thick: int) -> None:
    h, w = img.shape
    for t in range(thick):
        lo = math.floor(x0 + t)
        frac = x0 + t - lo
        for col, weight in ((lo, 1 - frac), (lo + 1, frac)):
            if 0 <= col < w:
                img[:, col] -= dark * weight


def render_word(text: str, font: fontlib.FontInfo | Hand | str | None = None, *,
                seed: int | Sequence[int] | np.random.Generator = 0,
                augment: bool = True, style: str = "page", lang: str | None = None
                ) -> Image.Image:
    """Draw ``text`` as a grayscale ('L') image of height 64 and width up to 512.

    ``font``: a FontInfo, a Hand, a font file path or "hershey:<writer>"; None picks one of the
    training hands covering the text. ``style``: "page" (copybook paper) or "form" (a crop of a
    scanned form: label, form lines, coloured ink, scan artefacts). With ``augment=False`` the
    word is drawn plainly: black ink on white, no lines, no noise.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if style not in ("page", "form"):
        raise ValueError(f"unknown style {style!r}; expected 'page' or 'form'")
    if font is None:
        # Only hands that write the text as given (a unicase font would change its case).
        candidates = [h for h in hands_covering(text, "train") if hand_text(h, text) == text]
        if not candidates:
            raise ValueError(f"no available font covers {text!r}")
        font = _pick_hand(rng, candidates)
    key = font.key if isinstance(font, Hand) else (
        font.path if isinstance(font, fontlib.FontInfo) else str(font))
    font_path = key
    if not text.strip():
        raise ValueError("cannot draw an empty text")
    if lang is None:
        lang = "ru" if any(c in CYRILLIC for c in text) else "en"

    mask, baseline, cap, stroke_ratio = _hand_mask(text, key, rng, augment)

    # Crop: horizontally to the ink, vertically to a window fixed by the font's cap height so
    # that "сон" and "Жук" keep their relative letter sizes (grown when ink sticks out).
    rows = np.flatnonzero(mask.max(axis=1) > 0.05)
    cols = np.flatnonzero(mask.max(axis=0) > 0.05)
    if rows.size == 0:
        raise ValueError(f"the font {font_path} drew no ink for {text!r}")
    top = int(min(rows[0], math.floor(baseline - 1.35 * cap)))
    bottom = int(max(rows[-1] + 1, math.ceil(baseline + 0.5 * cap)))
    top, bottom = max(top, 0), min(bottom, mask.shape[0])
    left, right = int(cols[0]), int(cols[-1]) + 1
    crop = mask[top:bottom, left:right]

    if augment and style == "form":  # crops cut from forms: uneven, sometimes tight margins
        pad_t, pad_b = (int(v) for v in rng.integers(0, 12, size=2))
        pad_l, pad_r = (int(v) for v in rng.integers(0, 40, size=2))
    elif augment:
        pad_t, pad_b = (int(v) for v in rng.integers(1, 8, size=2))
        pad_l, pad_r = (int(v) for v in rng.integers(2, 20, size=2))
    else:
        pad_t = pad_b = 4
        pad_l = pad_r = 8
    scale = (HEIGHT - pad_t - pad_b) / crop.shape[0]
    text_w = max(1, round(crop.shape[1] * scale))
    if text_w + pad_l + pad_r > MAX_WIDTH:  # too wide: shrink the whole word, centre it
        scale = (MAX_WIDTH - pad_l - pad_r) / crop.shape[1]
        text_w = MAX_WIDTH - pad_l - pad_r
    text_h = max(1, min(HEIGHT, round(crop.shape[0] * scale)))
    if text_h < HEIGHT - pad_t - pad_b:
        pad_t = (HEIGHT - text_h) // 2
    width = max(MIN_WIDTH, text_w + pad_l + pad_r)
    small = np.asarray(Image.fromarray(crop, "F").resize((text_w, text_h), Image.BILINEAR))
    alpha = np.zeros((HEIGHT, width), np.float32)
    alpha[pad_t:pad_t + text_h, pad_l:pad_l + text_w] = np.clip(small, 0, 1)
    base_y = pad_t + (baseline - top) * scale

    if not augment:
        return Image.fromarray(np.round(255 * (1 - alpha)).astype(np.uint8), "L")
    if style == "form":
        img = forms.compose(alpha, base_y, cap * scale, rng, lang, MAX_WIDTH)
        return forms.scan(img, rng, 1.0 if stroke_ratio < 0.11 else 0.7)

    # Paper: tone, soft shading, then ruled / squared lines and sometimes a margin line.
    paper = np.full((HEIGHT, width), rng.uniform(200, 250), np.float32)
    paper += _smooth_noise(rng, HEIGHT, width, 40) * rng.uniform(0, 8)
    ruling = rng.choice(["lines", "grid", "none"], p=[0.5, 0.3, 0.2])
    spacing = rng.uniform(0.9, 1.6) * cap * scale
    line_dark = rng.uniform(25, 80)
    if ruling != "none":
        y0 = base_y + rng.uniform(-2, 3)
        slope = rng.uniform(-0.01, 0.01)
        thick = 1 + int(rng.random() < 0.2)
        k_lo, k_hi = math.floor(-y0 / spacing) - 1, math.ceil((HEIGHT - y0) / spacing) + 1
        for k in range(k_lo, k_hi + 1):
            _hline(paper, y0 + k * spacing, slope, line_dark, thick)
        if ruling == "grid":
            x = rng.uniform(0, spacing)
            while x < width:
                _vline(paper, x, line_dark * 0.8, 1)
                x += spacing
    if rng.random() < 0.12:
        mx = rng.uniform(0, max(3, pad_l)) if rng.random() < 0.7 else rng.uniform(0, width)
        _vline(paper, mx, rng.uniform(50, 110), 1 + int(rng.random() < 0.5))
    paper = np.clip(paper, 0, 255)

    # Ink: pen tone, pressure varying along the stroke, opacity.
    ink = rng.uniform(0, 90)
    if paper.mean() - ink < 100:  # keep the contrast readable
        ink = paper.mean() - 100
    pressure = 1 - rng.uniform(0, 0.25) * (0.5 + 0.5 * _smooth_noise(rng, HEIGHT, width, 24))
    alpha = np.clip(alpha * pressure * rng.uniform(0.9, 1.0), 0, 1)
    out = paper * (1 - alpha) + ink * alpha

    # Scan: blur, low resolution, sensor noise.
    if rng.random() < 0.4:  # heavy fonts blur into blobs sooner
        out = ndimage.gaussian_filter(out, rng.uniform(0.3, 0.9 if stroke_ratio < 0.11 else 0.6))
    if rng.random() < 0.15:
        f = rng.uniform(0.55, 0.8)
        lowres = Image.fromarray(out.astype(np.float32), "F").resize(
            (max(1, round(width * f)), max(1, round(HEIGHT * f))), Image.BILINEAR)
        out = np.asarray(lowres.resize((width, HEIGHT), Image.BILINEAR))
    out = out + rng.normal(0, rng.uniform(0, 6), out.shape)
    img = Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), "L")
    if rng.random() < 0.25:  # a scanned page: JPEG blocks (blur and noise are above)
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(rng.integers(25, 75)))
        buf.seek(0)
        img = Image.open(buf).convert("L")
    return img


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _write_bytes(path: Path, data: bytes) -> None:
    # atomic: no half-written PNG is ever left behind (no fsync: the dataset's manifest,
    # written last, marks a complete build)
    with atomic_open(path, "wb", fsync=False) as f:
        f.write(data)


def _render_spec(spec: WordSpec) -> bytes:
    return _png_bytes(render_word(spec.text, spec.font_path, seed=spec.seed, style=spec.style,
                                  lang=spec.lang))


def generate(split: str, n: int, seed: int, out_dir: Path, *, workers: int = 1,
             hand_set: str = "all") -> list[HTRSample]:
    """Write ``n`` word images of ``split`` to ``out_dir/images/<split>_<i>.png``.

    Returns the samples (absolute image paths, exact labels, lang "en"/"ru" alternating).
    The bytes depend only on (split, n, seed, hand_set) and the fonts installed, not on
    ``workers``.
    """
    specs = plan(split, n, seed, hand_set)
    images = Path(out_dir).resolve() / "images"
    images.mkdir(parents=True, exist_ok=True)
    if workers > 1 and n > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            blobs = pool.imap(_render_spec, specs, chunksize=16)
            for spec, data in zip(specs, blobs, strict=True):
                _write_bytes(images / f"{spec.id}.png", data)
    else:
        for spec in specs:
            _write_bytes(images / f"{spec.id}.png", _render_spec(spec))
    return [HTRSample(s.id, str(images / f"{s.id}.png"), s.text, s.lang) for s in specs]


def form_name_crops(n: int, lang: str, seed: int = 0) -> list[tuple[Image.Image, str]]:
    """``n`` crops "in the style of real forms": names in CAPITALS by held-out hands.

    Every name is on the test side of the vocabulary split (never drawn in training), every
    hand a held-out one, every crop a scanned-form crop (label, form lines, ink, scan). For
    comparing readers (bench/htr_real_style.py) on what clerks' forms show.
    """
    out: list[tuple[Image.Image, str]] = []
    code = zlib.crc32(f"form-names-{lang}".encode())
    i = 0
    while len(out) < n:
        rng = np.random.default_rng([seed, code, i])
        i += 1
        text = names.full_name(rng, lang).upper()
        if split_side(text) != "test" or i > 1000 * (n + 1):
            if i > 1000 * (n + 1):
                raise RuntimeError("could not draw test-side names")
            continue
        hands = hands_covering(text, "test")
        hand = _pick_hand(rng, hands)
        out.append((render_word(text, hand, seed=rng, style="form", lang=lang), text))
    return out


def contact_sheet(samples: Sequence[HTRSample], columns: int = 2) -> Image.Image:
    """All images of ``samples`` tiled on one grey page, for a person to look at."""
    cell_w, cell_h = MAX_WIDTH + 8, HEIGHT + 6
    rows = max(1, math.ceil(len(samples) / columns))
    sheet = Image.new("L", (columns * cell_w, rows * cell_h), 128)
    for i, s in enumerate(samples):
        with Image.open(s.image_path) as img:
            sheet.paste(img, ((i % columns) * cell_w, (i // columns) * cell_h))
    return sheet


if __name__ == "__main__":  # python -m fusionbrain.tasks.htr.synthetic OUT [N] [SPLIT] [SEED]
    import sys

    out = Path(sys.argv[1])
    made = generate(sys.argv[3] if len(sys.argv) > 3 else "train",
                    int(sys.argv[2]) if len(sys.argv) > 2 else 40,
                    int(sys.argv[4]) if len(sys.argv) > 4 else 0, out)
    contact_sheet(made).save(out / "sheet.png")
    for s in made:
        print(f"{Path(s.image_path).name}\t{s.lang}\t{s.text}")
