"""Chunked, atomic, resumable dataset generation for any :class:`~oplearn.pdes.PDE`.

Samples are produced in chunks of ``chunk_size``; chunk ``c`` draws its inputs from the
stream ``derive_seed(seed, c)``, so the file's content depends only on the recipe
(PDE parameters, ``n``, resolution, seed, chunk size), not on interruptions. Work goes
into ``<out>.partial``; after every chunk the file is flushed and ``n_complete`` advanced,
so a killed job resumes at the first unfinished chunk. The final name appears only
when all samples are written (``os.replace``).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import h5py
import numpy as np
import scipy
import torch
from tqdm.auto import tqdm

import oplearn
from oplearn.data.files import FORMAT, FORMAT_VERSION, decode_attrs
from oplearn.errors import DataError
from oplearn.pdes import PDE, PDES
from oplearn.seeding import generator


def make_pde(name: str, params: dict | None = None) -> PDE:
    """Construct a registered PDE by name with keyword parameters."""
    if name not in PDES:
        raise DataError(f"unknown PDE '{name}'; choose one of: {', '.join(sorted(PDES))}")
    try:
        return PDES[name](**(params or {}))
    except (TypeError, ValueError) as err:
        raise DataError(f"bad parameters for PDE '{name}': {err}") from None


def _recipe(pde: PDE, n: int, resolution: int, seed: int, chunk_size: int) -> dict:
    grid = pde.grid(resolution)
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pde": pde.name,
        "pde_params": json.dumps(pde.params(), sort_keys=True),
        "grid": json.dumps(grid.to_dict()),
        "seed": int(seed),
        "n": int(n),
        "chunk_size": int(chunk_size),
    }


def generate_dataset(
    pde: PDE,
    n: int,
    resolution: int,
    out: str | Path,
    seed: int = 0,
    chunk_size: int = 32,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Generate ``n`` samples of ``pde`` at ``resolution`` into the HDF5 file ``out``.

    Resumes ``<out>.partial`` if it exists with the same recipe. Returns the final path.
    """
    out = Path(out)
    if n <= 0:
        raise DataError(f"--n must be positive, got {n}")
    if chunk_size <= 0:
        raise DataError(f"chunk size must be positive, got {chunk_size}")
    if out.exists() and not overwrite:
        raise DataError(f"'{out}' already exists; choose another --out or pass --overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    recipe = _recipe(pde, n, resolution, seed, chunk_size)
    grid = pde.grid(resolution)

    start = _resume_point(partial, recipe)
    if start == 0:
        _create(partial, recipe, pde, n, resolution)

    n_chunks = -(-n // chunk_size)
    with h5py.File(partial, "r+") as f, tqdm(
        total=n, initial=start, unit="sample", desc=f"{pde.name} {resolution}", disable=not progress or None
    ) as bar:
        for chunk in range(start // chunk_size, n_chunks):
            lo, hi = chunk * chunk_size, min(n, (chunk + 1) * chunk_size)
            inputs, outputs = pde.generate(hi - lo, resolution, generator(seed, chunk))
            if not (torch.isfinite(inputs).all() and torch.isfinite(outputs).all()):
                raise DataError(f"the {pde.name} solver produced non-finite values in samples {lo}..{hi}; check the PDE parameters")
            f["inputs"][lo:hi] = inputs.numpy().astype(np.float32)
            f["outputs"][lo:hi] = outputs.numpy().astype(np.float32)
            f.attrs["n_complete"] = hi
            f.flush()
            bar.update(hi - lo)
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with open(partial, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, out)
    return out


def _resume_point(partial: Path, recipe: dict) -> int:
    """Samples already written in a matching partial file (0 if none or unusable)."""
    if not partial.exists():
        return 0
    try:
        with h5py.File(partial, "r") as f:
            meta = decode_attrs(f.attrs)
    except OSError:
        partial.unlink()  # killed mid-write beyond repair: start again, same seed, same samples
        return 0
    expected = {k: (json.loads(v) if k in ("pde_params", "grid") else v) for k, v in recipe.items()}
    differing = [k for k, v in expected.items() if meta.get(k) != v]
    if differing:
        raise DataError(
            f"'{partial}' is an unfinished dataset with different settings ({', '.join(differing)}); "
            "rerun with its settings to resume, or delete it"
        )
    return int(meta.get("n_complete", 0))


def _create(partial: Path, recipe: dict, pde: PDE, n: int, resolution: int) -> None:
    with h5py.File(partial, "w") as f:
        for key, value in recipe.items():
            f.attrs[key] = value
        f.attrs["n_complete"] = 0
        f.attrs["versions"] = json.dumps(
            {
                "oplearn": oplearn.__version__,
                "torch": torch.__version__,
                "numpy": np.__version__,
                "scipy": scipy.__version__,
                "h5py": h5py.__version__,
                "python": platform.python_version(),
            }
        )
        grid = pde.grid(resolution)
        shape = grid.shape
        for key, names, sample_shape in (
            ("inputs", pde.input_names, (len(pde.input_names), *shape)),
            ("outputs", pde.output_names, pde.output_shape(grid)),
        ):
            dset = f.create_dataset(key, shape=(n, *sample_shape), dtype="float32", chunks=(1, *sample_shape))
            dset.attrs["names"] = json.dumps(list(names))
        if pde.times is not None:
            f["time"] = np.asarray(pde.times, dtype=np.float64)
