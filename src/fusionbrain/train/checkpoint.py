"""Atomic checkpoints of a run: ``RUN/last`` and ``RUN/best``.

Each is a folder holding ``model/`` (``model.save_pretrained``), ``state.pt`` (optimizer,
scheduler, sampler, RNG, counters; ``last`` only) and ``info.json``. It is written into a
temporary folder beside its final place and renamed into place, so a killed run leaves
either the previous checkpoint or the new one, never a half-written one. The old folder
is first renamed to ``.NAME.old``; if a crash hits between the two renames,
:func:`checkpoint_dir` finds it there.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from fusionbrain.errors import UserError
from fusionbrain.utils.io import path_problem, read_json, write_json_atomic

STATE_FILE = "state.pt"
# info.json key: size and sha256 of state.pt, checked before it is loaded
STATE_CHECK = "state_file"
_STATE_KEYS = {"optimizer", "scheduler", "sampler", "rng", "step"}
INFO_FILE = "info.json"
MODEL_DIR = "model"


def checkpoint_dir(run: str | os.PathLike[str], name: str) -> Path | None:
    """The folder of checkpoint ``name`` in ``run`` if it exists (also after a torn rename)."""
    run = Path(run)
    final = run / name
    if (final / INFO_FILE).exists():
        return final
    old = run / f".{name}.old"
    if (old / INFO_FILE).exists():
        return old
    return None


def _replace_dir(tmp: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def save_checkpoint(run: str | os.PathLike[str], name: str, model: Any, *,
                    info: dict[str, Any], state: dict[str, Any] | None = None) -> Path:
    """Write checkpoint ``name`` (model weights, optional training state, info) atomically."""
    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=run))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; a checkpoint is an ordinary folder
        model.save_pretrained(tmp / MODEL_DIR)
        info = dict(info)
        if state is not None:
            # Serialised in memory first: a full disk is then a plain OSError of our own
            # write (not torch's C++ writer failing mid-stream), and the checksum that
            # load_state checks is of exactly these bytes.
            buf = io.BytesIO()
            torch.save(state, buf)
            data = buf.getbuffer()
            with open(tmp / STATE_FILE, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            info[STATE_CHECK] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        write_json_atomic(tmp / INFO_FILE, info, indent=2)
        final = run / name
        _replace_dir(tmp, final)
        return final
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"cannot write checkpoint {name!r}: {e.strerror or e}; the previous "
                        "checkpoint is kept", path=run) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_state(ckpt: Path) -> dict[str, Any]:
    """The training state saved beside the model (optimizer, scheduler, sampler, ...),
    checked against the size and checksum in ``info.json`` before it is unpickled.

    A damaged state (truncated, empty, disk error) is a one-line :class:`UserError` that
    says what to do, not a ``PytorchStreamReader`` traceback.
    """
    path = ckpt / STATE_FILE

    def damaged(why: str) -> UserError:
        return UserError(f"damaged training state ({why}): the run cannot resume exactly; "
                         f"start a new run with another --out (the weights in {ckpt / MODEL_DIR} "
                         "are intact if only this file is hit)", path=path)

    problem = path_problem(path)
    if problem:
        raise damaged(problem)
    info = load_info(ckpt)
    check = info.get(STATE_CHECK)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise damaged(f"cannot read: {e.strerror}") from None
    if isinstance(check, dict):
        if len(data) != check.get("bytes"):
            raise damaged(f"{len(data)} bytes, {check.get('bytes')} were written")
        if hashlib.sha256(data).hexdigest() != check.get("sha256"):
            raise damaged("checksum mismatch")
    if not data:
        raise damaged("empty file")
    try:
        # weights_only=False: the state holds plain Python containers plus RNG byte
        # tensors, written by this program into the user's own run folder (and checked
        # against its checksum above).
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise damaged(str(e).splitlines()[0][:120] if str(e) else type(e).__name__) from None
    if not isinstance(state, dict) or not _STATE_KEYS <= state.keys():
        raise damaged("not a training state")
    return state


def load_info(ckpt: Path) -> dict[str, Any]:
    return read_json(ckpt / INFO_FILE, expect=dict)


def rng_state() -> dict[str, Any]:
    import random

    import numpy as np

    state: dict[str, Any] = {"python": random.getstate(), "numpy": np.random.get_state(),
                             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import random

    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def clean_stale_temps(run: str | os.PathLike[str]) -> None:
    """Remove temporary checkpoint folders a killed run left behind."""
    for p in Path(run).glob(".*.tmp"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
