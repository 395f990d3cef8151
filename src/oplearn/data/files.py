"""The oplearn dataset file: one HDF5 file of input/output field pairs.

Layout
------
``inputs``
    ``(n, c_in, *spatial)`` float32, attribute ``names`` (channel names).
``outputs``
    ``(n, c_out, *spatial)`` float32 (time-dependent data: ``(n, time, c_out, *spatial)``
    with a ``time`` dataset), attribute ``names``.
root attributes
    ``format = "oplearn-dataset"``, ``format_version``, ``pde``, ``pde_params`` (JSON),
    ``grid`` (JSON: shape, domain, periodic), ``seed``, ``n``, ``chunk_size``,
    ``n_complete`` (samples written so far), ``versions`` (JSON), ``created``.

A file is *complete* when ``n_complete == n``.

Fields on point clouds and meshes, with a different number of nodes in every sample, use the
ragged layout of :mod:`oplearn.data.mesh_files` (root attribute ``layout = "mesh"``) under the
same root attributes.

A dataset generated in shards (:mod:`oplearn.data.generate`) is read through a small
*assembled* file whose ``inputs``/``outputs`` are HDF5 virtual datasets over the shard files;
it has the same root attributes plus ``shard_count`` and ``shard_files`` (JSON list of paths
relative to its folder, checked to exist when it is opened). Writers work on ``<name>.partial`` and
rename it to its final name only when complete, so a file under its final name is never
half-written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from oplearn.errors import DataError
from oplearn.grids import Grid
from oplearn.provenance import timestamp, versions

FORMAT = "oplearn-dataset"
FORMAT_VERSION = 1


@dataclass
class FieldData:
    """Fields loaded from a dataset file.

    Attributes
    ----------
    inputs : ``(n, c_in, *grid.shape)`` tensor
    outputs : ``(n, c_out, *grid.shape)`` tensor, or ``(n, time, c_out, *grid.shape)``
    grid : the grid the fields live on
    time : output times ``(time,)`` of trajectory data, else ``None``
    meta : root attributes (JSON decoded)
    path : where they came from
    """

    inputs: torch.Tensor
    outputs: torch.Tensor
    grid: Grid
    meta: dict[str, Any]
    path: Path
    time: torch.Tensor | None = None

    @property
    def resolution(self) -> str:
        return "x".join(str(n) for n in self.grid.shape)

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def select(self, index: slice | torch.Tensor) -> FieldData:
        """The samples ``index`` (a slice, or positions ``(b,)``) of this data."""
        return FieldData(self.inputs[index], self.outputs[index], self.grid, self.meta, self.path, self.time)

    def time_as_channels(self) -> FieldData:
        """Trajectory outputs ``(n, time, c, *spatial)`` folded to ``(n, time * c, *spatial)``.

        A steady operator then learns the whole stored trajectory at once (the FNO papers'
        "time as channels" setting; for a single stored time it is plain ``u0 -> u(T)``).
        Steady data is returned unchanged.
        """
        if self.outputs.ndim != self.grid.ndim + 3:
            return self
        outputs = self.outputs.reshape(len(self), -1, *self.grid.shape)
        return FieldData(self.inputs, outputs, self.grid, self.meta, self.path, self.time)


def decode_attrs(attrs: h5py.AttributeManager) -> dict[str, Any]:
    """Root attributes with JSON-encoded values decoded."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, str) and value[:1] in "{[":
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                pass
        out[key] = value
    return out


def read_meta(path: str | Path) -> dict[str, Any]:
    """Open and check a dataset file's header without reading its arrays: the root attributes
    and the channel names (``input_names``, ``output_names``)."""
    path = Path(path)
    with _open(path) as f:
        return _check_header(f, path)


def load_fields(path: str | Path, limit: int | None = None, start: int = 0) -> FieldData:
    """Load samples ``start .. start+limit`` of a complete dataset file into memory (float32)."""
    path = Path(path)
    with _open(path) as f:
        meta = _check_header(f, path)
        require_grid(meta, path)
        n = meta["n"]
        stop = n if limit is None else start + limit
        if stop > n:
            raise DataError(f"{path}: asked for samples {start}..{stop} but the file holds {n}; lower n_train/n_val")
        inputs = torch.from_numpy(np.asarray(f["inputs"][start:stop], dtype=np.float32))
        outputs = torch.from_numpy(np.asarray(f["outputs"][start:stop], dtype=np.float32))
        time = torch.from_numpy(np.asarray(f["time"][:], dtype=np.float64)) if "time" in f else None
    grid = Grid.from_dict(meta["grid"])
    check_fields(inputs, grid, f"{path}: inputs")
    check_fields(outputs, grid, f"{path}: outputs")
    return FieldData(inputs, outputs, grid, meta, path, time)


def channel_names(f: h5py.File) -> dict[str, list[str]]:
    """``{"input_names": [...], "output_names": [...]}`` from the ``names`` attributes of the arrays
    (the keys external readers set too)."""
    return {f"{key[:-1]}_names": list(decode_attrs(f[key].attrs).get("names") or []) for key in ("inputs", "outputs")}


def require_grid(meta: dict[str, Any], path: Path) -> None:
    """Raise a one-line DataError unless the header ``meta`` describes fields on a grid."""
    if meta.get("layout") == "mesh":
        raise DataError(
            f"'{path}' holds fields on meshes, not on a grid; read it with oplearn.data.mesh_files.MeshDataset"
        )


def check_fields(x: torch.Tensor, grid: Grid, what: str) -> None:
    """Raise a one-line DataError unless ``x`` is finite float data of shape
    ``(n, c, *grid.shape)`` (or ``(n, time, c, *grid.shape)``)."""
    if not torch.is_floating_point(x):
        raise DataError(f"{what} have dtype {x.dtype}; expected floating-point fields")
    if x.ndim not in (grid.ndim + 2, grid.ndim + 3) or tuple(x.shape[-grid.ndim :]) != grid.shape:
        raise DataError(
            f"{what} have shape {tuple(x.shape)}; expected (n, channels, {', '.join(map(str, grid.shape))})"
        )
    bad = ~torch.isfinite(x)
    if bad.any():
        sample = int(bad.reshape(x.shape[0], -1).any(1).nonzero()[0])
        raise DataError(
            f"{what} contain NaN or infinite values (first in sample {sample}); regenerate or clean the data"
        )


def check_data_file(path: Path) -> None:
    """Raise a one-line DataError unless ``path`` is an existing file (not a folder)."""
    if path.is_dir():
        raise DataError(f"data file '{path}' is a folder; give a dataset file")
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        hint = (
            f"; an unfinished '{partial.name}' exists: rerun the same generate command to resume it"
            if partial.exists()
            else ""
        )
        raise DataError(f"data file '{path}' does not exist{hint}")


def _open(path: Path) -> h5py.File:
    check_data_file(path)
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"data file '{path}' is not a readable HDF5 file (truncated or corrupt?): {err}") from None


def _check_header(f: h5py.File, path: Path) -> dict[str, Any]:
    meta = decode_attrs(f.attrs)
    if meta.get("format") != FORMAT:
        raise DataError(
            f"'{path}' is not an oplearn dataset (no format attribute); create one with 'oplearn generate', "
            f"or convert it with 'oplearn convert {path} OUT.h5'"
        )
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise DataError(
            f"'{path}' has format version {meta['format_version']}; this oplearn reads up to {FORMAT_VERSION}: upgrade oplearn"
        )
    mesh = meta.get("layout") == "mesh"  # ragged samples (oplearn.data.mesh_files)
    for key in ("node_offsets", "nodes", "inputs", "outputs") if mesh else ("inputs", "outputs"):
        if key not in f:
            raise DataError(f"'{path}' has no '{key}' dataset; the file is damaged, regenerate it")
    stored = f["node_offsets"].shape[0] - 1 if mesh else f["inputs"].shape[0]
    if meta.get("n_complete") != meta.get("n") or stored != meta.get("n"):
        raise DataError(
            f"'{path}' is incomplete ({meta.get('n_complete')} of {meta.get('n')} samples); rerun its generate command to finish it"
        )
    for name in meta.get("shard_files") or []:  # an assembled file: its arrays live in these files
        if not (path.parent / name).is_file():
            raise DataError(
                f"'{path}' is assembled from shard files and '{name}' is missing next to it; move the .shards folder along with it"
            )
    return {**meta, **channel_names(f)}


def write_fields(
    path: str | Path,
    inputs: torch.Tensor,
    outputs: torch.Tensor,
    grid: Grid,
    names: tuple[list[str], list[str]],
    pde: str,
    pde_params: dict[str, Any],
    seed: int | None,
    *,
    time: torch.Tensor | None = None,
    attrs: dict[str, Any] | None = None,
) -> Path:
    """Write fields made outside ``oplearn generate`` (derived targets, converted files) as a complete dataset file.

    ``inputs (n, c_in, *grid.shape)``, ``outputs (n, c_out, *grid.shape)`` (or trajectories
    ``(n, len(time), c_out, *grid.shape)`` with their ``time``); ``names`` are the input and
    output channel names; ``pde``, ``pde_params`` and ``seed`` (``None``: not seeded here)
    describe where the fields came from, ``attrs`` adds root attributes (JSON-encoded when not
    text or numbers, e.g. a ``source`` record). Written to ``<path>.partial`` and renamed, like
    generated files.
    """
    path = Path(path)
    check_fields(inputs, grid, f"{path}: inputs")
    check_fields(outputs, grid, f"{path}: outputs")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with h5py.File(partial, "w") as f:
        for key, data, channel_names in (("inputs", inputs, names[0]), ("outputs", outputs, names[1])):
            dset = f.create_dataset(
                key,
                data=data.detach().cpu().numpy().astype(np.float32),
                chunks=(1, *data.shape[1:]) if len(data) else None,
            )
            dset.attrs["names"] = json.dumps(list(channel_names))
        if time is not None:
            f["time"] = np.asarray(time, dtype=np.float64)
        f.attrs.update(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "pde": pde,
                "pde_params": json.dumps(pde_params),
                "grid": json.dumps(grid.to_dict()),
                "n": len(inputs),
                "n_complete": len(inputs),
                "versions": json.dumps(versions()),
                "created": timestamp(),
            }
        )
        if seed is not None:
            f.attrs["seed"] = int(seed)
        for key, value in (attrs or {}).items():
            f.attrs[key] = value if isinstance(value, (str, int, float)) else json.dumps(value, default=str)
    partial.replace(path)
    return path
