"""Fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> Path:
    """The tiny embedded dataset (seed 0), built once per session; tests only read it."""
    from fusionbrain.data import build

    out = tmp_path_factory.mktemp("tinydata")
    build.build(out, "tiny", 0, workers=1)
    return out
