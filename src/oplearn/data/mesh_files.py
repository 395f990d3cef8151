"""The oplearn mesh dataset: fields on point clouds and meshes whose node count varies by sample.

An oplearn dataset file (:mod:`oplearn.data.files`) with the root attribute
``layout = "mesh"``. Samples are stored one after another ("ragged"): sample ``i`` owns the
rows ``node_offsets[i]:node_offsets[i + 1]`` of every node array and the rows
``triangle_offsets[i]:triangle_offsets[i + 1]`` of ``triangles``.

Layout
------
``node_offsets``
    ``(n + 1,)`` int64, ``node_offsets[0] = 0``.
``nodes``
    ``(total_nodes, d)`` float64: node coordinates.
``inputs``, ``outputs``
    ``(total_nodes, c_in)``, ``(total_nodes, c_out)`` float32, attribute ``names`` (channel
    names).
``triangle_offsets``
    ``(n + 1,)`` int64 (all zero for point clouds without triangles).
``triangles``
    ``(total_triangles, 3)`` int32: node indices local to their sample (0 is its first node).
root attributes
    those of every oplearn dataset (``format``, ``format_version``, ``pde``, ``pde_params``,
    ``seed``, ``n``, ``chunk_size``, ``n_complete``, ``versions``, ``created``) plus
    ``layout = "mesh"`` and ``mesh`` (JSON: ``resolution`` and element ``size`` of generated
    meshes, ``null`` for converted ones) instead of ``grid``.

Offsets are int64, so a file may hold more than :math:`2^{31}` nodes. The node arrays are
chunked and resizable: a writer appends one chunk of samples at a time and advances
``n_complete`` after the offsets; a resumed writer first cuts the arrays back to
``node_offsets[n_complete]``. Shards and assembled files follow :mod:`oplearn.data.generate`:
the assembled file holds the global offsets as ordinary arrays and the node arrays as
virtual datasets over the shards.

:class:`MeshDataset` reads one sample at a time (two offset reads and one slice per array);
:func:`write_meshes` writes a complete file from samples in memory (e.g. converted meshes).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from oplearn.data.dataset import PerProcessFile
from oplearn.data.files import FORMAT, FORMAT_VERSION, read_meta
from oplearn.errors import DataError
from oplearn.geometry.mesh import MeshSample

if TYPE_CHECKING:
    from oplearn.pdes.mesh_base import MeshPDE

LAYOUT = "mesh"
NODE_ARRAYS = ("nodes", "inputs", "outputs")
_ROWS_PER_CHUNK = 1 << 12


def is_mesh_meta(meta: dict[str, Any]) -> bool:
    """Whether a dataset header describes a mesh dataset."""
    return meta.get("layout") == LAYOUT


class MeshLayout:
    """How :mod:`oplearn.data.generate` creates, appends to, resumes and assembles mesh files."""

    @staticmethod
    def recipe(pde: MeshPDE, resolution: int) -> dict[str, Any]:
        """The root attributes that describe the meshes of a generated file."""
        return {
            "layout": LAYOUT,
            "mesh": json.dumps({"resolution": int(resolution), "size": pde.mesh_size(resolution)}),
        }

    @staticmethod
    def create(f: h5py.File, n: int, dim: int, input_names: Sequence[str], output_names: Sequence[str]) -> None:
        """Empty, resizable arrays for ``n`` samples."""
        for key in ("node_offsets", "triangle_offsets"):
            f.create_dataset(key, data=np.zeros(n + 1, dtype=np.int64))
        f.create_dataset("nodes", shape=(0, dim), maxshape=(None, dim), dtype="float64", chunks=(_ROWS_PER_CHUNK, dim))
        for key, names in (("inputs", input_names), ("outputs", output_names)):
            width = max(1, len(names))  # chunks must be non-empty, even for zero channels (geometry-only inputs)
            dset = f.create_dataset(
                key, shape=(0, len(names)), maxshape=(None, width), dtype="float32", chunks=(_ROWS_PER_CHUNK, width)
            )
            dset.attrs["names"] = json.dumps(list(names))
        f.create_dataset("triangles", shape=(0, 3), maxshape=(None, 3), dtype="int32", chunks=(_ROWS_PER_CHUNK, 3))

    @classmethod
    def create_for(cls, f: h5py.File, pde: MeshPDE, n: int, resolution: int) -> None:
        """The arrays of ``n`` samples of the mesh PDE ``pde``."""
        cls.create(f, n, pde.ndim, pde.input_names, pde.output_names)

    @staticmethod
    def resume(f: h5py.File, start: int) -> None:
        """Cut the arrays back to the rows of the first ``start`` samples (drop a killed chunk)."""
        nodes, triangles = int(f["node_offsets"][start]), int(f["triangle_offsets"][start])
        for key in NODE_ARRAYS:
            f[key].resize(nodes, axis=0)
        f["triangles"].resize(triangles, axis=0)

    @staticmethod
    def write(f: h5py.File, start: int, samples: Sequence[MeshSample], what: str) -> None:
        """Append ``samples`` as samples ``start, start + 1, ...`` (after :meth:`resume` to ``start``)."""
        for sample in samples:
            arrays = (sample.nodes, sample.inputs, sample.outputs)
            if not all(bool(torch.isfinite(torch.as_tensor(a)).all()) for a in arrays):
                raise DataError(f"{what} produced non-finite values; check the PDE parameters")
        node_counts = np.array([len(s.nodes) for s in samples], dtype=np.int64)
        triangle_counts = np.array([0 if s.triangles is None else len(s.triangles) for s in samples], dtype=np.int64)
        for offsets, counts, keys, parts in (
            ("node_offsets", node_counts, NODE_ARRAYS, [[s.nodes, s.inputs, s.outputs] for s in samples]),
            (
                "triangle_offsets",
                triangle_counts,
                ("triangles",),
                [[s.triangles if s.triangles is not None else np.zeros((0, 3))] for s in samples],
            ),
        ):
            base = int(f[offsets][start])
            f[offsets][start + 1 : start + 1 + len(samples)] = base + np.cumsum(counts)
            for j, key in enumerate(keys):
                dset = f[key]
                dset.resize(base + int(counts.sum()), axis=0)
                if counts.sum():
                    dset[base:] = np.concatenate(
                        [np.asarray(torch.as_tensor(p[j]).cpu().numpy(), dtype=dset.dtype) for p in parts]
                    )

    @staticmethod
    def assemble(
        f: h5py.File, shards: list[tuple[str, Path]], chunks: list[list[tuple[int, int, int]]], n: int, chunk_size: int
    ) -> None:
        """Global offsets and virtual node arrays over complete shard files.

        ``shards`` are ``(name relative to f's folder, path)``; ``chunks[i]`` the global
        ``(chunk, lo, hi)`` that shard ``i`` holds, in its row order (``chunk_size`` is implied).
        """
        local = []
        node_counts, triangle_counts = np.zeros(n, np.int64), np.zeros(n, np.int64)
        for (_, path), shard_chunks in zip(shards, chunks):
            with h5py.File(path, "r") as src:
                offsets = (src["node_offsets"][:], src["triangle_offsets"][:])
                shapes = {key: src[key].shape[1:] for key in (*NODE_ARRAYS, "triangles")}
                dtypes = {key: src[key].dtype for key in (*NODE_ARRAYS, "triangles")}
                names = {key: src[key].attrs["names"] for key in ("inputs", "outputs")}
            local.append(offsets)
            pos = 0
            for _, lo, hi in shard_chunks:
                node_counts[lo:hi] = np.diff(offsets[0][pos : pos + hi - lo + 1])
                triangle_counts[lo:hi] = np.diff(offsets[1][pos : pos + hi - lo + 1])
                pos += hi - lo
        global_offsets = [np.concatenate([[0], np.cumsum(c)]) for c in (node_counts, triangle_counts)]
        f["node_offsets"], f["triangle_offsets"] = global_offsets
        for key in (*NODE_ARRAYS, "triangles"):
            which = 1 if key == "triangles" else 0
            total = int(global_offsets[which][-1])
            layout = h5py.VirtualLayout(shape=(total, *shapes[key]), dtype=dtypes[key])
            for (name, _), shard_chunks, offsets in zip(shards, chunks, local):
                rows = int(offsets[which][-1])
                if not rows:
                    continue
                source = h5py.VirtualSource(name, key, shape=(rows, *shapes[key]), dtype=dtypes[key])
                pos = 0
                for _, lo, hi in shard_chunks:
                    a, b = int(offsets[which][pos]), int(offsets[which][pos + hi - lo])
                    g = int(global_offsets[which][lo])
                    if b > a:
                        layout[g : g + b - a] = source[a:b]
                    pos += hi - lo
            fill = 0 if key == "triangles" else np.nan  # a missing shard reads as NaN, which readers reject
            dset = f.create_virtual_dataset(key, layout, fillvalue=fill)
            if key in names:
                dset.attrs["names"] = names[key]


def write_meshes(
    path: str | Path,
    samples: Sequence[MeshSample],
    input_names: Sequence[str],
    output_names: Sequence[str],
    pde: str = "external",
    pde_params: dict[str, Any] | None = None,
    seed: int = 0,
    mesh: dict | None = None,
) -> Path:
    """Write ``samples`` as a complete mesh dataset file (through ``<path>.partial``).

    ``input_names``/``output_names`` name the channels of ``inputs (N, c_in)`` and ``outputs
    (N, c_out)`` (either may have zero channels); ``pde``, ``pde_params`` and ``seed`` say
    where the data came from; ``mesh`` is recorded as the ``mesh`` attribute.
    """
    path = Path(path)
    if not samples:
        raise DataError(f"{path}: no samples to write")
    dims = {int(s.nodes.shape[1]) for s in samples}
    if len(dims) != 1:
        raise DataError(f"{path}: samples mix {sorted(dims)}-dimensional nodes")
    for i, s in enumerate(samples):
        n_nodes = len(s.nodes)
        if s.inputs.shape != (n_nodes, len(input_names)) or s.outputs.shape != (n_nodes, len(output_names)):
            raise DataError(
                f"{path}: sample {i} has {n_nodes} nodes but inputs {tuple(s.inputs.shape)} and outputs "
                f"{tuple(s.outputs.shape)}; expected ({n_nodes}, {len(input_names)}) and ({n_nodes}, {len(output_names)})"
            )
        if (
            s.triangles is not None
            and len(s.triangles)
            and (int(s.triangles.min()) < 0 or int(s.triangles.max()) >= n_nodes)
        ):
            raise DataError(f"{path}: sample {i} has triangles indexing nodes outside 0..{n_nodes - 1}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with h5py.File(partial, "w") as f:
        f.attrs.update(
            {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "layout": LAYOUT,
                "pde": pde,
                "pde_params": json.dumps(pde_params or {}),
                "mesh": json.dumps(mesh),
                "seed": int(seed),
                "n": len(samples),
                "chunk_size": len(samples),
                "n_complete": 0,
            }
        )
        MeshLayout.create(f, len(samples), dims.pop(), input_names, output_names)
        MeshLayout.write(f, 0, samples, str(path))
        f.attrs["n_complete"] = len(samples)
        f.attrs["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    os.replace(partial, path)
    return path


class MeshDataset(PerProcessFile, Dataset):
    """The samples of a complete mesh dataset file, read lazily one at a time.

    Only the header and the two offset arrays are read when it is built. The HDF5 file is
    opened on first access in each process (so it works in ``DataLoader`` workers, like
    :class:`oplearn.data.dataset.FieldDataset`).

    Parameters
    ----------
    path : str or Path
        A mesh dataset file (``layout = "mesh"``).
    indices : sequence of int, optional
        The samples (and their order) to expose; all by default.

    Shapes
    ------
    ``dataset[i]``: a :class:`~oplearn.geometry.mesh.MeshSample` with ``nodes (N_i, d)`` float64,
    ``inputs (N_i, c_in)``, ``outputs (N_i, c_out)`` float32, ``triangles (T_i, 3)`` int64 or ``None``.
    """

    def __init__(self, path: str | Path, indices: Sequence[int] | None = None) -> None:
        self.path = Path(path)
        self.meta = read_meta(self.path)
        if not is_mesh_meta(self.meta):
            raise DataError(
                f"'{self.path}' holds grid fields, not meshes; read it with oplearn.data.dataset.FieldDataset"
            )
        with h5py.File(self.path, "r") as f:
            self.node_offsets = f["node_offsets"][:]
            self.triangle_offsets = f["triangle_offsets"][:]
            self.input_names = json.loads(f["inputs"].attrs["names"])
            self.output_names = json.loads(f["outputs"].attrs["names"])
        n = int(self.meta["n"])
        self.indices = list(range(n)) if indices is None else [int(i) for i in indices]
        bad = [i for i in self.indices if not 0 <= i < n]
        if bad:
            raise DataError(f"'{self.path}' holds {n} samples; indices {bad[:5]} are out of range")

    def __len__(self) -> int:
        return len(self.indices)

    def nodes_per_sample(self) -> np.ndarray:
        """The node count of each exposed sample ``(len(self),)``."""
        return np.diff(self.node_offsets)[self.indices]

    def __getitem__(self, i: int) -> MeshSample:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} samples")
        sample = self.indices[i]
        f = self._handle()
        a, b = int(self.node_offsets[sample]), int(self.node_offsets[sample + 1])
        ta, tb = int(self.triangle_offsets[sample]), int(self.triangle_offsets[sample + 1])
        nodes = torch.from_numpy(np.asarray(f["nodes"][a:b], dtype=np.float64))
        inputs = torch.from_numpy(np.asarray(f["inputs"][a:b], dtype=np.float32))
        outputs = torch.from_numpy(np.asarray(f["outputs"][a:b], dtype=np.float32))
        triangles = torch.from_numpy(np.asarray(f["triangles"][ta:tb], dtype=np.int64)) if tb > ta else None
        for name, x in (("nodes", nodes), ("inputs", inputs), ("outputs", outputs)):
            if not torch.isfinite(x).all():
                raise DataError(
                    f"'{self.path}': {name} of sample {sample} contain NaN or infinite values (a missing shard?); regenerate or clean the data"
                )
        if triangles is not None and (int(triangles.min()) < 0 or int(triangles.max()) >= b - a):
            raise DataError(
                f"'{self.path}': triangles of sample {sample} index nodes outside the sample; the file is damaged"
            )
        return MeshSample(nodes, inputs, outputs, triangles)
