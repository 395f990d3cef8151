"""Spherical convolution: a learned multiplier per degree (or per degree and order) on the spherical harmonics of a field."""

from __future__ import annotations

import math

import torch
from torch import nn

from oplearn.sphere.grid import SphereGrid
from oplearn.sphere.harmonics import spherical_transform

#: The kernels of :class:`SphericalConv`.
KERNELS = ("zonal", "diagonal")


class SphericalConv(nn.Module):
    r"""Convolution on the sphere with a learned kernel, band-limited to degrees :math:`l < L`.

    .. math::

        \hat v_{o, lm} = \sum_i W_{io}(l)\, \hat u_{i, lm} \ (\text{zonal}) \quad\text{or}\quad
        \hat v_{o, lm} = \sum_i W_{io}(l, m)\, \hat u_{i, lm} \ (\text{diagonal}), \qquad l < L,

    and :math:`\hat v_{o, lm} = 0` for :math:`l \ge L`, with :math:`\hat u` the spherical-harmonic
    coefficients of the input (:mod:`oplearn.sphere.harmonics`) on the latitude-longitude grid of
    its shape.

    * ``"zonal"``: by the Funk-Hecke theorem the convolution with a kernel that depends only on
      the angle between two points, so the layer commutes with every rotation of the sphere:
      exactly for the rotations that map the grid to itself (longitude shifts, the half turn about
      an equatorial axis), up to the transform's accuracy otherwise. Real weights
      ``(in_channels, out_channels, L)`` (a complex multiplier would treat :math:`\pm m`
      differently and break the symmetry).
    * ``"diagonal"``: a complex multiplier per degree and order (stored as a real
      ``(in_channels, out_channels, L, L, 2)``), :math:`L` times the parameters; it commutes with
      longitude shifts only, like a Fourier layer in longitude.

    Weights are drawn uniformly from :math:`\pm 1/\sqrt{\mathrm{in\_channels}}`. The transforms
    run in float32 (or float64 for float64 inputs); band-limited inputs sampled on any grid that
    resolves :math:`L` degrees give samples of the same output.

    Parameters
    ----------
    in_channels, out_channels : int
    degrees : int
        :math:`L`.
    latitudes : str
        The latitude rule of the inputs' grids (:data:`oplearn.sphere.grid.LATITUDES`).
    kernel : str
        ``"zonal"`` or ``"diagonal"``.

    Shapes
    ------
    ``x: (batch, in_channels, nlat, nlon) -> (batch, out_channels, nlat, nlon)``, with
    ``grid.max_degree >= degrees`` for the grid of ``(nlat, nlon)``.
    """

    def __init__(
        self, in_channels: int, out_channels: int, degrees: int, latitudes: str = "equiangular", kernel: str = "zonal"
    ) -> None:
        super().__init__()
        if degrees < 1:
            raise ValueError(f"degrees must be >= 1, got {degrees}")
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(KERNELS)}, got {kernel!r}")
        self.degrees, self.latitudes, self.kernel = int(degrees), latitudes, kernel
        bound = 1 / math.sqrt(in_channels)
        shape = (in_channels, out_channels, self.degrees) + ((self.degrees, 2) if kernel == "diagonal" else ())
        self.weight = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = SphereGrid(tuple(x.shape[-2:]), latitudes=self.latitudes)
        if grid.max_degree < self.degrees:
            raise ValueError(
                f"a {grid.nlat} x {grid.nlon} {self.latitudes} grid resolves degrees l < {grid.max_degree}; "
                f"the spherical convolution keeps {self.degrees}: use fewer modes or a finer grid"
            )
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        transform = spherical_transform(grid, self.degrees, dtype=dtype, device=x.device)
        with torch.autocast(x.device.type, enabled=False):
            coefficients = transform(x.to(dtype))
            weight = self.weight.to(dtype)
            if self.kernel == "zonal":
                out = torch.einsum("bilm,iol->bolm", coefficients, weight.to(coefficients.dtype))
            else:
                out = torch.einsum("bilm,iolm->bolm", coefficients, torch.view_as_complex(weight.contiguous()))
            return transform.inverse(out)
