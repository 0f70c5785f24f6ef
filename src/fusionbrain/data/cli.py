"""``fusionbrain data``: build the embedded bilingual default dataset (no torch needed)."""

from __future__ import annotations

import argparse

from fusionbrain.data.sizes import PUBLIC_SIZES, SIZES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    b = sub.add_parser("build", help="write train/valid (training format) and test (challenge "
                       "format) for every task",
                       description="Build the default dataset: DIR/{train,valid}/<TASK>/, "
                       "DIR/test/input/<TASK>/, DIR/test/true/true_<TASK>.json, "
                       "DIR/manifest.json (written last).")
    b.add_argument("--out", required=True, metavar="DIR", help="output folder")
    # "tiny" is accepted for tests but not advertised.
    b.add_argument("--size", default="small", choices=SIZES,
                   metavar="{" + ",".join(PUBLIC_SIZES) + "}",
                   help="dataset size (default: small)")
    b.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    b.add_argument("--force", action="store_true",
                   help="rebuild even if DIR already holds a dataset")
    b.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes (default: up to 4)")


def run(args: argparse.Namespace) -> int:
    from fusionbrain.data.build import build

    if args.data_command == "build":
        if args.workers is not None and args.workers < 1:
            from fusionbrain.errors import UserError

            raise UserError("--workers must be at least 1")
        build(args.out, size=args.size, seed=args.seed, force=args.force, workers=args.workers)
    return 0
