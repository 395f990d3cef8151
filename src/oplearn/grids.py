"""Uniform Cartesian grids: the geometry shared by data, solvers, models and losses.

Two node conventions are used:

* ``periodic=True``: ``n`` nodes ``x_j = lo + j L / n``, ``j = 0..n-1`` (the right end is
  the left end again), spacing ``h = L / n``.
* ``periodic=False``: ``n`` nodes ``x_j = lo + j L / (n - 1)``, both boundaries included,
  spacing ``h = L / (n - 1)``.

Refining by an integer factor ``r`` gives a grid whose every ``r``-th node is a node of the
coarse grid, so a field solved on the fine grid is subsampled exactly by ``[::r]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Grid:
    """A uniform grid on a box.

    Parameters
    ----------
    shape : tuple of int
        Number of nodes per dimension.
    domain : tuple of (float, float)
        ``(lo, hi)`` per dimension; defaults to the unit box.
    periodic : bool
        Whether the grid is periodic (see the module docstring for the node convention).
    """

    shape: tuple[int, ...]
    domain: tuple[tuple[float, float], ...] = ()
    periodic: bool = False

    def __post_init__(self) -> None:
        shape = tuple(int(n) for n in self.shape)
        object.__setattr__(self, "shape", shape)
        if not self.domain:
            object.__setattr__(self, "domain", tuple((0.0, 1.0) for _ in shape))
        domain = tuple((float(lo), float(hi)) for lo, hi in self.domain)
        object.__setattr__(self, "domain", domain)
        if len(domain) != len(shape):
            raise ValueError(f"grid has {len(shape)} dimensions but {len(domain)} domain intervals")
        minimum = 1 if self.periodic else 2
        if any(n < minimum for n in shape):
            raise ValueError(f"grid shape {shape} needs at least {minimum} nodes per dimension")
        if any(hi <= lo for lo, hi in domain):
            raise ValueError(f"grid domain {domain} has an empty interval")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def lengths(self) -> tuple[float, ...]:
        return tuple(hi - lo for lo, hi in self.domain)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Node spacing ``h`` per dimension."""
        if self.periodic:
            return tuple(length / n for length, n in zip(self.lengths, self.shape))
        return tuple(length / (n - 1) for length, n in zip(self.lengths, self.shape))

    @property
    def cell_volume(self) -> float:
        return math.prod(self.spacing)

    def axes(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> list[torch.Tensor]:
        """The 1D node coordinates of every dimension, each of shape ``(n_d,)``."""
        return [
            (lo + h * torch.arange(n, dtype=torch.float64, device=device)).to(dtype)
            for (lo, _), h, n in zip(self.domain, self.spacing, self.shape)
        ]

    def coordinates(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> torch.Tensor:
        """Node coordinates stacked as channels, shape ``(ndim, *shape)``."""
        return torch.stack(torch.meshgrid(*self.axes(dtype, device), indexing="ij"))

    def wavenumbers(self, device: torch.device | str | None = None) -> list[torch.Tensor]:
        """Angular wavenumbers ``2 pi k / L`` of a periodic grid's FFT, per dimension."""
        return [
            2 * math.pi * torch.fft.fftfreq(n, d=1.0 / n, device=device, dtype=torch.float64) / length
            for n, length in zip(self.shape, self.lengths)
        ]

    def refine(self, factor: int) -> Grid:
        """The grid whose every ``factor``-th node is a node of this one."""
        if factor < 1:
            raise ValueError(f"refinement factor must be >= 1, got {factor}")
        if self.periodic:
            shape = tuple(n * factor for n in self.shape)
        else:
            shape = tuple((n - 1) * factor + 1 for n in self.shape)
        return Grid(shape, self.domain, self.periodic)

    def with_shape(self, shape: tuple[int, ...]) -> Grid:
        """The same domain and boundary convention at another resolution."""
        return Grid(tuple(shape), self.domain, self.periodic)

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "domain": [list(d) for d in self.domain], "periodic": self.periodic}

    @classmethod
    def from_dict(cls, d: dict) -> Grid:
        """The grid of :meth:`to_dict`; a latitude-longitude grid when ``d`` names its latitudes."""
        if "latitudes" in d:
            from oplearn.sphere.grid import SphereGrid

            return SphereGrid.from_dict(d)
        return cls(tuple(d["shape"]), tuple(tuple(x) for x in d["domain"]), bool(d["periodic"]))


def boundary_values(field: torch.Tensor, grid: Grid) -> torch.Tensor:
    """The values of ``field`` at the boundary nodes of a bounded grid, in C order.

    Shapes: ``(..., *grid.shape) -> (..., n_boundary)`` with
    ``n_boundary = prod(shape) - prod(shape - 2)``.
    """
    if grid.periodic:
        raise ValueError("a periodic grid has no boundary nodes")
    if tuple(field.shape[field.ndim - grid.ndim :]) != grid.shape:
        raise ValueError(f"field of shape {tuple(field.shape)} does not end with the grid shape {grid.shape}")
    mask = torch.zeros(grid.shape, dtype=torch.bool, device=field.device)
    for d in range(grid.ndim):
        mask.index_fill_(d, torch.tensor([0, grid.shape[d] - 1], device=field.device), True)
    return field[..., mask]


def subsample(field: torch.Tensor, factor: int, ndim: int) -> torch.Tensor:
    """Keep every ``factor``-th node along the last ``ndim`` axes of ``field``."""
    index = (Ellipsis,) + (slice(None, None, factor),) * ndim
    return field[index]
