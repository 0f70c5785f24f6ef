"""Language detection for the bilingual tasks: Cyrillic means Russian, Latin means English."""

from __future__ import annotations

import re

LANGS: tuple[str, ...] = ("en", "ru")

_CYRILLIC = re.compile(r"[\u0400-\u04FF]")
_LATIN = re.compile(r"[A-Za-z]")


def detect_lang(text: str, default: str | None = "en") -> str | None:
    """Return "ru" for text with Cyrillic letters, "en" for Latin ones.

    Text without any letter (digits, punctuation) gets ``default`` — such strings occur in
    real handwriting data and must not be lost. Text whose letters are of another script
    returns None: an unknown language, which readers skip and report.
    """
    if _CYRILLIC.search(text):
        return "ru"
    if _LATIN.search(text):
        return "en"
    if any(ch.isalpha() for ch in text):
        return None
    return default


def check_lang(lang: object) -> str | None:
    """The language code if it is one the project knows, else None."""
    if isinstance(lang, str) and lang.lower() in LANGS:
        return lang.lower()
    return None
