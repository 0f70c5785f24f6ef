"""Split a scanned page into text lines: a horizontal projection profile.

Method: grayscale; ink = pixels darker than Otsu's threshold; long horizontal runs of ink
(ruled lines, table borders: wider than ``rule_frac`` of the page) are removed; rows whose
ink count exceeds a small fraction of the busiest row are "text rows"; consecutive text
rows separated by fewer than ``min_gap`` blank rows form one band; bands shorter than
``min_height`` are dropped (specks); each band is cropped to its ink columns with a margin.

Where it fails (by design of a projection profile): skewed or curved lines (more than a
few degrees: neighbouring lines touch in the profile and merge), lines whose ascenders and
descenders touch, several columns side by side (the lines of both columns are merged into
one band each), marginal notes, and photos with uneven lighting (one global threshold).
For those, upload word or line images instead.
"""

from __future__ import annotations

import numpy as np
from PIL import Image


def otsu(gray: np.ndarray) -> float:
    """Otsu's threshold of a uint8 image."""
    hist = np.bincount(gray.ravel(), minlength=256).astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 128.0
    levels = np.arange(256)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    mt = m0[-1]
    w1 = total - w0
    valid = (w0 > 0) & (w1 > 0)
    between = np.zeros(256)
    between[valid] = (mt * w0[valid] / total - m0[valid]) ** 2 / (w0[valid] * w1[valid])
    return float(np.argmax(between))


def _remove_rules(ink: np.ndarray, min_run: int) -> np.ndarray:
    """Ink with horizontal runs longer than ``min_run`` pixels removed (ruled lines)."""
    out = ink.copy()
    for y in range(ink.shape[0]):
        row = ink[y]
        if row.sum() < min_run:
            continue
        d = np.diff(np.concatenate([[0], row.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        for s, e in zip(starts, ends, strict=True):
            if e - s >= min_run:
                out[y, s:e] = False
    return out


def split_lines(page: Image.Image, *, min_gap: int | None = None, min_height: int | None = None,
                margin: int = 4, rule_frac: float = 0.3) -> list[tuple[int, int, int, int]]:
    """Line boxes ``(left, top, right, bottom)`` of a page, top to bottom."""
    gray = np.asarray(page.convert("L"), dtype=np.uint8)
    h, w = gray.shape
    ink = gray < min(otsu(gray), 200)
    if ink.mean() > 0.5:  # light ink on dark paper
        ink = ~ink
    ink = _remove_rules(ink, max(8, int(rule_frac * w)))
    rows = ink.sum(1)
    if rows.max(initial=0) == 0:
        return []
    text = rows > max(1, 0.02 * rows.max())
    min_gap = min_gap if min_gap is not None else max(2, h // 200)
    min_height = min_height if min_height is not None else max(6, h // 100)
    bands: list[list[int]] = []
    y = 0
    while y < h:
        if not text[y]:
            y += 1
            continue
        start = y
        while y < h and text[y]:
            y += 1
        if bands and start - bands[-1][1] < min_gap:
            bands[-1][1] = y
        else:
            bands.append([start, y])
    boxes = []
    for top, bottom in bands:
        if bottom - top < min_height:
            continue
        cols = np.flatnonzero(ink[top:bottom].any(0))
        if len(cols) == 0:
            continue
        boxes.append((max(0, int(cols[0]) - margin), max(0, top - margin),
                      min(w, int(cols[-1]) + 1 + margin), min(h, bottom + margin)))
    return boxes


def crop_lines(page: Image.Image, **kwargs) -> list[tuple[tuple[int, int, int, int], Image.Image]]:
    """``(box, crop)`` per line of ``page``."""
    return [(b, page.crop(b)) for b in split_lines(page, **kwargs)]
