"""``fusionbrain train``: see :mod:`fusionbrain.train.train` (shared with torchrun)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from fusionbrain.train.train import add_arguments as add

    add(parser)


def run(args: argparse.Namespace) -> int:
    from fusionbrain.train.train import _shutdown
    from fusionbrain.train.train import run as run_train

    try:
        return run_train(args)
    finally:
        _shutdown()
