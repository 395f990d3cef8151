"""A human-readable card describing a dataset file (``oplearn info FILE.h5``).

Only headers and array shapes are read, never the arrays, so describing a large file is
instant. Unfinished files (``<name>.partial``) are described too, with their progress.
Files of other formats get a short structural summary.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from oplearn.data.files import FORMAT, decode_attrs
from oplearn.data.readers import detect_format
from oplearn.errors import DataError
from oplearn.grids import Grid


def describe(path: str | Path) -> str:
    """The dataset card of ``path``: PDE, parameters, grid, samples, shapes, channel names, seed,
    time axis, versions and completeness, one item per line."""
    path = Path(path)
    if not path.exists():
        partial = path.with_name(path.name + ".partial")
        if not partial.exists():
            raise DataError(f"data file '{path}' does not exist")
        path = partial
    if not h5py.is_hdf5(path):
        return _external_card(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise DataError(f"'{path}' is not a readable HDF5 file (truncated or corrupt?): {err}") from None
    with f:
        meta = decode_attrs(f.attrs)
        if meta.get("format") != FORMAT:
            return _external_card(path, f)
        return "\n".join(_oplearn_lines(path, f, meta))


def _oplearn_lines(path: Path, f: h5py.File, meta: dict) -> list[str]:
    n, done = meta.get("n"), meta.get("n_complete")
    if n is not None and done == n and not path.name.endswith(".partial"):
        status = f"complete ({n} of {n} samples)"
    else:
        status = f"incomplete: {done} of {n} samples written; rerun its generate command to finish it"
    lines = [
        f"oplearn dataset  {path} ({_size(path)})",
        f"status      {status}",
        f"pde         {meta.get('pde', 'unknown')}",
        f"parameters  {_params(meta.get('pde_params'))}",
    ]
    mesh = meta.get("layout") == "mesh"
    if isinstance(meta.get("grid"), dict):
        lines.append(f"grid        {_grid(Grid.from_dict(meta['grid']))}")
    if mesh:
        lines += _mesh_lines(f, meta, done)
    lines.append(f"samples     {n} (written in chunks of {meta.get('chunk_size', '?')})")
    for key in ("inputs", "outputs"):
        if key in f:
            dset = f[key]
            names = decode_attrs(dset.attrs).get("names", [])
            where = " (rows: nodes of all samples)" if mesh else ""
            lines.append(
                f"{key:<11} {tuple(dset.shape)} {dset.dtype}{where}, channels: {', '.join(map(str, names)) or '?'}"
            )
        else:
            lines.append(f"{key:<11} missing (damaged file)")
    if not mesh:
        lines.append(
            f"time        {_time(np.asarray(f['time'][:], dtype=np.float64)) if 'time' in f else 'steady (no time axis)'}"
        )
    source = meta.get("source")
    if isinstance(source, dict):
        lines.append(
            f"source      converted from {source.get('path')} ({source.get('format')}, sha256 "
            f"{str(source.get('sha256'))[:16]}..., {source.get('converted')})"
        )
    else:
        lines.append(f"seed        {meta.get('seed', '?')}")
    lines.append(f"created     {meta.get('created', 'not finished')}")
    versions = meta.get("versions")
    if isinstance(versions, dict):
        lines.append("versions    " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    lines.append(f"format      {FORMAT} v{meta.get('format_version', '?')}")
    return lines


def _mesh_lines(f: h5py.File, meta: dict, done: int | None) -> list[str]:
    """The layout, the meshes' resolution and the nodes and triangles per written sample
    (only the offset arrays are read)."""
    spec = meta.get("mesh") if isinstance(meta.get("mesh"), dict) else {}
    made = (
        f"resolution {spec['resolution']}, element size h = {spec['size']:.4g}"
        if spec.get("resolution")
        else "imported meshes"
    )
    lines = [
        f"layout      ragged point clouds / meshes, {f['nodes'].shape[1]}D nodes ({made})"
        if "nodes" in f
        else "layout      ragged (damaged: no nodes)"
    ]
    written = int(done or 0)
    for key, what in (("node_offsets", "nodes"), ("triangle_offsets", "triangles")):
        if key in f and written:
            counts = np.diff(f[key][: written + 1])
            lines.append(
                f"{what:<11} {int(counts.sum())} in all, per sample {counts.min()} .. {counts.max()} (mean {counts.mean():.0f})"
            )
    return lines


def _params(params: object) -> str:
    if not isinstance(params, dict) or not params:
        return "none recorded"
    return ", ".join(f"{k}={v}" for k, v in sorted(params.items()))


def _grid(grid: Grid) -> str:
    shape = " x ".join(map(str, grid.shape))
    if hasattr(grid, "latitudes"):  # an oplearn.sphere.grid.SphereGrid
        return f"{shape} latitude-longitude nodes on the sphere, {grid.latitudes} latitudes"
    domain = " x ".join(f"[{lo:g}, {hi:g}]" for lo, hi in grid.domain)
    spacing = " x ".join(f"{h:.4g}" for h in grid.spacing)
    kind = "periodic (the right end is the left end again)" if grid.periodic else "bounded (both ends are nodes)"
    return f"{shape} nodes on {domain}, {kind}, spacing {spacing}"


def _time(t: np.ndarray) -> str:
    if t.size == 0:
        return "empty time axis"
    text = f"{t.size} frames, t = {t[0]:g} .. {t[-1]:g}"
    if t.size > 1:
        steps = np.diff(t)
        text += f", step {steps[0]:g}" if np.allclose(steps, steps[0], rtol=1e-6, atol=0) else ", uneven steps"
    return text


def _size(path: Path) -> str:
    size = float(path.stat().st_size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def _external_card(path: Path, f: h5py.File | None = None) -> str:
    """A short summary of a file that is not an oplearn dataset: its detected format and arrays."""
    try:
        kind = detect_format(path)
    except DataError as err:
        raise DataError(f"'{path}' is not an oplearn dataset and not a known format: {err}") from None
    lines = [
        f"{kind} file  {path} ({_size(path)})",
        f"not an oplearn dataset: train and evaluate read it directly; 'oplearn convert {path} OUT.h5' makes one",
    ]
    if f is not None:
        datasets: list[str] = []
        f.visititems(
            lambda name, item: (
                datasets.append(f"  {name} {item.shape} {item.dtype}") if isinstance(item, h5py.Dataset) else None
            )
        )
        lines += datasets[:20] + ([f"  ... and {len(datasets) - 20} more datasets"] if len(datasets) > 20 else [])
    return "\n".join(lines)
