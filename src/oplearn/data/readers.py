"""Readers for external dataset formats, each returning an oplearn :class:`FieldData`.

Supported layouts
-----------------
``oplearn``
    oplearn's own files (:func:`oplearn.data.files.load_fields`).
``neuraloperator``
    The NeuralOperator library's ``.pt`` dictionaries with tensors ``x`` (input) and ``y``
    (output), loaded with ``torch.load(weights_only=True)``: no code in the file is ever run.
    ``x`` is ``(n, s)`` (1D) or ``(n, s1, s2)``, ``(n, c, s1, s2)`` (2D); ``y`` has the same
    layout, or is a 1D trajectory ``(n, t, s)`` (their Burgers sets, whose frame times are not
    stored: ``time`` is the frame index). Other small tensors (``visc``) go to
    ``meta["scalars"]``. The files store no coordinates: the grid is the unit box, bounded
    unless ``periodic=True`` (their Darcy sets are bounded, their Burgers and Navier-Stokes
    sets periodic). Boolean inputs (their Darcy masks) become 0/1.
``pdebench``
    PDEBench HDF5 files, two layouts. *Single file*: ``tensor`` ``(n, t, x[, y[, z]])``
    with ``x-coordinate`` (``y-``, ``z-``) and ``t-coordinate`` (its first ``t`` entries are
    the frame times: the 1D files store ``t + 1``); Darcy files add ``nu`` ``(n, x, y)``, the
    input of a steady problem; the compressible-flow files store ``density``, ``pressure``,
    ``Vx`` (``Vy``, ``Vz``) instead of ``tensor``, read as channels. *Per sample*: one group per
    sample (``0000``, ``0001``, ...) with ``data`` ``(t, x[, y], c)`` and ``grid/x``, ``grid/y``,
    ``grid/t`` (2D diffusion-reaction, shallow water). The files do not record boundary
    conditions: ``periodic=None`` guesses from the file name (periodic when it contains
    ``periodic``, ``Advection``, ``Burgers`` or ``ReacDiff``) and records the guess in the meta.
``hdf5``
    A plain HDF5 file of two arrays, by default ``inputs`` ``(n, c_in, *spatial)`` and
    ``outputs`` ``(n, c_out, *spatial)`` (or trajectories ``(n, t, c_out, *spatial)`` with a
    ``time`` dataset of the ``t`` frame times); other names with ``inputs=`` / ``outputs=``. The
    dimension is ``inputs.ndim - 2``. Optional 1D datasets ``x``, ``y``, ``z`` give the node
    coordinates (uniform); without them the grid is the unit box, bounded unless
    ``periodic=True``. Channel names from an array's ``names`` attribute (a list or JSON text)
    when present.
``the-well``
    The Well's HDF5 files on Cartesian grids: the fields of ``t0_fields`` (scalars),
    ``t1_fields`` (vectors, one channel per component) and ``t2_fields`` (tensors, one channel
    per entry) that vary over samples, time and every spatial dimension; others (constant
    coefficients, fields on a subset of the dimensions) are skipped and listed in
    ``meta["skipped_fields"]``. Coordinates come from ``dimensions``, frame times from
    ``dimensions/time``, boundary types from ``boundary_conditions`` (the grid is periodic
    only when every dimension is). Spherical grids are refused.

Trajectories become ``inputs`` = the first frame ``(n, c, *spatial)`` and ``outputs`` = every
frame ``(n, t, c, *spatial)`` with ``time`` the frame times, the layout of oplearn's own
time-dependent PDEs. Coordinates are read, checked to be uniform, and turned into the
:class:`~oplearn.grids.Grid` whose nodes are exactly those coordinates (cell-centred data
gives a grid on ``[x_0, x_{n-1}]``, or ``[x_0, x_0 + n h)`` when periodic). Channel names go
to ``meta["input_names"]`` and ``meta["output_names"]``. Arrays are returned as float32;
``limit`` reads only the first samples.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from oplearn.data.files import FORMAT as OPLEARN_FORMAT
from oplearn.data.files import FieldData, check_data_file, check_fields, decode_attrs, load_fields
from oplearn.errors import DataError
from oplearn.grids import Grid

#: What a PDEBench reader gives: ``(inputs, outputs, grid, time, (input names, output names))``.
_PDEBenchFields = tuple[torch.Tensor, torch.Tensor, Grid, "torch.Tensor | None", tuple[list[str], list[str]]]

FORMATS = ("oplearn", "neuraloperator", "pdebench", "the-well", "hdf5")
#: Formats whose files do not record whether the grid is periodic (``periodic=`` sets it).
UNRECORDED_BOUNDARIES = ("neuraloperator", "pdebench", "hdf5")
#: Default array names of the plain ``hdf5`` layout (the first present is used).
PLAIN_INPUTS, PLAIN_OUTPUTS = ("inputs", "x", "a"), ("outputs", "y", "u")

#: PDEBench file-name fragments of periodic problems (the files do not record it).
PDEBENCH_PERIODIC_HINTS = ("periodic", "advection", "burgers", "reacdiff")
PDEBENCH_CFD_FIELDS = ("density", "pressure", "Vx", "Vy", "Vz")
AXES = "xyz"


def read_dataset(
    path: str | Path,
    format: str = "auto",
    limit: int | None = None,
    periodic: bool | None = None,
    inputs: str | None = None,
    outputs: str | None = None,
) -> FieldData:
    """Read a dataset file of any supported format (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The file.
    format : {"auto", "oplearn", "neuraloperator", "pdebench", "the-well", "hdf5"}
        ``"auto"`` detects it (:func:`detect_format`).
    limit : int, optional
        Read only the first ``limit`` samples.
    periodic : bool, optional
        Boundary convention of formats that do not record it (:data:`UNRECORDED_BOUNDARIES`);
        refused for the others.
    inputs, outputs : str, optional
        Array names of the ``hdf5`` layout (refused for the others).
    """
    path = Path(path)
    if format == "auto":
        format = detect_format(path)
    if format not in FORMATS:
        raise DataError(f"unknown dataset format '{format}'; choose one of: auto, {', '.join(FORMATS)}")
    if periodic is not None and format not in UNRECORDED_BOUNDARIES:
        raise DataError(f"'{path}': {format} files record their boundary conditions; do not pass periodic")
    if (inputs or outputs) and format != "hdf5":
        raise DataError(
            f"'{path}': {format} files name their own arrays; input and output names apply to plain HDF5 files"
        )
    if format == "oplearn":
        return load_fields(path, limit)
    if format == "neuraloperator":
        return read_neuraloperator(path, limit, periodic=bool(periodic))
    if format == "pdebench":
        return read_pdebench(path, limit, periodic)
    if format == "hdf5":
        return read_plain_hdf5(path, limit, bool(periodic), inputs, outputs)
    return read_the_well(path, limit)


def detect_format(path: str | Path) -> str:
    """The format of ``path``, from its suffix (``.pt``, ``.pth``) or its HDF5 layout."""
    path = Path(path)
    check_data_file(path)
    if path.suffix in (".pt", ".pth"):
        return "neuraloperator"
    if not h5py.is_hdf5(path):
        raise DataError(f"'{path}' is neither an HDF5 file nor a .pt file; supported formats: {', '.join(FORMATS)}")
    with _open_h5(path) as f:
        if decode_attrs(f.attrs).get("format") == OPLEARN_FORMAT:
            return "oplearn"
        if "t0_fields" in f and "dimensions" in f:
            return "the-well"
        if "tensor" in f or "density" in f or _per_sample_groups(f):
            return "pdebench"
        if any(k in f for k in PLAIN_INPUTS) and any(k in f for k in PLAIN_OUTPUTS):
            return "hdf5"
        keys = ", ".join(list(f.keys())[:8]) or "none"
    raise DataError(
        f"'{path}' has an unknown HDF5 layout (top-level keys: {keys}); expected an oplearn, PDEBench or The Well file, "
        "or plain 'inputs' and 'outputs' arrays"
    )


# --- NeuralOperator ----------------------------------------------------------------------


def read_neuraloperator(path: str | Path, limit: int | None = None, periodic: bool = False) -> FieldData:
    """Read a NeuralOperator ``.pt`` dictionary with tensors ``x`` and ``y`` (module docstring)."""
    path = Path(path)
    check_data_file(path)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(
            f"'{path}' is not a loadable tensor file (weights_only=True refuses pickled objects): {first}"
        ) from None
    if not isinstance(content, dict) or not {"x", "y"} <= set(content):
        found = sorted(content) if isinstance(content, dict) else type(content).__name__
        raise DataError(
            f"'{path}' is not a NeuralOperator dataset: expected a dict with tensors 'x' and 'y', found {found}"
        )
    x, y = (content[key] for key in ("x", "y"))
    if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise DataError(f"'{path}': 'x' and 'y' must be tensors, got {type(x).__name__} and {type(y).__name__}")
    x, y, time = _neuraloperator_layout(x, y, path)
    stop = _stop(limit, x.shape[0], path)
    grid = Grid(tuple(x.shape[2:]), periodic=periodic)
    scalars = {
        key: value.reshape(-1).tolist() if value.numel() > 1 else value.item()
        for key, value in content.items()
        if key not in ("x", "y") and isinstance(value, torch.Tensor) and value.numel() <= 16
    }
    channels = y.shape[-1 - grid.ndim]
    meta = {
        "format": "neuraloperator",
        "input_names": [f"x{c}" if x.shape[1] > 1 else "x" for c in range(x.shape[1])],
        "output_names": [f"y{c}" if channels > 1 else "y" for c in range(channels)],
        "periodic": periodic,
        "scalars": scalars,
        "n": stop,
    }
    if time is not None:
        meta["time_unit"] = "frame index (the file stores no times)"
    return _field_data(x[:stop], y[:stop], grid, meta, path, time)


def _neuraloperator_layout(
    x: torch.Tensor, y: torch.Tensor, path: Path
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(inputs, outputs, time)`` in oplearn's layout from the ``x`` and ``y`` tensors.

    ``x`` fixes the dimension: ``(n, s)`` is 1D, ``(n, s1, s2)`` and ``(n, c, s1, s2)`` are 2D.
    In 1D, ``y`` is ``(n, s)`` or a trajectory ``(n, t, s)`` (their Burgers sets; ``time`` is
    then the frame index); in 2D, ``(n, s1, s2)`` or ``(n, c, s1, s2)``.
    """
    if x.ndim not in (2, 3, 4):
        raise DataError(f"'{path}': 'x' has shape {tuple(x.shape)}; expected (n, s), (n, s1, s2) or (n, c, s1, s2)")
    ndim = 1 if x.ndim == 2 else 2
    x = x.unsqueeze(1) if x.ndim < 4 else x
    time = None
    if ndim == 1 and y.ndim == 3:
        y, time = y.unsqueeze(2), torch.arange(y.shape[1], dtype=torch.float64)
    elif y.ndim == ndim + 1:
        y = y.unsqueeze(1)
    elif not (ndim == 2 and y.ndim == 4):
        raise DataError(f"'{path}': 'y' has shape {tuple(y.shape)}, which does not fit 'x' of shape {tuple(x.shape)}")
    if x.shape[0] != y.shape[0] or x.shape[2:] != y.shape[y.ndim - ndim :]:
        raise DataError(f"'{path}': 'x' {tuple(x.shape)} and 'y' {tuple(y.shape)} disagree in samples or grid")
    return x, y, time


# --- PDEBench ----------------------------------------------------------------------------


def read_pdebench(path: str | Path, limit: int | None = None, periodic: bool | None = None) -> FieldData:
    """Read a PDEBench HDF5 file, single-file or per-sample layout (module docstring)."""
    path = Path(path)
    check_data_file(path)
    guessed = periodic is None
    if guessed:
        periodic = any(hint in path.name.lower() for hint in PDEBENCH_PERIODIC_HINTS)
    with _open_h5(path) as f:
        if "tensor" in f or "density" in f:
            inputs, outputs, grid, time, names = _pdebench_single(f, path, limit, periodic)
        elif _per_sample_groups(f):
            inputs, outputs, grid, time, names = _pdebench_per_sample(f, path, limit, periodic)
        else:
            raise DataError(f"'{path}' is not a PDEBench file: no 'tensor', 'density' or per-sample 'data' datasets")
    meta = {
        "format": "pdebench",
        "input_names": names[0],
        "output_names": names[1],
        "periodic": periodic,
        "periodic_guessed_from_name": guessed,
        "n": inputs.shape[0],
    }
    return _field_data(inputs, outputs, grid, meta, path, time)


def _pdebench_single(f: h5py.File, path: Path, limit: int | None, periodic: bool) -> _PDEBenchFields:
    keys = ["tensor"] if "tensor" in f else [key for key in PDEBENCH_CFD_FIELDS if key in f]
    names = ["u"] if keys == ["tensor"] else keys
    first = f[keys[0]]
    if first.ndim < 3:
        raise DataError(f"'{path}': '{first.name[1:]}' has shape {first.shape}; expected (n, t, x[, y[, z]])")
    n, steps, spatial = first.shape[0], first.shape[1], first.shape[2:]
    stop = _stop(limit, n, path)
    coordinate_keys = [f"{axis}-coordinate" for axis in AXES[: len(spatial)]]
    grid = _grid_from_axes([_dataset(f, key, path) for key in coordinate_keys], spatial, periodic, path)
    fields = []
    for key in keys:
        if f[key].shape != first.shape:
            raise DataError(f"'{path}': '{key}' has shape {f[key].shape} but '{keys[0]}' has {first.shape}")
        fields.append(np.asarray(f[key][:stop], dtype=np.float32))
    trajectory = torch.from_numpy(np.stack(fields, axis=2))  # (n, t, c, *spatial)
    if "nu" in f:  # Darcy: a steady problem nu -> u, stored with one time slice
        nu = f["nu"]
        if nu.shape != (n, *spatial) or steps != 1:
            raise DataError(
                f"'{path}': 'nu' {nu.shape} and 'tensor' {first.shape} are not a Darcy pair (n, x, y) / (n, 1, x, y)"
            )
        inputs = torch.from_numpy(np.asarray(nu[:stop], dtype=np.float32)).unsqueeze(1)
        return inputs, trajectory[:, 0], grid, None, (["nu"], names)
    t = _dataset(f, "t-coordinate", path)
    if t.shape[0] < steps:
        raise DataError(f"'{path}': 't-coordinate' has {t.shape[0]} entries for {steps} frames")
    time = torch.from_numpy(np.asarray(t[:steps], dtype=np.float64))
    return trajectory[:, 0], trajectory, grid, time, (names, names)


def _per_sample_groups(f: h5py.File) -> list[str]:
    """Sorted names of top-level groups holding a ``data`` dataset (PDEBench per-sample layout)."""
    return sorted(
        key for key, item in f.items() if isinstance(item, h5py.Group) and isinstance(item.get("data"), h5py.Dataset)
    )


def _pdebench_per_sample(f: h5py.File, path: Path, limit: int | None, periodic: bool) -> _PDEBenchFields:
    groups = _per_sample_groups(f)
    stop = _stop(limit, len(groups), path)
    first = f[groups[0]]
    shape = first["data"].shape  # (t, *spatial, c)
    if len(shape) < 3:
        raise DataError(f"'{path}': '{groups[0]}/data' has shape {shape}; expected (t, x[, y], channels)")
    spatial = shape[1:-1]
    axes = [_dataset(first, f"grid/{axis}", path) for axis in AXES[: len(spatial)]]
    grid = _grid_from_axes(axes, spatial, periodic, path)
    t = _dataset(first, "grid/t", path)
    if t.shape[0] != shape[0]:
        raise DataError(f"'{path}': '{groups[0]}/grid/t' has {t.shape[0]} entries for {shape[0]} frames")
    frames = []
    for key in groups[:stop]:
        data = f[key]["data"]
        if data.shape != shape:
            raise DataError(f"'{path}': sample '{key}' has shape {data.shape} but '{groups[0]}' has {shape}")
        frames.append(np.moveaxis(np.asarray(data, dtype=np.float32), -1, 1))  # (t, c, *spatial)
    outputs = torch.from_numpy(np.stack(frames))
    names = [f"channel_{c}" for c in range(shape[-1])]
    return outputs[:, 0], outputs, grid, torch.from_numpy(np.asarray(t, dtype=np.float64)), (names, names)


# --- The Well ----------------------------------------------------------------------------


def read_the_well(path: str | Path, limit: int | None = None) -> FieldData:
    """Read The Well's HDF5 layout on a Cartesian grid (module docstring)."""
    path = Path(path)
    check_data_file(path)
    with _open_h5(path) as f:
        attrs = decode_attrs(f.attrs)
        if str(attrs.get("grid_type", "cartesian")).lower() != "cartesian":
            raise DataError(
                f"'{path}' has grid_type '{attrs['grid_type']}'; only Cartesian grids of The Well are supported"
            )
        if "dimensions" not in f:
            raise DataError(f"'{path}' is not a The Well file: no 'dimensions' group")
        dims = [_text(d) for d in f["dimensions"].attrs.get("spatial_dims", [])]
        if not dims:
            raise DataError(f"'{path}': 'dimensions' has no spatial_dims attribute")
        coordinates = [_dataset(f["dimensions"], d, path) for d in dims]
        spatial = tuple(len(c) for c in coordinates)
        boundaries = _well_boundaries(f, dims)
        periodic = all(boundaries.get(d) == "periodic" for d in dims)
        grid = _grid_from_axes(coordinates, spatial, periodic, path)
        n = attrs.get("n_trajectories")
        names, arrays, skipped = [], [], []
        for order, group_name in enumerate(("t0_fields", "t1_fields", "t2_fields")):
            if group_name not in f:
                continue
            group = f[group_name]
            for field in _field_names(group):
                dset = group[field]
                samples = dset.shape[0] if n is None else int(n)
                expected = (samples, *dset.shape[1:2], *spatial, *(len(dims),) * order)
                full = bool(dset.attrs.get("sample_varying", True)) and bool(dset.attrs.get("time_varying", True))
                full = full and bool(np.all(dset.attrs.get("dim_varying", True))) and dset.shape == expected
                if not full:
                    skipped.append(f"{group_name}/{field}")
                    continue
                arrays.append((field, order, dset))
        if not arrays:
            raise DataError(f"'{path}' has no field varying over samples, time and space; nothing to read")
        n, steps = arrays[0][2].shape[:2]
        stop = _stop(limit, n, path)
        channels = []
        for field, order, dset in arrays:
            if dset.shape[1] != steps:
                raise DataError(f"'{path}': field '{field}' has {dset.shape[1]} frames, others {steps}")
            values = np.asarray(dset[:stop], dtype=np.float32).reshape(stop, steps, *spatial, -1)
            channels.append(np.moveaxis(values, -1, 2))  # (n, t, components, *spatial)
            names += [field + "".join(index) if order else field for index in _components(dims, order)]
        time_data = f["dimensions"]["time"] if "time" in f["dimensions"] else None
        if time_data is None:
            raise DataError(f"'{path}': 'dimensions' has no 'time' dataset")
        time = np.asarray(time_data, dtype=np.float64)
        time = time.reshape(-1, time.shape[-1])[0]  # sample-varying times: the first sample's
        if time.shape[0] != steps:
            raise DataError(f"'{path}': 'dimensions/time' has {time.shape[0]} entries for {steps} frames")
    outputs = torch.from_numpy(np.concatenate(channels, axis=2))
    meta = {
        "format": "the-well",
        "dataset_name": attrs.get("dataset_name"),
        "simulation_parameters": {
            _text(p): attrs[_text(p)] for p in attrs.get("simulation_parameters", []) if _text(p) in attrs
        },
        "input_names": names,
        "output_names": names,
        "boundary_conditions": boundaries,
        "periodic": periodic,
        "skipped_fields": skipped,
        "n": stop,
    }
    return _field_data(outputs[:, 0], outputs, grid, meta, path, torch.from_numpy(time))


def _well_boundaries(f: h5py.File, dims: list[str]) -> dict[str, str]:
    """Boundary type per spatial dimension (``periodic``, ``wall``, ``open``), lower case."""
    out: dict[str, str] = {}
    for group in f.get("boundary_conditions", {}).values():
        kind = _text(group.attrs.get("bc_type", "")).lower()
        for dim in group.attrs.get("associated_dims", []):
            out[_text(dim)] = kind
    return {d: out.get(d, "unknown") for d in dims}


def _field_names(group: h5py.Group) -> list[str]:
    names = [_text(n) for n in group.attrs.get("field_names", [])]
    return names or sorted(group.keys())


def _components(dims: list[str], order: int) -> list[tuple[str, ...]]:
    """Component suffixes of a rank-``order`` field: ``[()]``, ``[("_x",), ...]``, ``[("_x", "x"), ...]``."""
    if order == 0:
        return [()]
    if order == 1:
        return [("_" + d,) for d in dims]
    return [("_" + a, b) for a in dims for b in dims]


# --- plain HDF5 --------------------------------------------------------------------------


def read_plain_hdf5(
    path: str | Path,
    limit: int | None = None,
    periodic: bool = False,
    inputs: str | None = None,
    outputs: str | None = None,
) -> FieldData:
    """Read a plain HDF5 file of an input and an output array (module docstring, ``hdf5``)."""
    path = Path(path)
    check_data_file(path)
    with _open_h5(path) as f:
        keys = [
            _plain_key(f, inputs, PLAIN_INPUTS, "input", path),
            _plain_key(f, outputs, PLAIN_OUTPUTS, "output", path),
        ]
        x, y = (f[key] for key in keys)
        ndim = x.ndim - 2
        if not 1 <= ndim <= 3:
            raise DataError(
                f"'{path}': '{keys[0]}' has shape {x.shape}; expected (n, channels, *spatial) with 1 to 3 spatial axes"
            )
        spatial = tuple(x.shape[2:])
        trajectory = y.ndim == ndim + 3
        if y.ndim not in (ndim + 2, ndim + 3) or tuple(y.shape[-ndim:]) != spatial or y.shape[0] != x.shape[0]:
            raise DataError(
                f"'{path}': '{keys[1]}' has shape {y.shape}, which does not fit '{keys[0]}' {x.shape}: expected "
                f"({x.shape[0]}, channels, {', '.join(map(str, spatial))}) or ({x.shape[0]}, time, channels, ...)"
            )
        stop = _stop(limit, x.shape[0], path)
        axes = [a for a in AXES[:ndim] if a in f and a not in keys]
        if axes and len(axes) != ndim:
            raise DataError(
                f"'{path}': coordinates {', '.join(axes)} given for {ndim}D fields; give all of {', '.join(AXES[:ndim])} or none"
            )
        grid = (
            _grid_from_axes([_dataset(f, a, path) for a in axes], spatial, periodic, path)
            if axes
            else Grid(spatial, periodic=periodic)
        )
        time = None
        if trajectory:
            t = np.asarray(_dataset(f, "time", path), dtype=np.float64).reshape(-1)
            if t.shape[0] != y.shape[1]:
                raise DataError(f"'{path}': 'time' has {t.shape[0]} entries for {y.shape[1]} frames")
            time = torch.from_numpy(t)
        names = [
            _names(f[key], channels, default)
            for key, channels, default in ((keys[0], x.shape[1], "x"), (keys[1], y.shape[-ndim - 1], "y"))
        ]
        values = [torch.from_numpy(np.asarray(a[:stop], dtype=np.float32)) for a in (x, y)]
    meta = {
        "format": "hdf5",
        "arrays": keys,
        "input_names": names[0],
        "output_names": names[1],
        "periodic": periodic,
        "n": stop,
    }
    return _field_data(values[0], values[1], grid, meta, path, time)


def _plain_key(f: h5py.File, key: str | None, defaults: tuple[str, ...], what: str, path: Path) -> str:
    if key is not None:
        if not isinstance(f.get(key), h5py.Dataset):
            raise DataError(
                f"'{path}' has no array '{key}' (its arrays: {', '.join(k for k in f if isinstance(f[k], h5py.Dataset))})"
            )
        return key
    for candidate in defaults:
        if isinstance(f.get(candidate), h5py.Dataset):
            return candidate
    raise DataError(f"'{path}' has no {what} array (looked for {', '.join(defaults)}); name it")


def _names(dset: h5py.Dataset, channels: int, default: str) -> list[str]:
    names = decode_attrs(dset.attrs).get("names")
    if isinstance(names, np.ndarray):
        names = [_text(n) for n in names.tolist()]
    if isinstance(names, list) and len(names) == channels:
        return [str(n) for n in names]
    return [default] if channels == 1 else [f"{default}{c}" for c in range(channels)]


# --- shared ------------------------------------------------------------------------------


def _grid_from_axes(axes: list[np.ndarray], spatial: tuple[int, ...], periodic: bool, path: Path) -> Grid:
    """The grid whose nodes are the (uniform) coordinates ``axes``."""
    domain = []
    for d, (x, n) in enumerate(zip(axes, spatial)):
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if x.shape[0] != n:
            raise DataError(f"'{path}': coordinate {AXES[d]} has {x.shape[0]} entries for {n} grid points")
        if n < 2:
            raise DataError(f"'{path}': coordinate {AXES[d]} has fewer than 2 points")
        h = (x[-1] - x[0]) / (n - 1)
        if not h > 0 or np.abs(np.diff(x) - h).max() > 1e-4 * abs(h):
            raise DataError(
                f"'{path}': coordinate {AXES[d]} is not uniformly increasing; only uniform grids are supported"
            )
        domain.append((x[0], x[0] + n * h) if periodic else (x[0], x[-1]))
    return Grid(tuple(spatial), tuple(domain), periodic=periodic)


def _field_data(
    inputs: torch.Tensor,
    outputs: torch.Tensor,
    grid: Grid,
    meta: dict[str, Any],
    path: Path,
    time: torch.Tensor | None = None,
) -> FieldData:
    inputs, outputs = inputs.to(torch.float32).contiguous(), outputs.to(torch.float32).contiguous()
    check_fields(inputs, grid, f"{path}: inputs")
    check_fields(outputs, grid, f"{path}: outputs")
    meta = {**meta, "grid": grid.to_dict()}
    return FieldData(inputs, outputs, grid, meta, path, time)


def _stop(limit: int | None, n: int, path: Path) -> int:
    if limit is None:
        return n
    if int(limit) != limit or limit < 1:
        raise DataError(f"limit must be a positive integer, got {limit}")
    if limit > n:
        raise DataError(f"'{path}': asked for {limit} samples but the file holds {n}")
    return int(limit)


def _dataset(group: h5py.Group, key: str, path: Path) -> np.ndarray:
    if key not in group:
        raise DataError(f"'{path}': missing dataset '{group.name.rstrip('/')}/{key}'")
    return np.asarray(group[key])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _open_h5(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"'{path}' is not a readable HDF5 file (truncated or corrupt?): {err}") from None
