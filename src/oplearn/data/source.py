"""Where a training task's samples come from: tensors in memory, or the file read lazily.

A :class:`~oplearn.training.tasks.FieldTask` asks its training and validation *sources* for
samples by position: :meth:`FieldSource.read` returns the samples asked for, in that order,
as a :class:`~oplearn.data.files.FieldData`; :meth:`FieldSource.chunks` walks all of them
in order (normaliser statistics, validation). Both sources apply the task's view of the raw
file samples (``prepare``, e.g. trajectories split into frames in and frames out) and give
the same values, so a run trains to the same weights either way.

* :class:`MemorySource` holds the prepared samples as tensors (``data.lazy: false``, the
  default: fastest while the data fits in memory).
* :class:`LazySource` (``data.lazy: true``) reads each request from the HDF5 file, an
  ordinary one or one assembled from shards (:mod:`oplearn.data.generate`), through
  :meth:`oplearn.data.dataset.FieldDataset.read`; memory then does not grow with the file.
  Under ``torchrun`` each rank asks only for its own share of every global batch, so it
  reads only those samples: the loop's seeded per-epoch permutation, split by rank, is the
  distributed sampler.

``prepare`` must act sample by sample (as :func:`~oplearn.training.tasks.map_view` does),
so that preparing a batch gives the rows of the prepared whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from oplearn.data.dataset import FieldDataset
from oplearn.data.files import FieldData, check_fields
from oplearn.grids import Grid

Prepare = Callable[[FieldData], FieldData]


class FieldSource:
    """Prepared samples ``0 .. len - 1`` of one part (training or validation) of a dataset file."""

    grid: Grid

    def __len__(self) -> int:
        raise NotImplementedError

    def read(self, positions: torch.Tensor) -> FieldData:
        """The samples at ``positions`` (int64 ``(b,)``, any order, repeats allowed), in that order."""
        raise NotImplementedError

    def chunks(self, size: int) -> Iterator[FieldData]:
        """All samples in order, ``size`` at a time (the last chunk may be shorter)."""
        for start in range(0, len(self), size):
            yield self.read(torch.arange(start, min(start + size, len(self))))


class MemorySource(FieldSource):
    """Samples held in memory (already prepared)."""

    def __init__(self, data: FieldData) -> None:
        self.data = data
        self.grid = data.grid

    def __len__(self) -> int:
        return len(self.data)

    def read(self, positions: torch.Tensor) -> FieldData:
        return self.data.select(positions)

    def chunks(self, size: int) -> Iterator[FieldData]:
        for start in range(0, len(self), size):  # views, no copies
            yield self.data.select(slice(start, start + size))


class LazySource(FieldSource):
    """Samples ``start .. stop - 1`` of the dataset file ``path``, read when asked for.

    Each :meth:`read` is one HDF5 selection per array (the distinct rows in increasing
    order), checked like :func:`~oplearn.data.files.load_fields` checks a whole file
    (finite float data on the file's grid), then prepared.
    """

    def __init__(self, path: str | Path, start: int, stop: int, prepare: Prepare) -> None:
        self.dataset = FieldDataset(path, indices=range(start, stop))
        self.grid = self.dataset.grid
        self.prepare = prepare

    def __len__(self) -> int:
        return len(self.dataset)

    def read(self, positions: torch.Tensor) -> FieldData:
        inputs, outputs = self.dataset.read(positions)
        path = self.dataset.path
        check_fields(inputs, self.grid, f"{path}: inputs")
        check_fields(outputs, self.grid, f"{path}: outputs")
        return self.prepare(FieldData(inputs, outputs, self.grid, self.dataset.meta, path, self.dataset.time))
