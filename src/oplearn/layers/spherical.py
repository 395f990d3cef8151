"""Spherical convolution: a learned multiplier, one per degree, on the spherical harmonics of a field."""

from __future__ import annotations

import math

import torch
from torch import nn

from oplearn.sphere.grid import SphereGrid
from oplearn.sphere.harmonics import spherical_transform


class SphericalConv(nn.Module):
    r"""Convolution on the sphere with a learned zonal kernel, band-limited to degrees :math:`l < L`.

    .. math::

        \hat v_{o, lm} = \sum_i W_{io}(l)\, \hat u_{i, lm} \quad (l < L), \qquad \hat v_{o, lm} = 0 \quad (l \ge L),

    with :math:`\hat u` the spherical-harmonic coefficients of the input
    (:mod:`oplearn.sphere.harmonics`) on the latitude-longitude grid of its shape. By the
    Funk-Hecke theorem this is the convolution with a kernel that depends only on the angle
    between two points, so the layer commutes with every rotation of the sphere: exactly for the
    rotations that map the grid to itself (longitude shifts, the half turn about an equatorial
    axis), up to the transform's accuracy otherwise. The weights are real (a complex multiplier
    would break the symmetry between :math:`\pm m`), shaped ``(in_channels, out_channels, L)``,
    drawn uniformly from :math:`\pm 1/\sqrt{\mathrm{in\_channels}}`. The transforms run in
    float32 (or float64 for float64 inputs); band-limited inputs sampled on any grid that resolves
    :math:`L` degrees give samples of the same output.

    Parameters
    ----------
    in_channels, out_channels : int
    degrees : int
        :math:`L`.
    latitudes : str
        The latitude rule of the inputs' grids (:data:`oplearn.sphere.grid.LATITUDES`).

    Shapes
    ------
    ``x: (batch, in_channels, nlat, nlon) -> (batch, out_channels, nlat, nlon)``, with
    ``grid.max_degree >= degrees`` for the grid of ``(nlat, nlon)``.
    """

    def __init__(self, in_channels: int, out_channels: int, degrees: int, latitudes: str = "equiangular") -> None:
        super().__init__()
        if degrees < 1:
            raise ValueError(f"degrees must be >= 1, got {degrees}")
        self.degrees, self.latitudes = int(degrees), latitudes
        bound = 1 / math.sqrt(in_channels)
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels, self.degrees).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = SphereGrid(tuple(x.shape[-2:]), latitudes=self.latitudes)
        if grid.max_degree < self.degrees:
            raise ValueError(f"a {grid.nlat} x {grid.nlon} {self.latitudes} grid resolves degrees l < {grid.max_degree}; "
                             f"the spherical convolution keeps {self.degrees}: use fewer modes or a finer grid")
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        transform = spherical_transform(grid, self.degrees, dtype=dtype, device=x.device)
        with torch.autocast(x.device.type, enabled=False):
            coefficients = transform(x.to(dtype))
            out = torch.einsum("bilm,iol->bolm", coefficients, self.weight.to(dtype).to(coefficients.dtype))
            return transform.inverse(out)
