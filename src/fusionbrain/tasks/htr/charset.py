"""The HTR character set: Latin + Cyrillic (incl. ё Ё й щ ъ) + digits + punctuation + space.

Index 0 is the CTC blank; characters are 1..len(CHARSET).
"""

from __future__ import annotations

import string
from typing import Any

LATIN = string.ascii_lowercase + string.ascii_uppercase
CYRILLIC = ("абвгдеёжзийклмнопрстуфхцчшщъыьэюя"
            "АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ")
DIGITS = string.digits
PUNCTUATION = " !\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~«»—–№…"

CHARSET: str = LATIN + CYRILLIC + DIGITS + PUNCTUATION
BLANK = 0
_INDEX = {c: i + 1 for i, c in enumerate(CHARSET)}
NUM_CLASSES = len(CHARSET) + 1  # + blank

assert len(set(CHARSET)) == len(CHARSET), "duplicate characters in the charset"


def encode(text: str) -> list[int]:
    """Text -> class ids; characters outside the charset are dropped (they cannot be read)."""
    return [_INDEX[c] for c in text if c in _INDEX]


def decode(ids: list[int]) -> str:
    """Class ids (no blanks) -> text."""
    return "".join(CHARSET[i - 1] for i in ids if 0 < i <= len(CHARSET))


def script_masks() -> dict[str, list[bool]]:
    """Class masks of the two scripts a label is written in: blank, digits and punctuation
    are in both; Latin letters only in "latin", Cyrillic only in "cyrillic"."""
    shared = set(DIGITS + PUNCTUATION)
    out = {}
    for name, letters in (("latin", set(LATIN)), ("cyrillic", set(CYRILLIC))):
        out[name] = [True] + [c in letters or c in shared for c in CHARSET]
    return out


def script_of(text: str, masks: Any) -> int | None:
    """The row of ``masks`` (:func:`script_masks`' order) whose script ``text``'s letters are
    in; None for no letters (digits, punctuation: either) or a mix."""
    ids = encode(text)
    fits = [k for k in range(len(masks)) if all(bool(masks[k][i]) for i in ids)]
    return fits[0] if len(fits) == 1 else None


def ctc_greedy(ids: list[int]) -> str:
    """Greedy CTC: collapse repeats, drop blanks."""
    out: list[int] = []
    prev = BLANK
    for i in ids:
        if i != prev and i != BLANK:
            out.append(i)
        prev = i
    return decode(out)
