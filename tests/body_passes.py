"""Support for the warm-up tests (no tests here): count a model's body passes."""

from __future__ import annotations


def count_body_passes(model) -> list:
    """Wrap ``model.run_body`` so that each body pass appends to the returned list (the
    warm-up tests check when a head runs the body and when it does not)."""
    calls: list = []
    run_body = model.run_body

    def counting(*a, **k):
        calls.append(1)
        return run_body(*a, **k)

    model.run_body = counting
    return calls
