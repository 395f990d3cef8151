"""Safe, atomic checkpoints.

A checkpoint is a dict of tensors, numbers, strings, lists and dicts, written with
:func:`torch.save` to a temporary file that is renamed into place, and read with
``weights_only=True``: a file holding pickled Python objects is refused.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from oplearn.errors import CheckpointError

FORMAT = "oplearn-checkpoint"
FORMAT_VERSION = 1


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, **state}
    try:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, refusing pickled objects."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "unsupported content"
        raise CheckpointError(
            f"refusing to load '{path}': it contains pickled Python objects that could run code ({first[:160]}); "
            "only load checkpoints you trust, re-saved as plain tensors"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(
            f"checkpoint '{path}' is truncated or corrupt: {str(err).splitlines()[0][:200]}"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not an oplearn checkpoint")
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"'{path}' has checkpoint version {state['format_version']}; upgrade oplearn to read it")
    return state
