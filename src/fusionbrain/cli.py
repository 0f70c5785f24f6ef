"""The ``fusionbrain`` command.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and
``run(args) -> int``. Those modules import heavy libraries (torch, transformers)
inside ``run`` only, so ``fusionbrain score`` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from fusionbrain.errors import UserError

# subcommand -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "score": ("fusionbrain.scoring.cli", "score predictions against the truth (challenge metrics)"),
    "info": ("fusionbrain.model.cli", "parameter counts and sharing of a model"),
    "data": ("fusionbrain.data.cli", "build the embedded dataset"),
    "train": ("fusionbrain.train.cli", "train in Fusion or Single-task mode"),
    "predict": ("fusionbrain.train.predict_cli", "run a model on a challenge input/ folder"),
    "experiment": ("fusionbrain.train.experiment_cli", "Fusion vs Single-task experiment"),
    "run": ("fusionbrain.train.main_job", "the main job: build data, train, predict, score"),
    "c2c-check": ("fusionbrain.tasks.c2c.check_cli",
                  "C2C computational accuracy: run translations against the reference"),
    "challenge": ("fusionbrain.challenge.cli", "run participants' submissions in a sandbox; "
                  "leaderboard"),
    "serve": ("fusionbrain.serve.cli", "the pilot: inference API + HTR review page"),
    "export": ("fusionbrain.model.export", "a run's model as a shippable model folder "
               "(fp16 trainable weights + model card)"),
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (``--help`` shows the usage)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    # subparsers are made with the parent's class, so every level gets one-line errors
    parser = _Parser(prog="fusionbrain", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        # a missing module is a broken install, not a subcommand to hide: let it raise
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser()  # reads the task registry (FUSIONBRAIN_TASKS may be wrong)
    except UserError as e:
        print(f"fusionbrain: error: {e}", file=sys.stderr)
        return e.exit_code
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as e:
        print(f"fusionbrain {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:
        # the reader of stdout went away (`fusionbrain score ... | head`): stop quietly, as
        # a program killed by SIGPIPE would; point stdout at devnull so the exit flush is quiet
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13
    except OSError as e:
        # a file system problem with a named path (not a folder, disk full, permission
        # denied): the user's environment, not a bug, so one line and no traceback
        if e.filename is None or not e.strerror:
            raise
        where = e.filename if e.filename2 is None else f"{e.filename} -> {e.filename2}"
        print(f"fusionbrain {args.command}: error: {where}: {e.strerror}", file=sys.stderr)
        return UserError.exit_code
    except KeyboardInterrupt:
        print(f"fusionbrain {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
