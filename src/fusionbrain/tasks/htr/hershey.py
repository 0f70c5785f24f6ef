"""Stroke-drawn handwriting from the Hershey vector fonts: text as pen trajectories.

The Hershey fonts (Debian ``hershey-fonts-data``, /usr/share/hershey-fonts/*.jhf; "The Hershey
Fonts were originally created by Dr. A. V. Hershey while working at the U. S. National Bureau of
Standards"; free for any use with that acknowledgement) describe each glyph as pen strokes, so a
word can be *written*: every stroke is resampled, bent by the writer's slant, width and tremor,
the letters drift off the baseline, and the pen draws it with a width that changes along the
stroke (pressure). That gives shapes no outline font has: the same writer never draws a letter
twice the same way.

Faces used: ``futural`` / ``rowmans`` (single-stroke block letters, as forms are filled in),
``scripts`` / ``cursive`` (single-stroke joined-up script), ``futuram`` (a double stroke, a
heavier pen), and the Cyrillic ``cyrillic.jhf``, whose serif, double-stroked letters are thinned
here into single-stroke block letters (near-duplicate strokes and short serifs dropped).

A :class:`Writer` is one hand: the faces and the habits (slant, width, spacing, drift, tremor,
pen). Writers are a fixed, named list; synthetic.py holds some out for valid/test.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

HERSHEY_DIRS_ENV = "FUSIONBRAIN_HERSHEY_DIR"
DEFAULT_DIRS = ("/usr/share/hershey-fonts",)

# Hershey units: capitals run from y=-12 (top) to y=9 (baseline) in the roman/script faces.
CAP_TOP, BASELINE = -12.0, 9.0
CAP_UNITS = BASELINE - CAP_TOP

# cyrillic.jhf stores its 66 letters in ASCII slots: uppercase at 'A'..'`' and '$', lowercase
# at 'a'..'\x7f' and '%', '&' (read off a rendering of every glyph of the file).
_CYR_UPPER = {"А": "A", "Б": "B", "Э": "C", "Д": "D", "Й": "E", "Ф": "F", "Г": "G", "Ж": "H",
              "И": "I", "Ч": "J", "К": "K", "Л": "L", "М": "M", "Н": "N", "О": "O", "П": "P",
              "Ш": "Q", "Р": "R", "С": "S", "Т": "T", "Ю": "U", "В": "V", "Щ": "W", "Х": "X",
              "У": "Y", "З": "Z", "Е": "[", "Ъ": "]", "Я": "^", "Ь": "_", "Ц": "`", "Ы": "$"}
_CYR_LOWER = {"а": "a", "б": "b", "э": "c", "д": "d", "й": "e", "ф": "f", "г": "g", "ж": "h",
              "и": "i", "ч": "j", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p",
              "ш": "q", "р": "r", "с": "s", "т": "t", "ю": "u", "в": "v", "щ": "w", "х": "x",
              "у": "y", "з": "z", "е": "{", "ъ": "|", "я": "}", "ь": "~", "ц": "%", "ы": "&"}
_ASCII = "".join(chr(c) for c in range(32, 127))

Stroke = list[tuple[float, float]]


@dataclass(frozen=True)
class Glyph:
    left: float
    right: float
    strokes: tuple[tuple[tuple[float, float], ...], ...]


def hershey_dir() -> Path | None:
    """The folder holding the .jhf files, or None when the fonts are not installed."""
    for d in [os.environ.get(HERSHEY_DIRS_ENV, ""), *DEFAULT_DIRS]:
        if d and (Path(d) / "futural.jhf").is_file():
            return Path(d)
    return None


def parse_jhf(path: str | os.PathLike[str]) -> list[Glyph]:
    """The glyphs of a .jhf file in file order (the 96 ASCII slots 32..127 for these faces)."""
    glyphs = []
    text = Path(path).read_text("latin-1")
    # A glyph record may wrap over several lines: join until the declared vertex count is read.
    buf = ""
    for line in text.splitlines():
        buf += line
        if len(buf) < 8:
            continue
        n = int(buf[5:8])
        if len(buf) - 8 < 2 * n:
            continue
        body = buf[8:8 + 2 * n]
        buf = ""
        left, right = ord(body[0]) - 82, ord(body[1]) - 82
        strokes: list[tuple[tuple[float, float], ...]] = []
        cur: list[tuple[float, float]] = []
        for i in range(1, n):
            a, b = body[2 * i], body[2 * i + 1]
            if a == " " and b == "R":
                if cur:
                    strokes.append(tuple(cur))
                cur = []
            else:
                cur.append((float(ord(a) - 82), float(ord(b) - 82)))
        if cur:
            strokes.append(tuple(cur))
        glyphs.append(Glyph(float(left), float(right), tuple(strokes)))
    return glyphs


def _seg_dist(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of points ``p`` (N, 2) to the segment a-b."""
    ab = b - a
    t = np.clip(((p - a) @ ab) / max(1e-9, float(ab @ ab)), 0, 1)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def _near(stroke: np.ndarray, other: np.ndarray, tol: float) -> bool:
    """True when every point of ``stroke`` lies within ``tol`` of polyline ``other``."""
    if len(other) == 1:
        return bool(np.all(np.linalg.norm(stroke - other[0], axis=1) <= tol))
    d = np.min([_seg_dist(stroke, other[i], other[i + 1]) for i in range(len(other) - 1)], axis=0)
    return bool(np.all(d <= tol))


