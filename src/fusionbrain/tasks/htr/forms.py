"""What a word cut from a scanned form looks like around the handwriting.

Real crops are not clean copybook lines: the field's printed label sits beside the word (often
cut by the crop), the form's underline or box crosses the descenders, character-cell ticks run
through the letters, the crop margins are uneven, the scan adds paper texture, blur, low
contrast, a slight rotation and JPEG blocks. :func:`compose` puts an ink mask (the handwriting,
made by synthetic.py) on such a piece of form, in colour (ballpoint ink, coloured form lines),
and returns the grayscale crop a scanner pipeline would give.
"""

from __future__ import annotations

import functools
import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Printed field labels, cut into the crop beside the handwriting.
LABELS = {
    "en": ("Surname", "Last name", "First name", "Name", "NAME", "SURNAME", "Given names",
           "Date", "Date of birth", "DOB", "Signature", "Amount", "Total", "No.", "City",
           "Address", "Place of birth", "Occupation", "Nationality", "Sex", "Tel.", "Ref."),
    "ru": ("Фамилия", "Имя", "Отчество", "ФАМИЛИЯ", "ИМЯ", "Дата", "Дата рождения", "Подпись",
           "Сумма", "Итого", "Адрес", "Город", "Место рождения", "Гражданство", "Пол", "Тел.",
           "Паспорт", "Серия", "Номер", "№"),
}
# Ballpoint / gel ink (RGB): blue, dark blue, black, violet, and a worn blue.
INKS = ((25, 45, 150), (20, 30, 95), (25, 25, 30), (70, 40, 120), (60, 80, 170))
# Form line colours: black print, grey, and the dropout colours of OCR forms.
LINE_COLOURS = ((30, 30, 30), (110, 110, 110), (200, 60, 60), (90, 120, 200), (80, 150, 110),
                (160, 160, 160))

_PRINT_FONTS = ("/usr/share/fonts/opentype/urw-base35/NimbusSans-Regular.otf",
                "/usr/share/fonts/opentype/urw-base35/NimbusRoman-Regular.otf",
                "/usr/share/fonts/opentype/urw-base35/NimbusSansNarrow-Regular.otf")


@functools.lru_cache(maxsize=1)
def print_fonts() -> tuple[str, ...]:
    """Printed-label fonts: URW Nimbus (fonts-urw-base35) where installed, else DejaVu."""
    import os

    found = tuple(p for p in _PRINT_FONTS if os.path.isfile(p))
    if found:
        return found
    from fusionbrain.data.fonts import fallback_fonts

    return tuple(f.path for f in fallback_fonts() if "Oblique" not in f.path) or tuple(
        f.path for f in fallback_fonts())


@functools.lru_cache(maxsize=64)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


def _smooth(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    gh, gw = max(2, math.ceil(h / cell) + 1), max(2, math.ceil(w / cell) + 1)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, "F").resize((w, h), Image.BICUBIC))


def _label(rng: np.random.Generator, lang: str, height: int) -> np.ndarray | None:
    """Coverage mask of a printed label (height ``height``), or None."""
    fonts = print_fonts()
    if not fonts:
        return None
    text = LABELS[lang][int(rng.integers(len(LABELS[lang])))]
    if rng.random() < 0.5:
        text += ":"
    size = max(7, int(height * rng.uniform(0.35, 0.55)))
    font = _font(fonts[int(rng.integers(len(fonts)))], size)
    w = int(font.getlength(text)) + 4
    img = Image.new("L", (w, height), 0)
    y = int(rng.uniform(0.45, 0.9) * height) if rng.random() < 0.7 else int(0.4 * height)
    ImageDraw.Draw(img).text((1, y), text, font=font, fill=255, anchor="ls")
    return np.asarray(img, dtype=np.float32) / 255.0


