"""A lazily reading ``torch.utils.data.Dataset`` over an oplearn dataset file.

Only the header is read when the dataset is built; each ``dataset[i]`` reads one sample (one
HDF5 chunk of each array, already strided when subsampling) and :meth:`FieldDataset.read` a
batch of samples in one HDF5 call per array, so memory does not grow with the file. The HDF5 file is opened on first access in each process and reopened when the
process id changes, so a dataset built (and even used) in the parent works in the worker
processes of a ``DataLoader(num_workers > 0)``: a forked worker never reuses the parent's
file handle, and a pickled dataset carries no handle at all.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from oplearn.data.files import read_meta, require_grid
from oplearn.errors import DataError
from oplearn.grids import Grid


def strided_grid(grid: Grid, stride: int) -> Grid:
    """The grid of the nodes ``[::stride]`` of ``grid`` in every dimension.

    A periodic grid needs ``stride`` to divide its size (otherwise the kept nodes are not
    equally spaced across the wrap). A bounded grid keeps its first node; its domain ends at
    the last kept node, which is the original end only when ``stride`` divides ``n - 1``.
    """
    if int(stride) != stride or stride < 1:
        raise DataError(f"stride must be a positive integer, got {stride}")
    if stride == 1:
        return grid
    if grid.periodic:
        if any(n % stride for n in grid.shape):
            raise DataError(f"stride {stride} does not divide the periodic grid {grid.shape}; choose a divisor")
        return Grid(tuple(n // stride for n in grid.shape), grid.domain, periodic=True)
    shape = tuple((n - 1) // stride + 1 for n in grid.shape)
    if any(m < 2 for m in shape):
        raise DataError(f"stride {stride} leaves fewer than 2 nodes of the grid {grid.shape}")
    domain = tuple((lo, lo + (m - 1) * stride * h) for (lo, _), m, h in zip(grid.domain, shape, grid.spacing))
    return Grid(shape, domain, periodic=False)


def _float32(array: np.ndarray | h5py.Dataset) -> torch.Tensor:
    return torch.from_numpy(np.asarray(array, dtype=np.float32))


class PerProcessFile:
    """A read-only HDF5 handle on ``self.path``, opened on first use in each process and never
    pickled, for datasets read from ``DataLoader`` workers."""

    path: Path
    _file: h5py.File | None = None
    _pid: int | None = None

    def close(self) -> None:
        """Close this process's file handle (reopened on the next access)."""
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        self._file, self._pid = None, None

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")  # never the parent's handle after a fork
            self._pid = os.getpid()
        return self._file

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None
        return state


class FieldDataset(PerProcessFile, Dataset):
    """Samples ``(input, output)`` of a complete oplearn dataset file, read lazily.

    Parameters
    ----------
    path : str or Path
        An oplearn dataset file (see :mod:`oplearn.data.files`); it must be complete.
    stride : int
        Keep every ``stride``-th node in each spatial dimension (:func:`strided_grid`): a
        coarser dataset read directly from the fine file.
    indices : sequence of int, optional
        The samples (and their order) to expose; all by default.

    Attributes
    ----------
    grid : the (strided) grid of the returned fields
    meta : the file's header (JSON decoded)
    time : output times of trajectory data, else ``None``

    Shapes
    ------
    ``dataset[i]``: ``input (c_in, *grid.shape)``, ``output (c_out, *grid.shape)`` or
    ``(time, c_out, *grid.shape)``, both float32.
    """

    def __init__(self, path: str | Path, stride: int = 1, indices: Sequence[int] | None = None) -> None:
        self.path = Path(path)
        self.meta = read_meta(self.path)
        require_grid(self.meta, self.path)
        self.stride = int(stride)
        self.grid = strided_grid(Grid.from_dict(self.meta["grid"]), stride)
        n = int(self.meta["n"])
        self.indices = list(range(n)) if indices is None else [int(i) for i in indices]
        bad = [i for i in self.indices if not 0 <= i < n]
        if bad:
            raise DataError(f"'{self.path}' holds {n} samples; indices {bad[:5]} are out of range")
        self._rows = torch.tensor(self.indices, dtype=torch.long)
        with h5py.File(self.path, "r") as f:
            self.time = torch.from_numpy(np.asarray(f["time"][:], dtype=np.float64)) if "time" in f else None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} is out of range for {len(self)} samples")
        f = self._handle()
        sample = self.indices[i]
        space = (slice(None, None, self.stride),) * self.grid.ndim
        x = f["inputs"][(sample, Ellipsis, *space)]
        y = f["outputs"][(sample, Ellipsis, *space)]
        return _float32(x), _float32(y)

    def read(self, positions: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The samples at ``positions`` (any order, repeats allowed) as two batches.

        The distinct file rows are read in increasing order with one HDF5 selection per
        array (a slice when they are consecutive, else a point list), then put in the
        order asked for.

        Shapes: ``positions (b,)`` -> ``inputs (b, c_in, *grid.shape)``, ``outputs (b, c_out,
        *grid.shape)`` or ``(b, time, c_out, *grid.shape)``, float32.
        """
        positions = torch.as_tensor(positions, dtype=torch.long).reshape(-1)
        if len(positions) and not (-len(self) <= int(positions.min()) and int(positions.max()) < len(self)):
            raise IndexError(f"positions {positions.tolist()[:5]}... are out of range for {len(self)} samples")
        rows = self._rows[positions]
        unique, order = torch.unique(rows, sorted=True, return_inverse=True)
        first, last = (int(unique[0]), int(unique[-1])) if len(unique) else (0, -1)
        selection = slice(first, last + 1) if last - first + 1 == len(unique) else unique.tolist()
        space = (slice(None, None, self.stride),) * self.grid.ndim
        f = self._handle()
        x = f["inputs"][(selection, Ellipsis, *space)]
        y = f["outputs"][(selection, Ellipsis, *space)]
        return _float32(x)[order], _float32(y)[order]
