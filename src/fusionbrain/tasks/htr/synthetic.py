"""Synthetic handwritten words (English + Russian) on copybook paper, made offline.

Words come from ``wordfreq``'s frequency lists, are drawn in handwriting-like fonts that fully
cover them (see fusionbrain.data.fonts) and are then distorted (slant, rotation, elastic warp,
stroke width, ink and paper tone, ruled or squared lines, noise, blur).

Everything is deterministic: each image has its own generator seeded from (seed, split, index),
so the same (split, n, seed) gives the same bytes and the first k images do not depend on n.

A fixed share of the vocabulary (by a hash of the lower-cased word, independent of the seed) is
test-only: the ``test`` split uses only those words, every other split never does, so a test
score measures reading unseen words rather than remembering seen ones.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from fusionbrain.data import fonts as fontlib
from fusionbrain.tasks.htr.data import HTRSample

LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
DIGITS = "0123456789"
PUNCT = ".,!?:;-'\"()%№"
CHARSET = LATIN + CYRILLIC + DIGITS + PUNCT  # every character a generated label may contain

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


def is_test_only(text: str) -> bool:
    """True when the word of ``text`` belongs to the test-only part of the vocabulary."""
    digest = hashlib.blake2b(text_key(text).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % 10000 < int(TEST_SHARE * 10000)


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


def _number(rng: np.random.Generator, lang: str) -> str:
    kind = rng.integers(6)
    if kind == 0:
        return str(int(rng.integers(0, 100)))
    if kind == 1:
        return str(int(rng.integers(100, 10000)))
    if kind == 2:
        return str(int(rng.integers(1900, 2031)))
    if kind == 3:  # decimal: Russian writes a comma
        sep = "," if lang == "ru" else "."
        return f"{int(rng.integers(0, 100))}{sep}{int(rng.integers(0, 100))}"
    if kind == 4:  # a date
        return f"{int(rng.integers(1, 32)):02d}.{int(rng.integers(1, 13)):02d}"
    if lang == "ru" and rng.random() < 0.5:
        return f"№{int(rng.integers(1, 100))}"
    return f"{int(rng.integers(1, 100))}%"


def _decorate(rng: np.random.Generator, word: str) -> str:
    r = rng.random()
    if r < 0.65:
        text = word
    elif r < 0.9:
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


def _make_text(rng: np.random.Generator, lang: str, test: bool) -> str:
    """One label: mostly a (cased, maybe punctuated) word, sometimes a number."""
    for _ in range(100):
        if rng.random() < 0.07:
            text = _number(rng, lang)
        else:
            text = _decorate(rng, _pick_word(rng, _split_vocab(lang, test)))
        # Words pass by construction; numbers are re-drawn until they fall on the split's side.
        if is_test_only(text) == test:
            return text
    raise RuntimeError("could not draw a label for the split")  # practically unreachable


# ----------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class WordSpec:
    """What one synthetic image shows, decided before drawing it."""

    id: str
    text: str
    lang: str
    font_path: str
    seed: tuple[int, ...]  # entropy for the drawing generator


def _split_code(split: str) -> int:
    return zlib.crc32(split.encode("utf-8"))


def plan(split: str, n: int, seed: int) -> list[WordSpec]:
    """Labels, languages and fonts of the ``n`` images of ``split`` (no drawing).

    Languages alternate en/ru. Any split other than "test" draws from the shared vocabulary.
    """
    if n < 0 or seed < 0:
        raise ValueError("n and seed must be non-negative")
    test = split == "test"
    specs = []
    for i in range(n):
        lang = ("en", "ru")[i % 2]
        rng = np.random.default_rng([seed, _split_code(split), i, 0])
        for _ in range(100):
            text = _make_text(rng, lang, test)
            candidates = fontlib.fonts_covering(text)
            if candidates:
                break
        else:
            raise RuntimeError(f"no font covers the labels of {lang!r}; are fonts installed?")
        font = candidates[int(rng.integers(len(candidates)))]
        specs.append(WordSpec(f"{split}_{i}", text, lang, font.path,
                              (seed, _split_code(split), i, 1)))
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


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """Smooth random field in about [-1, 1]: coarse normal noise upsampled bicubically."""
    gh, gw = max(2, math.ceil(h / cell) + 1), max(2, math.ceil(w / cell) + 1)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((w, h), Image.BICUBIC))


def _draw_mask(text: str, font_path: str, rng: np.random.Generator,
               augment: bool) -> tuple[np.ndarray, float, float]:
    """Ink coverage (0..1, float32) of the word, its baseline row and the cap height."""
    base_size, stroke_ratio = _font_style(font_path)
    size = int(round(base_size * (rng.uniform(0.9, 1.1) if augment else 1.0)))
    font = _pil_font(font_path, size)
    ascent, descent = font.getmetrics()
    margin = size
    # Thicker strokes only for light fonts: heavy ones (ratio >= 0.1) clog their counters.
    stroke = int(augment and stroke_ratio < 0.1 and rng.random() < 0.35)
    # Capitals of handwriting fonts often touch each other: space them a little.
    caps = sum(c.isupper() for c in text) >= 2
    jitter = augment and (caps or rng.random() < 0.5)
    # Letter positions first (x offset, baseline offset), so the canvas fits them exactly.
    places: list[tuple[str, float, float]] = []
    if jitter:  # per-letter baseline and spacing wobble, as a hand does
        x = 0.0
        spacing = (rng.uniform(-0.03, 0.08) + 0.06 * caps) * size
        for ch in text:
            places.append((ch, x, float(rng.normal(0, 0.03 * size))))
            x += font.getlength(ch) + spacing + rng.normal(0, 0.03 * size)
        x_end = max(x, max(p[1] for p in places) + font.getlength(text[-1]))
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

    # Slant (shear about the baseline) and a small rotation in one affine map.
    shear = rng.uniform(-0.25, 0.4)
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
    amp = rng.uniform(0.8, 2.2) * size / RENDER_PX
    cell = rng.uniform(10, 20) * size / RENDER_PX
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

    # Thinner strokes: raising coverage to a power > 1 erodes the anti-aliased edge.
    if stroke == 0 and rng.random() < (0.6 if stroke_ratio > 0.11 else 0.25):
        mask = mask ** rng.uniform(1.3, 2.0)
    return np.clip(mask, 0, 1).astype(np.float32), float(baseline), cap


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


def render_word(text: str, font: fontlib.FontInfo | str | None = None, *,
                seed: int | Sequence[int] | np.random.Generator = 0,
                augment: bool = True) -> Image.Image:
    """Draw ``text`` as a grayscale ('L') image of height 64 and width up to 512.

    ``font``: a FontInfo or font file path; None picks one of the fonts covering the text.
    With ``augment=False`` the word is drawn plainly: black ink on white, no lines, no noise.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if font is None:
        candidates = fontlib.fonts_covering(text)
        if not candidates:
            raise ValueError(f"no available font covers {text!r}")
        font = candidates[int(rng.integers(len(candidates)))]
    font_path = font.path if isinstance(font, fontlib.FontInfo) else str(font)
    if not text.strip():
        raise ValueError("cannot draw an empty text")

    mask, baseline, cap = _draw_mask(text, font_path, rng, augment)
    stroke_ratio = _font_style(font_path)[1]

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

    if augment:
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
    return Image.fromarray(np.clip(np.round(out), 0, 255).astype(np.uint8), "L")


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary name so that no half-written PNG is ever left behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _render_spec(spec: WordSpec) -> bytes:
    return _png_bytes(render_word(spec.text, spec.font_path, seed=spec.seed))


def generate(split: str, n: int, seed: int, out_dir: Path, *, workers: int = 1) -> list[HTRSample]:
    """Write ``n`` word images of ``split`` to ``out_dir/images/<split>_<i>.png``.

    Returns the samples (absolute image paths, exact labels, lang "en"/"ru" alternating).
    The bytes depend only on (split, n, seed) and the fonts installed, not on ``workers``.
    """
    specs = plan(split, n, seed)
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