def _resample(stroke: np.ndarray, step: float) -> np.ndarray:
    if len(stroke) < 2:
        return stroke
    seg = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return stroke[:1]
    n = max(2, int(math.ceil(s[-1] / step)) + 1)
    t = np.linspace(0, s[-1], n)
    return np.stack([np.interp(t, s, stroke[:, 0]), np.interp(t, s, stroke[:, 1])], axis=1)


def _caps_a_stem(seg: np.ndarray, arrs: list[np.ndarray], i: int) -> bool:
    """True when another stroke ends on the flat segment ``seg`` (a serif foot or head; a
    breve or a bar floating above the letter touches no stroke's end)."""
    x0, x1 = sorted((float(seg[0, 0]), float(seg[1, 0])))
    y = float(seg[0, 1])
    for j, other in enumerate(arrs):
        if j == i:
            continue
        for px, py in (other[0], other[-1]):
            if x0 - 0.5 <= px <= x1 + 0.5 and abs(py - y) <= 1.0:
                return True
    return False


def thin_glyph(g: Glyph) -> Glyph:
    """A double-stroked serif glyph as single-stroke block letters.

    Drops short straight serifs at the top/bottom line and strokes that only retrace (within
    1.6 units) a longer stroke, as the complex Hershey faces draw a thick stem as two lines.
    """
    if not g.strokes:
        return g
    ys = [y for s in g.strokes for _, y in s]
    top, bottom = min(ys), max(ys)
    arrs = [np.asarray(s, dtype=np.float64) for s in g.strokes]
    lengths = [float(np.linalg.norm(np.diff(a, axis=0), axis=1).sum()) if len(a) > 1 else 0.0
               for a in arrs]
    keep: list[int] = []
    for i in sorted(range(len(arrs)), key=lambda k: -lengths[k]):
        a = arrs[i]
        flat = len(a) == 2 and abs(a[0, 1] - a[1, 1]) < 0.5
        at_edge = flat and (abs(a[0, 1] - top) < 1.5 or abs(a[0, 1] - bottom) < 1.5)
        if at_edge and lengths[i] <= 9 and _caps_a_stem(a, arrs, i):
            continue  # serif
        dense = _resample(a, 0.5)
        if any(_near(dense, arrs[j], 1.6) for j in keep):
            continue  # retrace of a kept stroke
        keep.append(i)
    keep.sort()
    strokes = tuple(g.strokes[i] for i in keep)
    # The serif face's advances are wide: fit them to the thinned ink with a simplex bearing.
    xs = [x for s in strokes for x, _ in s]
    return Glyph(min(xs) - 2.0, max(xs) + 2.0, strokes)


