"""Find handwriting-like fonts on this machine and tell which texts each one really covers.

Handwriting fonts come from Debian packages (``fonts-sjfonts``, ``fonts-urw-base35``,
``fonts-nanum-extra``, ``fonts-dkg-handwriting``, ``fonts-bwht``, ``fonts-kiloji``... the list
is HANDWRITING_FONTS below; all installed by scripts/setup.sh). Where none is installed, the DejaVu
fonts that matplotlib ships are used instead, so synthetic data can be made everywhere.

Coverage is checked per character: the font's cmap must map it AND the glyph must draw ink
(some fonts map characters to empty or placeholder glyphs). Fonts whose glyphs for a script
are not handwriting (Nanum Pen's Cyrillic is a plain sans) are restricted by hand below.
"""

from __future__ import annotations

import functools
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Folders searched for installed fonts (an env var adds more, e.g. for tests or other OSes).
FONT_DIRS_ENV = "FUSIONBRAIN_FONT_DIRS"
DEFAULT_FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts",
                     "~/.local/share/fonts")

# file name -> (nice name, scripts to refuse even if the cmap has them). The refused scripts
# are drawn in another, non-handwriting design inside these fonts, which would teach a model
# that e.g. Cyrillic is always printed.
HANDWRITING_FONTS: dict[str, tuple[str, frozenset[str]]] = {
    "SteveHand.ttf": ("SteveHand", frozenset()),
    "Delphine.ttf": ("Delphine", frozenset()),  # sjfonts; has no Cyrillic at all
    "Z003-MediumItalic.otf": ("Z003", frozenset()),
    "Z003-MediumItalic.ttf": ("Z003", frozenset()),
    "NanumBarunpenR.ttf": ("NanumBarunpen", frozenset()),
    "NanumBarunpenB.ttf": ("NanumBarunpen Bold", frozenset()),
    "NanumPen.ttf": ("Nanum Pen Script", frozenset({"CYRILLIC"})),
    "NanumBrush.ttf": ("Nanum Brush Script", frozenset({"CYRILLIC"})),
    # Debian handwriting fonts (scripts/setup.sh). Licences, from /usr/share/doc/*/copyright:
    # OFL-1.1 unless noted; fonts-femkeklaver CC-BY-SA-3, fonts-rufscript GPL-3 with font
    # exception, fonts-kiloji BSD-3-Clause. Only the rendered images are used, never the fonts.
    "dkg.ttf": ("DKG Handwriting", frozenset()),  # fonts-dkg-handwriting
    "dkgBd.ttf": ("DKG Handwriting Bold", frozenset()),
    "dkgIt.ttf": ("DKG Handwriting Italic", frozenset()),
    "dkgBI.ttf": ("DKG Handwriting Bold Italic", frozenset()),
    "Breip.ttf": ("Breip", frozenset()),  # fonts-breip
    "BecauseWeBuild-Regular.otf": ("BecauseWeBuild", frozenset()),  # fonts-bwht
    "BecauseWeConnect-Regular.otf": ("BecauseWeConnect", frozenset()),
    "BecauseWeCreate-Regular.otf": ("BecauseWeCreate", frozenset()),
    "BecauseWeLearn-Regular.otf": ("BecauseWeLearn", frozenset()),
    "BecauseWeMentor-Regular.otf": ("BecauseWeMentor", frozenset()),
    "BecauseWeOrganize-Regular.otf": ("BecauseWeOrganize", frozenset()),
    "femkeklaver.ttf": ("Femkeklaver", frozenset()),  # fonts-femkeklaver
    "Humor-Sans.ttf": ("Humor Sans", frozenset()),  # fonts-humor-sans
    "DancingScript-Regular.otf": ("Dancing Script", frozenset()),  # fonts-dancingscript
    "DancingScript-Bold.otf": ("Dancing Script Bold", frozenset()),
    "Ecolier-court.ttf": ("Ecolier Court", frozenset()),  # fonts-ecolier-court
    "KleeOne-Regular.ttf": ("Klee One", frozenset()),  # fonts-klee (has Cyrillic)
    "KleeOne-SemiBold.ttf": ("Klee One SemiBold", frozenset()),
    "Rufscript010.ttf": ("Rufscript", frozenset()),  # fonts-rufscript
    "KaushanScript-Regular.otf": ("Kaushan Script", frozenset()),  # fonts-kaushanscript
    "Kristi.ttf": ("Kristi", frozenset()),  # fonts-kristi
    "ComicNeue-Regular.otf": ("Comic Neue", frozenset()),  # fonts-comic-neue
    "ComicNeue-Italic.otf": ("Comic Neue Italic", frozenset()),
    "ComicNeue-Light.otf": ("Comic Neue Light", frozenset()),
    "ComicNeue-LightItalic.otf": ("Comic Neue Light Italic", frozenset()),
    "TomsonTalks.ttf": ("Tomson Talks", frozenset()),  # fonts-tomsontalks
    "setofont.ttf": ("Seto", frozenset()),  # fonts-seto (has Cyrillic)
    "kiloji.ttf": ("Kiloji", frozenset()),  # fonts-kiloji (has Cyrillic)
    "kiloji_b.ttf": ("Kiloji B", frozenset()),
    "kiloji_d.ttf": ("Kiloji D", frozenset()),
    "kiloji_p.ttf": ("Kiloji P", frozenset()),
    "YuseiMagic-Regular.ttf": ("Yusei Magic", frozenset()),  # fonts-yusei-magic (marker)
    # Later additions (training hands only): fonts-tlwg-purisa-ttf (GPL-2+ with font
    # exception; a felt-pen print hand), fonts-lobster and fonts-lobstertwo (bold scripts),
    # fonts-leckerli-one (a fat script), fonts-havana (a thin script). fonts-levien-typoscript
    # is left out: it lacks most lowercase glyphs.
    "Purisa.ttf": ("Purisa", frozenset()),
    "Purisa-Oblique.ttf": ("Purisa Oblique", frozenset()),
    "Purisa-Bold.ttf": ("Purisa Bold", frozenset()),
    "Purisa-BoldOblique.ttf": ("Purisa Bold Oblique", frozenset()),
    "lobster.otf": ("Lobster", frozenset()),
    "LobsterTwo-Regular.otf": ("Lobster Two", frozenset()),
    "LobsterTwo-Italic.otf": ("Lobster Two Italic", frozenset()),
    "LobsterTwo-Bold.otf": ("Lobster Two Bold", frozenset()),
    "LobsterTwo-BoldItalic.otf": ("Lobster Two Bold Italic", frozenset()),
    "LeckerliOne-Regular.ttf": ("Leckerli One", frozenset()),
    "Havana-Regular.otf": ("Havana", frozenset()),
}

