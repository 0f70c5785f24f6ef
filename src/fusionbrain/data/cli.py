"""``fusionbrain data``: build the embedded bilingual default dataset, or import a real one
into the training format (no torch needed)."""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from fusionbrain.data.sizes import PUBLIC_SIZES, SIZES
from fusionbrain.errors import UserError

# the one import kind every task has (its data.read_challenge); the others are declared by
# the tasks (``IMPORTERS`` in tasks/<task>/__init__.py)
CHALLENGE = "challenge"
CHALLENGE_HELP = "a challenge task folder input/<TASK> (labels from --truth)"


def import_kinds() -> dict[str, tuple[str | None, str]]:
    """Import kind -> (task or None for any, what the positional paths are)."""
    from fusionbrain.tasks import importers

    kinds: dict[str, tuple[str | None, str]] = {CHALLENGE: (None, CHALLENGE_HELP)}
    for kind, (task, imp) in importers().items():
        kinds[kind] = (task, f"{imp.help} [{task}]")
    return kinds


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

    import_kinds_ = import_kinds()
    kinds = "\n".join(f"  {k:<10} {what}" for k, (_, what) in import_kinds_.items())
    i = sub.add_parser("import", help="convert a real dataset (local files) to the training "
                       "format", formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Read a real dataset and write FOLDER/samples.jsonl + "
                       "images/ (e.g. --out DIR/train/HTR). Bad items are skipped and listed "
                       "in FOLDER/skipped.tsv.\n\nkinds:\n" + kinds)
    i.add_argument("kind", choices=list(import_kinds_), metavar="KIND")
    i.add_argument("paths", nargs="+", metavar="PATH")
    i.add_argument("--out", required=True, metavar="FOLDER", help="output split folder")
    i.add_argument("--images", metavar="DIR", help="image folder (kinds with images)")
    i.add_argument("--truth", metavar="FILE", help="true_<TASK>.json (challenge)")
    i.add_argument("--lang", default=None, help="language(s) of the data (see the kinds above)")
    i.add_argument("--pattern", default=None,
                   help="image file name pattern (see the kinds above)")
    i.add_argument("--force", action="store_true", help="overwrite FOLDER/samples.jsonl")


def _import(args: argparse.Namespace) -> int:
    from fusionbrain.data.report import SkipReport
    from fusionbrain.tasks import check_task, importers, task_module

    kind, paths = args.kind, args.paths
    declared = importers()
    want = declared[kind][1].paths if kind in declared else (1,)
    if len(paths) not in want:
        help_text = declared[kind][1].help if kind in declared else CHALLENGE_HELP
        raise UserError(f"import {kind}: expected {help_text}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a folder", path=out)
    if (out / "samples.jsonl").exists() and not args.force:
        raise UserError("already holds samples.jsonl; use --force to overwrite", path=out)
    task = declared[kind][0] if kind in declared else check_task(Path(paths[0]).name)
    data = task_module(task, "data")
    report = SkipReport()
    if kind == CHALLENGE:
        if args.truth is None:
            raise UserError("import challenge: --truth true_<TASK>.json is needed for labels")
        samples = data.read_challenge(paths[0], args.truth, report=report)
    else:
        samples = declared[kind][1].run(list(paths), args, report)
    if not samples:
        raise UserError("no usable sample", path=paths[0])
    data.write_split(samples, out)
    if report.entries:
        report.write(out / "skipped.tsv")
    langs = Counter(str(getattr(s, "lang", "") or "-") for s in samples)
    by_lang = ", ".join(f"{k}: {v}" for k, v in sorted(langs.items()) if k != "-")
    print(f"{task}: wrote {len(samples)} samples to {out}" + (f" ({by_lang})" if by_lang else ""))
    report.print(file=sys.stdout, full_list=out / "skipped.tsv")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.data_command == "import":
        return _import(args)
    from fusionbrain.data.build import build

    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.seed < 0:
        raise UserError(f"--seed must be >= 0, got {args.seed}")
    build(args.out, size=args.size, seed=args.seed, force=args.force, workers=args.workers)
    return 0