@dataclass(frozen=True)
class Face:
    """Character -> glyph for one stroke style (may merge a Latin and a Cyrillic file)."""

    name: str
    glyphs: dict[str, Glyph]

    @property
    def chars(self) -> frozenset[str]:
        return frozenset(c for c, g in self.glyphs.items() if g.strokes or c == " ")


def _height(g: Glyph) -> float:
    ys = [y for s in g.strokes for _, y in s]
    return max(ys) - min(ys) if ys else 0.0


def _scaled(g: Glyph, k: float) -> Glyph:
    """``g`` scaled by ``k`` about its left end of the baseline (no-op for k >= 0.95)."""
    if k >= 0.95:
        return g
    strokes = tuple(tuple((g.left + (x - g.left) * k, BASELINE + (y - BASELINE) * k)
                          for x, y in s) for s in g.strokes)
    return Glyph(g.left, g.left + (g.right - g.left) * k, strokes)


def _diaeresis(g: Glyph, upper: bool) -> Glyph:
    """ё / Ё: е / Е with two dots above (the Hershey Cyrillic has no ё)."""
    xs = [x for s in g.strokes for x, _ in s]
    ys = [y for s in g.strokes for _, y in s]
    cx, y = (min(xs) + max(xs)) / 2, min(ys) - (3.0 if upper else 3.5)
    dots = tuple(((cx + dx - 0.5, y), (cx + dx + 0.5, y)) for dx in (-2.5, 2.5))
    return Glyph(g.left, g.right, g.strokes + dots)


@functools.lru_cache(maxsize=16)
def load_face(latin: str, cyrillic: bool) -> Face | None:
    """The face ``latin`` (a .jhf name) plus, with ``cyrillic``, the thinned Cyrillic letters."""
    d = hershey_dir()
    if d is None or not (d / f"{latin}.jhf").is_file():
        return None
    glyphs = dict(zip(_ASCII, parse_jhf(d / f"{latin}.jhf"), strict=False))
    glyphs.pop("\x7f", None)
    if cyrillic:
        if not (d / "cyrillic.jhf").is_file():
            return None
        cyr = dict(zip(_ASCII, parse_jhf(d / "cyrillic.jhf"), strict=False))
        for table in (_CYR_UPPER, _CYR_LOWER):
            for ch, slot in table.items():
                if slot in cyr:
                    glyphs[ch] = thin_glyph(cyr[slot])
        # The file's э is as tall as Э: bring it down to the x-height of the other lowercase.
        glyphs["э"] = _scaled(glyphs["э"], _height(glyphs["о"]) / max(1.0, _height(glyphs["э"])))
        # The file's Й is a plain И: give it the breve of its й, raised to the capitals.
        lo = glyphs["й"]
        breve = tuple(st for st in lo.strokes if max(y for _, y in st) < CAP_TOP + 5)
        up = CAP_TOP - min(y for st in glyphs["и"].strokes for _, y in st)
        big = glyphs["И"]
        glyphs["Й"] = Glyph(big.left, big.right, big.strokes + tuple(
            tuple((x, y + up) for x, y in st) for st in breve))
        glyphs["Ё"] = _diaeresis(glyphs["Е"], True)
        glyphs["ё"] = _diaeresis(glyphs["е"], False)
        glyphs["№"] = _numero(glyphs)
    return Face(f"{latin}{'+cyr' if cyrillic else ''}", glyphs)


def _numero(glyphs: dict[str, Glyph]) -> Glyph:
    """№: an N with a small underlined o beside it."""
    n, o = glyphs["N"], glyphs["o"]
    shift = n.right - o.left * 0.6
    small = tuple(tuple((x * 0.6 + shift, y * 0.6 - 1.5) for x, y in s) for s in o.strokes)
    bar = (((o.left * 0.6 + shift - 2, 5.0), (o.right * 0.6 + shift, 5.0)),)
    return Glyph(n.left, n.right + (o.right - o.left) * 0.6 + 2, n.strokes + small + bar)