# Japanese handwriting fonts draw Cyrillic (and some Latin) on full-width advances: letters
# are placed by their ink width instead, else a word looks letter-spaced out.
INK_ADVANCE_FONTS = frozenset({"KleeOne-Regular.ttf", "KleeOne-SemiBold.ttf", "setofont.ttf",
                               "kiloji.ttf", "kiloji_b.ttf", "kiloji_d.ttf", "kiloji_p.ttf"})

# Fallback fonts shipped by matplotlib: oblique/italic first as they look least "printed".
FALLBACK_FONTS = ("DejaVuSans-Oblique.ttf", "DejaVuSerif-Italic.ttf",
                  "DejaVuSansMono-Oblique.ttf", "DejaVuSans.ttf")


@dataclass(frozen=True)
class FontInfo:
    """One font file and the characters it can really draw."""

    path: str
    name: str
    handwriting: bool  # False for the DejaVu fallback
    chars: frozenset[str] = field(repr=False)
    ink_advance: bool = field(default=False, repr=False)  # place letters by their ink width

    def covers(self, text: str) -> bool:
        """True when every non-space character of ``text`` has a real glyph in this font."""
        return all(c in self.chars or c.isspace() for c in text)


def _script(ch: str) -> str:
    """The script of a character as the first word of its Unicode name (LATIN, CYRILLIC...)."""
    try:
        return unicodedata.name(ch).split(" ", 1)[0]
    except ValueError:
        return ""


