"""User-facing errors: one clear line, no traceback, exit status 2."""

from __future__ import annotations

import os


class UserError(Exception):
    """A problem with the user's input (file, key, option), not a bug.

    The CLI prints ``fusionbrain: error: <message>`` and exits with status 2.
    Messages name the file (and the key, where there is one).
    """

    exit_code = 2

    def __init__(self, message: str, *, path: str | os.PathLike[str] | None = None,
                 key: object = None) -> None:
        parts = []
        if path is not None:
            parts.append(str(path))
        if key is not None:
            parts.append(f"key {key!r}")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)
