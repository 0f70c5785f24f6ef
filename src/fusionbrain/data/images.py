"""Image checks and copies shared by the readers and writers of image tasks."""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path

IMAGE_EXTS: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif",
                                        ".tiff", ".webp"})


# PIL format names of the image files the challenge folders use.
IMAGE_FORMAT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def image_key(sample_id: object, default_ext: str, task: str) -> str:
    """The challenge key (image file name) of a sample: its id, plus ``default_ext`` if bare."""
    sid = str(sample_id)
    name = sid if Path(sid).suffix.lower() in IMAGE_EXTS else f"{sid}{default_ext}"
    if "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"{task} sample id {sid!r} cannot be a file name")
    return name


def image_problem(path: str | os.PathLike[str]) -> str | None:
    """Why the image at ``path`` is unusable ("missing file: ...", "corrupt image: ..."), or None."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return "missing file"
    return _decode_problem(str(p.resolve()), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=65536)
def _decode_problem(path: str, size: int, mtime_ns: int) -> str | None:
    # Cached per (path, size, mtime): VQA questions share images, and a file that changes is
    # checked again. A full decode catches truncation that Image.verify() misses for JPEG;
    # draft() decodes JPEGs at 1/8 scale, so the check stays cheap on large photos.
    from PIL import Image

    if size == 0:
        return "corrupt image: empty file"
    try:
        with Image.open(path) as im:
            if im.format == "JPEG":
                im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
            im.load()
    except (OSError, SyntaxError, ValueError) as e:  # PIL raises all three on bad data
        return f"corrupt image: {e}"
    except Image.DecompressionBombError as e:
        return f"corrupt image: {e}"
    return None


def copy_image(src: str | os.PathLike[str], dst: str | os.PathLike[str],
               fmt: str | None = None) -> None:
    """Copy ``src`` to ``dst``; re-encode when ``fmt`` ("PNG"/"JPEG") differs from the source's."""
    src, dst = Path(src), Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if fmt is not None:
        from PIL import Image

        with Image.open(src) as im:
            if im.format != fmt:
                if fmt == "JPEG" and im.mode not in ("RGB", "L"):
                    im = im.convert("RGB")
                im.save(dst, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
                return
    shutil.copyfile(src, dst)