@dataclass(frozen=True)
class Writer:
    """One stroke-drawn hand: its face and its habits (each drawing varies around them)."""

    name: str
    face: str  # Latin .jhf name; Cyrillic letters come from the thinned cyrillic.jhf
    slant: float  # shear, positive leans right
    width: float  # horizontal scale of the letters
    spacing: float  # extra space between letters, in Hershey units
    drift: float  # baseline wander, in cap heights
    tremor: float  # smooth wobble of the pen path, in Hershey units
    pen: float  # pen width as a share of the cap height
    pressure: float  # how much the pen width varies along a stroke (0..1)
    size_jitter: float  # per-letter size variation
    block: bool = False  # block letters (as forms are filled in) rather than joined-up script

    def face_obj(self) -> Face | None:
        return load_face(self.face, True) or load_face(self.face, False)


# The stroke hands. Held-out ones (synthetic.HELD_OUT_HANDS) are drawn only in valid/test.
WRITERS: tuple[Writer, ...] = (
    Writer("block-neat", "futural", 0.05, 1.00, 2.0, 0.02, 0.25, 0.07, 0.2, 0.04, True),
    Writer("block-wide", "futural", -0.05, 1.25, 4.0, 0.03, 0.35, 0.09, 0.3, 0.06, True),
    Writer("block-narrow", "futural", 0.20, 0.80, 1.0, 0.04, 0.45, 0.06, 0.4, 0.07, True),
    Writer("block-hasty", "futural", 0.30, 0.95, 0.5, 0.06, 0.80, 0.08, 0.5, 0.10, True),
    Writer("roman-upright", "rowmans", 0.00, 1.00, 2.5, 0.03, 0.30, 0.08, 0.3, 0.05, True),
    Writer("roman-lean", "rowmans", 0.25, 0.90, 1.5, 0.05, 0.50, 0.10, 0.4, 0.07, True),
    Writer("roman-back", "rowmans", -0.18, 1.05, 3.0, 0.04, 0.55, 0.07, 0.3, 0.08, True),
    Writer("marker", "futuram", 0.10, 1.00, 3.0, 0.03, 0.40, 0.12, 0.2, 0.05, True),
    Writer("script-school", "scripts", 0.10, 1.00, 0.0, 0.03, 0.30, 0.07, 0.5, 0.05),
    Writer("script-fast", "scripts", 0.35, 1.15, -1.0, 0.06, 0.70, 0.06, 0.6, 0.08),
    Writer("cursive-round", "cursive", 0.05, 1.10, 0.5, 0.04, 0.40, 0.08, 0.4, 0.06),
    Writer("cursive-tight", "cursive", 0.25, 0.85, -0.5, 0.05, 0.60, 0.07, 0.5, 0.07),
)


def writer(name: str) -> Writer:
    for w in WRITERS:
        if w.name == name:
            return w
    raise ValueError(f"unknown Hershey writer {name!r}")


def available_writers() -> list[Writer]:
    """The writers whose faces are installed (none without hershey-fonts-data)."""
    return [w for w in WRITERS if w.face_obj() is not None]


def writer_chars(w: Writer) -> frozenset[str]:
    face = w.face_obj()
    return face.chars if face is not None else frozenset()


def _smooth(rng: np.random.Generator, n: int, cell: float) -> np.ndarray:
    """A smooth random 1-D signal of length ``n`` in about [-1, 1]."""
    k = max(2, int(math.ceil(n / max(1.0, cell))) + 2)
    knots = rng.standard_normal(k)
    return np.interp(np.linspace(0, k - 1, n), np.arange(k), knots)


