"""Answer normalisation of the challenge's VQA evaluation (the classic VQA tool, plus Russian).

``normalize_answer(text, lang)`` applies, in order: newlines/tabs → spaces and
strip; the punctuation pass; lower-case and whitespace split; then per word
either the Russian rules (pymorphy3 lemma of the first parse, then number words
→ digits) or the English ones (number words → digits, articles dropped,
contractions restored). Quirks kept on purpose because published scores depend
on them:

- the punctuation characters are deleted (not replaced by a space) when the
  character stands next to a space anywhere in the answer, or when the answer
  contains digit-comma-digit anywhere;
- full stops are removed unless followed by a digit, at most 32 of them (the
  original passes ``re.UNICODE`` (= 32) as the ``count`` argument of ``sub``);
- the contraction table's capitalised keys (``Im``, ``Ive``...) can never match
  after lower-casing.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-",
    ">", "<", "@", "`", ",", "?", "!",
)
_DIGIT_COMMA_DIGIT = re.compile(r"\d,\d")
_FULL_STOP = re.compile(r"\.(?!\d)")
_MAX_FULL_STOPS = 32  # re.UNICODE's value, used as `count` by the original tool

NUMBERS_EN: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}
NUMBERS_RU: dict[str, str] = {
    "ноль": "0", "нисколько": "0", "никакой": "0", "один": "1", "два": "2", "три": "3",
    "четыре": "4", "пять": "5", "шесть": "6", "семь": "7", "восемь": "8", "девять": "9",
    "десять": "10",
}
ARTICLES: frozenset[str] = frozenset({"a", "an", "the"})

# The classic VQA evaluation's contraction table, grouped: key (apostrophes dropped) -> value.
# It is data that must stay exactly as published (odd entries such as
# "somebody'd" -> "somebodyd" included).
_CONTRACTION_PAIRS = """
aint ain't|arent aren't|cant can't|couldve could've|couldnt couldn't|couldn'tve couldn't've
couldnt've couldn't've|didnt didn't|doesnt doesn't|dont don't|hadnt hadn't|hadnt've hadn't've
hadn'tve hadn't've|hasnt hasn't|havent haven't|hed he'd|hed've he'd've|he'dve he'd've|hes he's
howd how'd|howll how'll|hows how's|Id've I'd've|I'dve I'd've|Im I'm|Ive I've|isnt isn't|itd it'd
itd've it'd've|it'dve it'd've|itll it'll|let's let's|maam ma'am|mightnt mightn't
mightnt've mightn't've|mightn'tve mightn't've|mightve might've|mustnt mustn't|mustve must've
neednt needn't|notve not've|oclock o'clock|oughtnt oughtn't|ow's'at 'ow's'at|'ows'at 'ow's'at
'ow'sat 'ow's'at|shant shan't|shed've she'd've|she'dve she'd've|she's she's|shouldve should've
shouldnt shouldn't|shouldnt've shouldn't've|shouldn'tve shouldn't've|somebody'd somebodyd
somebodyd've somebody'd've|somebody'dve somebody'd've|somebodyll somebody'll
somebodys somebody's|someoned someone'd|someoned've someone'd've|someone'dve someone'd've
someonell someone'll|someones someone's|somethingd something'd|somethingd've something'd've
something'dve something'd've|somethingll something'll|thats that's|thered there'd
thered've there'd've|there'dve there'd've|therere there're|theres there's|theyd they'd
theyd've they'd've|they'dve they'd've|theyll they'll|theyre they're|theyve they've|twas 'twas
wasnt wasn't|wed've we'd've|we'dve we'd've|weve we've|werent weren't|whatll what'll
whatre what're|whats what's|whatve what've|whens when's|whered where'd|wheres where's
whereve where've|whod who'd|whod've who'd've|who'dve who'd've|wholl who'll|whos who's
whove who've|whyll why'll|whyre why're|whys why's|wont won't|wouldve would've|wouldnt wouldn't
wouldnt've wouldn't've|wouldn'tve wouldn't've|yall y'all|yall'll y'all'll|y'allll y'all'll
yall'd've y'all'd've|y'alld've y'all'd've|y'all'dve y'all'd've|youd you'd|youd've you'd've
you'dve you'd've|youll you'll|youre you're|youve you've
"""
CONTRACTIONS: dict[str, str] = dict(
    pair.split(" ", 1) for pair in _CONTRACTION_PAIRS.replace("\n", "|").split("|") if pair
)

_morph: Any = None


def _analyzer() -> Any:
    """The pymorphy3 analyser, created on first use only (it loads dictionaries)."""
    global _morph
    if _morph is None:
        import pymorphy3

        _morph = pymorphy3.MorphAnalyzer()
    return _morph


@lru_cache(maxsize=200_000)
def lemma_ru(word: str) -> str:
    """Normal form of the first pymorphy3 parse (restores ё: "еж" → "ёж")."""
    return _analyzer().parse(word)[0].normal_form


def strip_punctuation(text: str) -> str:
    """The classic VQA punctuation pass (see the module docstring for its quirks)."""
    delete_all = _DIGIT_COMMA_DIGIT.search(text) is not None
    out = text
    for p in PUNCTUATION:
        # the test looks at the original text, the replacement acts on the running one
        if delete_all or (p + " ") in text or (" " + p) in text:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _FULL_STOP.sub("", out, count=_MAX_FULL_STOPS)


def normalize_words(text: str, lang: Any) -> str:
    """Lower-case, split, and apply the per-word rules of ``lang`` ("ru" or anything else)."""
    words = text.lower().split()
    if lang == "ru":
        out = [NUMBERS_RU.get(lem, lem) for lem in map(lemma_ru, words)]
    else:
        out = [w for w in (NUMBERS_EN.get(w, w) for w in words) if w not in ARTICLES]
        out = [CONTRACTIONS.get(w, w) for w in out]
    return " ".join(out)


def normalize_answer(text: str, lang: Any) -> str:
    """The full prediction normalisation of the challenge's VQA evaluation."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return normalize_words(strip_punctuation(text), lang)
