r"""Spherical-harmonic transforms of scalar and tangent vector fields (extra ``sphere``).

.. math::

    f(\theta, \lambda) = \sum_{l=0}^{L-1} \sum_{m=-l}^{l} \hat f_{lm}\, Y_l^m(\theta, \lambda),

with orthonormal :math:`Y_l^m` on the unit sphere. For a real field only :math:`m \ge 0` is
stored: coefficients ``(..., L, L)`` complex, indexed ``[l, m]`` (zero for :math:`m > l`).
A tangent vector field :math:`\mathbf u = (u, v)` (eastward, northward) is written with a
stream function :math:`\psi` and a velocity potential :math:`\chi` as
:math:`\mathbf u = \mathbf k \times \nabla \psi + \nabla \chi`; its vector transform returns
:math:`(\hat\psi, \hat\chi)`, so that the vorticity and divergence are
:math:`\hat\zeta = -l(l+1)\hat\psi`, :math:`\hat\delta = -l(l+1)\hat\chi` on the unit sphere
(divide by the radius :math:`a` for velocities in physical units: :math:`\hat\zeta = -l(l+1)\hat\psi / a`
where :math:`\hat\psi` is the transform of :math:`\mathbf u`).

The transforms are the quadrature-based ones of torch-harmonics, on a
:class:`~oplearn.sphere.grid.SphereGrid`; they are differentiable and run on any device.
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from oplearn.extras import require
from oplearn.sphere.grid import SphereGrid


def laplacian_eigenvalues(
    degrees: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> torch.Tensor:
    r"""The eigenvalues :math:`-l(l+1)` of the Laplacian on the unit sphere, as ``(degrees, 1)``
    (broadcasts against coefficients ``(..., L, L)``)."""
    l = torch.arange(degrees, dtype=dtype, device=device)
    return (-l * (l + 1))[:, None]


class SphericalTransform(nn.Module):
    """Forward and inverse spherical-harmonic transforms on one grid, for degrees ``l < degrees``.

    Parameters
    ----------
    grid : SphereGrid
    degrees : int, optional
        :math:`L`; defaults to ``grid.max_degree`` (the most the grid resolves exactly). It may
        exceed it: the inverse then simply evaluates the expansion at the nodes.
    vector : bool
        Also build the vector transforms (:meth:`vector_forward`, :meth:`vector_inverse`).

    Shapes
    ------
    ``forward: (..., nlat, nlon) -> (..., L, L)`` complex; ``inverse`` the reverse.
    ``vector_forward: (..., 2, nlat, nlon) -> (..., 2, L, L)``; ``vector_inverse`` the reverse.
    """

    def __init__(self, grid: SphereGrid, degrees: int | None = None, vector: bool = False) -> None:
        super().__init__()
        th = require("torch_harmonics", "sphere")
        self.grid = grid
        self.degrees = int(degrees or grid.max_degree)
        if not 1 <= self.degrees <= grid.nlon // 2 + 1:
            raise ValueError(f"{self.degrees} degrees do not fit {grid.nlon} longitudes (at most {grid.nlon // 2 + 1})")
        args = dict(nlat=grid.nlat, nlon=grid.nlon, lmax=self.degrees, mmax=self.degrees, grid=grid.latitudes)
        self._forward = th.RealSHT(**args)
        self._inverse = th.InverseRealSHT(**args)
        self._vector_forward = th.RealVectorSHT(**args) if vector else None
        self._vector_inverse = th.InverseRealVectorSHT(**args) if vector else None

    def forward(self, field: torch.Tensor) -> torch.Tensor:
        return self._forward(field)

    def inverse(self, coefficients: torch.Tensor) -> torch.Tensor:
        return self._inverse(coefficients)

    def vector_forward(self, uv: torch.Tensor) -> torch.Tensor:
        r"""``(u, v)`` on the grid -> :math:`(\hat\psi, \hat\chi)` (see the module docstring)."""
        return self._vector_forward(uv)

    def vector_inverse(self, coefficients: torch.Tensor) -> torch.Tensor:
        r""":math:`(\hat\psi, \hat\chi)` -> ``(u, v)`` on the grid."""
        return self._vector_inverse(coefficients)


@lru_cache(maxsize=64)
def spherical_transform(
    grid: SphereGrid,
    degrees: int | None = None,
    vector: bool = False,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> SphericalTransform:
    """A shared :class:`SphericalTransform` with its tables in ``dtype`` on ``device`` (the tables
    take time to compute; models and solvers reuse them per grid)."""
    return SphericalTransform(grid, degrees, vector).to(device=device, dtype=dtype)