def draw(text: str, w: Writer, rng: np.random.Generator, cap_px: float,
         augment: bool = True) -> tuple[np.ndarray, float, float]:
    """Ink coverage (0..1, float32) of ``text`` written by ``w``, its baseline row and cap height.

    The same contract as synthetic._draw_mask, so both go through the same page and scan steps.
    """
    face = w.face_obj()
    if face is None:
        raise ValueError("the Hershey fonts are not installed (apt-get install hershey-fonts-data)")
    missing = [c for c in text if c not in face.glyphs]
    if missing:
        raise ValueError(f"writer {w.name} cannot draw {missing[0]!r}")
    j = 1.0 if augment else 0.0
    slant = w.slant + j * rng.normal(0, 0.05)
    width = w.width * (1 + j * rng.normal(0, 0.05))
    spacing = w.spacing + j * rng.normal(0, 0.6)
    tremor = w.tremor * j * rng.uniform(0.6, 1.4)
    # Place letters: x advance per glyph with the writer's width and spacing.
    strokes: list[np.ndarray] = []
    x = 0.0
    n_chars = max(1, len(text))
    drift = _smooth(rng, n_chars + 2, 3.0) * w.drift * CAP_UNITS * j
    for i, ch in enumerate(text):
        g = face.glyphs[ch]
        s = 1 + j * rng.normal(0, w.size_jitter)
        dy = drift[i] + j * rng.normal(0, 0.25)
        rot = j * rng.normal(0, 0.04)
        cr, sr = math.cos(rot), math.sin(rot)
        for st in g.strokes:
            a = np.asarray(st, dtype=np.float64)
            gx = (a[:, 0] - g.left) * s
            gy = (a[:, 1] - BASELINE) * s
            rx, ry = cr * gx - sr * gy, sr * gx + cr * gy
            strokes.append(np.stack([x + rx * width, ry + BASELINE + dy], axis=1))
        x += (g.right - g.left) * s * width + spacing
    scale = cap_px / CAP_UNITS
    pen = max(1.0, w.pen * cap_px * (1 + j * rng.normal(0, 0.15)))
    margin = int(math.ceil(cap_px * 0.9 + pen * 2))
    ys = [p[1] for a in strokes for p in a] or [BASELINE]
    y_min = min(min(ys), CAP_TOP - 4)
    y_max = max(max(ys), BASELINE + 4)
    x_max = max([p[0] for a in strokes for p in a] + [x])
    # Slanting moves the top right: account for it in the canvas width.
    width_px = int(math.ceil((x_max + abs(slant) * (y_max - y_min)) * scale)) + 2 * margin
    height_px = int(math.ceil((y_max - y_min) * scale)) + 2 * margin
    ss = 3  # supersampling: smooth edges and fractional pen widths
    img = Image.new("L", (width_px * ss, height_px * ss), 0)
    d = ImageDraw.Draw(img)
    # Shear about the baseline: with a right lean the descenders move left, else the tops do.
    lean = slant * (y_max - BASELINE) if slant > 0 else -slant * (BASELINE - y_min)
    x0 = margin + lean * scale
    base_row = margin + (BASELINE - y_min) * scale
    for a in strokes:
        pts = _resample(a, 1.4)
        if tremor > 0 and len(pts) > 2:
            pts = pts + np.stack([_smooth(rng, len(pts), 3), _smooth(rng, len(pts), 3)], 1) * tremor
        px = x0 + pts[:, 0] * scale - slant * (pts[:, 1] - BASELINE) * scale
        py = base_row + (pts[:, 1] - BASELINE) * scale
        press = 1 + j * w.pressure * 0.5 * _smooth(rng, len(pts), 4)
        if len(pts) == 1:
            r = pen * ss / 2
            d.ellipse([px[0] * ss - r, py[0] * ss - r, px[0] * ss + r, py[0] * ss + r], fill=255)
            continue
        # Chunks of a few points, each with its own width: the pen's pressure changes.
        for k in range(0, len(pts) - 1, 5):
            sl = slice(k, min(len(pts), k + 6))
            wpx = max(1, int(round(pen * ss * float(press[k]))))
            seg = [(float(u) * ss, float(v) * ss) for u, v in zip(px[sl], py[sl], strict=True)]
            d.line(seg, fill=255, width=wpx, joint="curve")
            r = wpx / 2
            for u, v in (seg[0], seg[-1]):  # round pen ends, no gaps between chunks
                d.ellipse([u - r, v - r, u + r, v + r], fill=255)
    mask = np.asarray(img.resize((width_px, height_px), Image.BOX), dtype=np.float32) / 255.0
    return mask, float(base_row), float(cap_px)