# Characters whose coverage we check: everything the generators may write (Latin, Cyrillic,
# digits, ASCII punctuation and a few typographic marks). Checking the whole cmap would be slow.
PROBE_CHARS = "".join(
    [chr(c) for c in range(0x21, 0x7F)]
    + [chr(c) for c in range(0x410, 0x450)]
    + ["ё", "Ё", "№", "«", "»", "—", "–", "…", "„", "“", "”", "°"]
)


@functools.lru_cache(maxsize=64)
def font_chars(path: str, refuse_scripts: frozenset[str] = frozenset()) -> frozenset[str]:
    """The probe characters that ``path`` maps in its cmap and draws with visible ink."""
    import logging

    from fontTools.ttLib import TTFont
    from PIL import ImageFont

    logging.getLogger("fontTools").setLevel(logging.ERROR)  # harmless table quirks (Ecolier)
    try:
        cmap = TTFont(path, lazy=True, fontNumber=0).getBestCmap() or {}
        pil_font = ImageFont.truetype(path, 32)
    except Exception:  # a broken or unsupported font file is simply not used
        return frozenset()
    out = set()
    for ch in PROBE_CHARS:
        if ord(ch) not in cmap or cmap[ord(ch)] == ".notdef" or _script(ch) in refuse_scripts:
            continue
        # An empty glyph (mapped but drawn as nothing) has no ink bounding box.
        if pil_font.getmask(ch).getbbox() is None:
            continue
        out.add(ch)
    return frozenset(out)


def _font_dirs() -> list[Path]:
    extra = [p for p in os.environ.get(FONT_DIRS_ENV, "").split(os.pathsep) if p]
    return [Path(p).expanduser() for p in (*extra, *DEFAULT_FONT_DIRS)]


@functools.lru_cache(maxsize=8)
def _installed_handwriting(dirs: tuple[Path, ...]) -> tuple[FontInfo, ...]:
    found: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.rglob("*")):
            # The first copy of a file name wins (Z003 ships as .otf, .t1 and .pfb).
            if p.name in HANDWRITING_FONTS and p.name not in found and p.is_file():
                found[p.name] = p
    fonts = []
    for fname in sorted(found):  # sorted: the same order on every run -> deterministic data
        name, refuse = HANDWRITING_FONTS[fname]
        chars = font_chars(str(found[fname]), refuse)
        if chars:
            fonts.append(FontInfo(str(found[fname]), name, True, chars,
                                  fname in INK_ADVANCE_FONTS))
    return tuple(fonts)


def installed_handwriting_fonts() -> list[FontInfo]:
    """Handwriting-like fonts installed on this machine (possibly none), in a stable order."""
    return list(_installed_handwriting(tuple(_font_dirs())))


@functools.lru_cache(maxsize=1)
def fallback_fonts() -> list[FontInfo]:
    """The DejaVu fonts shipped with matplotlib: always present where matplotlib is."""
    import matplotlib

    ttf_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    out = []
    for fname in FALLBACK_FONTS:
        p = ttf_dir / fname
        if p.is_file():
            chars = font_chars(str(p))
            if chars:
                out.append(FontInfo(str(p), p.stem, False, chars))
    return out


def fonts_covering(text: str, fonts: Sequence[FontInfo] | None = None) -> list[FontInfo]:
    """The fonts that draw every character of ``text``.

    With ``fonts`` None: installed handwriting fonts first; only when none of them covers the
    text, the DejaVu fallback fonts that do.
    """
    if fonts is not None:
        return [f for f in fonts if f.covers(text)]
    hand = [f for f in installed_handwriting_fonts() if f.covers(text)]
    return hand or [f for f in fallback_fonts() if f.covers(text)]


def coverage_report(fonts: Iterable[FontInfo], alphabets: dict[str, str]) -> dict[str, dict]:
    """Per font, per alphabet: whether it is fully covered and which characters are missing."""
    return {
        f.name: {
            key: {"full": f.covers(alpha), "missing": "".join(c for c in alpha if c not in f.chars)}
            for key, alpha in alphabets.items()
        }
        for f in fonts
    }