def compose(alpha: np.ndarray, base_y: float, cap: float, rng: np.random.Generator,
            lang: str, max_width: int) -> Image.Image:
    """The handwriting coverage ``alpha`` (H x W, 0..1) on a piece of scanned form.

    ``base_y`` is the baseline row and ``cap`` the cap height in pixels, so form lines fall
    where a form's would: under the letters, through the descenders, above the capitals.
    """
    h, w = alpha.shape
    # A label on the left (sometimes cut by the crop), then the word after a gap.
    label = _label(rng, lang, h) if rng.random() < 0.45 else None
    left = 0
    if label is not None:
        cut = int(rng.uniform(0, 0.7) * label.shape[1]) if rng.random() < 0.5 else 0
        label = label[:, cut:]
        gap = int(rng.uniform(0.2, 1.0) * cap)
        if label.shape[1] + gap + w > max_width:
            label = None
        else:
            left = label.shape[1] + gap
    width = left + w
    ink_mask = np.zeros((h, width), np.float32)
    ink_mask[:, left:] = alpha
    print_mask = np.zeros((h, width), np.float32)
    if label is not None:
        print_mask[:, : label.shape[1]] = label

    # Form lines: an underline near the baseline, a box top above the capitals, cell ticks.
    lines = Image.new("L", (width, h), 0)
    d = ImageDraw.Draw(lines)
    thick = 1 + int(rng.random() < 0.35)
    if rng.random() < 0.7:
        y = base_y + rng.uniform(-0.15, 0.45) * cap
        tilt = rng.uniform(-0.012, 0.012) * width
        if rng.random() < 0.15:  # dotted
            for x in range(0, width, 4):
                d.line([(x, y + tilt * x / width), (x + 1, y + tilt * x / width)], fill=255,
                       width=thick)
        else:
            d.line([(0, y), (width, y + tilt)], fill=255, width=thick)
    boxed = rng.random() < 0.3
    if boxed:
        y_top = base_y - rng.uniform(1.2, 1.6) * cap
        d.line([(0, y_top), (width, y_top)], fill=255, width=thick)
        if rng.random() < 0.5:
            x = left - int(rng.uniform(2, 8))
            d.line([(x, 0), (x, h)], fill=255, width=thick)
    if rng.random() < 0.12:  # character cells (comb)
        step = rng.uniform(0.8, 1.3) * cap
        x = left + rng.uniform(0, step)
        y0 = base_y - rng.uniform(0.2, 0.6) * cap
        while x < width:
            d.line([(x, y0), (x, h)], fill=255, width=1)
            x += step
    line_mask = np.asarray(lines, dtype=np.float32) / 255.0
    # Ink from the neighbouring field, cut by the crop's top or bottom edge.
    if rng.random() < 0.15:
        stray = Image.new("L", (width, h), 0)
        sd = ImageDraw.Draw(stray)
        y = 1 if rng.random() < 0.5 else h - 2
        x = rng.uniform(0, width * 0.8)
        pts = [(x + k * rng.uniform(3, 9), y + rng.normal(0, 1.5)) for k in range(6)]
        sd.line(pts, fill=255, width=2)
        ink_mask = np.maximum(ink_mask, np.asarray(stray, dtype=np.float32) / 255.0)

    # Paper (warm white, uneven), then print, form lines and ink, each in its colour.
    tone = rng.uniform(205, 250)
    paper = np.empty((h, width, 3), np.float32)
    tint = rng.uniform(-6, 6, size=3)
    shade = _smooth(rng, h, width, 40) * rng.uniform(0, 10)
    grain = _smooth(rng, h, width, 2.5) * rng.uniform(0, 5)
    for c in range(3):
        paper[..., c] = tone + tint[c] + shade + grain
    line_col = np.asarray(LINE_COLOURS[int(rng.integers(len(LINE_COLOURS)))], np.float32)
    ink_col = np.asarray(INKS[int(rng.integers(len(INKS)))], np.float32) + rng.normal(0, 8, 3)
    pressure = 1 - rng.uniform(0, 0.3) * (0.5 + 0.5 * _smooth(rng, h, width, 20))
    out = paper
    for mask, col in ((print_mask * rng.uniform(0.7, 1.0), np.full(3, rng.uniform(10, 70))),
                      (line_mask * rng.uniform(0.5, 1.0), line_col),
                      (np.clip(ink_mask * pressure, 0, 1), ink_col)):
        m = mask[..., None]
        # Ink multiplies (a ballpoint over a printed line stays dark), like real layers do.
        out = out * (1 - m) + np.minimum(out, col) * m
    img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB").convert("L")
    return img


def scan(img: Image.Image, rng: np.random.Generator, strength: float = 1.0) -> Image.Image:
    """Scanner artefacts on a grayscale crop: rotation, blur, low contrast, noise, JPEG."""
    from scipy import ndimage

    h, w = img.height, img.width
    a = np.asarray(img, dtype=np.float32)
    bg = float(np.percentile(a, 90))
    if rng.random() < 0.35 * strength:  # slight rotation, filled with paper
        img = Image.fromarray(a.astype(np.uint8), "L").rotate(
            rng.uniform(-2.0, 2.0), resample=Image.BILINEAR, fillcolor=int(bg))
        a = np.asarray(img, dtype=np.float32)
    if rng.random() < 0.4 * strength:
        a = ndimage.gaussian_filter(a, rng.uniform(0.3, 0.9))
    if rng.random() < 0.2 * strength:  # low contrast: a faint pen, a grey scan
        k = rng.uniform(0.35, 0.7)
        a = bg - (bg - a) * k
    if rng.random() < 0.15 * strength:
        f = rng.uniform(0.5, 0.8)
        low = Image.fromarray(a, "F").resize((max(1, round(w * f)), max(1, round(h * f))),
                                             Image.BILINEAR)
        a = np.asarray(low.resize((w, h), Image.BILINEAR))
    a = a + rng.normal(0, rng.uniform(0, 5), a.shape)
    out = Image.fromarray(np.clip(np.round(a), 0, 255).astype(np.uint8), "L")
    if rng.random() < 0.35 * strength:  # JPEG blocks and ringing
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=int(rng.integers(20, 70)))
        buf.seek(0)
        out = Image.open(buf).convert("L")
    return out
