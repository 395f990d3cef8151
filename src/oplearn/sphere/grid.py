r"""Latitude-longitude grids on the unit sphere, with quadrature weights.

A field on the sphere is stored as ``(..., nlat, nlon)``: row ``i`` is the colatitude
:math:`\theta_i \in [0, \pi]` (north to south), column ``j`` the longitude
:math:`\lambda_j = 2\pi j / n_{lon}`. Two rules place the latitudes:

* ``"equiangular"``: :math:`\theta_i = \pi i / (n_{lat} - 1)`, both poles included, with
  Clenshaw-Curtis weights (exact for polynomials in :math:`\cos\theta` of degree
  :math:`n_{lat} - 1`); a spherical-harmonic transform is exact up to degree
  :math:`\lfloor (n_{lat} + 1) / 2 \rfloor - 1`.
* ``"legendre-gauss"``: :math:`\cos\theta_i` the Gauss-Legendre nodes, no poles (exact for
  degree :math:`2 n_{lat} - 1`); transforms are exact up to degree :math:`n_{lat} - 1`.

The area element is :math:`dA = \sin\theta\, d\theta\, d\lambda = -d(\cos\theta)\, d\lambda`,
so the weight of node :math:`(i, j)` is :math:`w_i \cdot 2\pi / n_{lon}` with :math:`w_i` the
one-dimensional weights on :math:`[-1, 1]`; they sum to :math:`4\pi`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from oplearn.grids import Grid

#: The latitude rules, by name.
LATITUDES = ("equiangular", "legendre-gauss")


@lru_cache(maxsize=32)
def latitude_quadrature(nlat: int, latitudes: str) -> tuple[np.ndarray, np.ndarray]:
    r"""Colatitudes :math:`\theta_i` (ascending, north to south) and weights :math:`w_i` with
    :math:`\int_{-1}^{1} f\, d(\cos\theta) \approx \sum_i w_i f(\theta_i)`.

    Shapes: ``-> (nlat,), (nlat,)`` float64 arrays.
    """
    if latitudes == "legendre-gauss":
        x, w = np.polynomial.legendre.leggauss(nlat)
        return np.arccos(x[::-1]), w[::-1].copy()
    if latitudes == "equiangular":
        if nlat < 2:
            raise ValueError("an equiangular grid needs at least 2 latitudes (the poles)")
        # Clenshaw-Curtis: integrate the Chebyshev interpolant at theta_i = pi i / n exactly
        n = nlat - 1
        theta = np.pi * np.arange(nlat) / n
        k = np.arange(1, n // 2 + 1)
        b = np.where(2 * k == n, 1.0, 2.0)
        c = np.where((np.arange(nlat) == 0) | (np.arange(nlat) == n), 1.0, 2.0)
        terms = (b / (4 * k**2 - 1))[None, :] * np.cos(2 * np.outer(theta, k))
        w = c / n * (1 - terms.sum(axis=1))
        return theta, w
    raise ValueError(f"unknown latitude rule '{latitudes}'; choose one of {', '.join(LATITUDES)}")


@dataclass(frozen=True)
class SphereGrid(Grid):
    """A latitude-longitude grid on the unit sphere (see the module docstring).

    ``domain`` is ``((0, pi), (0, 2 pi))`` (colatitude, longitude) and ``periodic`` true, so
    code written for box grids sees the longitude as a periodic axis.

    Parameters
    ----------
    shape : (nlat, nlon)
    latitudes : str
        ``"equiangular"`` or ``"legendre-gauss"``.
    """

    latitudes: str = "equiangular"

    def __post_init__(self) -> None:
        object.__setattr__(self, "domain", ((0.0, math.pi), (0.0, 2 * math.pi)))
        object.__setattr__(self, "periodic", True)
        super().__post_init__()
        if len(self.shape) != 2:
            raise ValueError(f"a sphere grid has shape (nlat, nlon), got {self.shape}")
        latitude_quadrature(self.shape[0], self.latitudes)  # checks the rule and the size

    @classmethod
    def regular(cls, nlat: int, latitudes: str = "equiangular") -> SphereGrid:
        """The grid of ``nlat`` latitudes and ``2 nlat`` longitudes."""
        return cls((int(nlat), 2 * int(nlat)), latitudes=latitudes)

    @property
    def nlat(self) -> int:
        return self.shape[0]

    @property
    def nlon(self) -> int:
        return self.shape[1]

    @property
    def max_degree(self) -> int:
        """The number of degrees ``l = 0 .. max_degree - 1`` a spherical-harmonic transform on
        this grid resolves exactly (also limited by ``nlon // 2 + 1`` orders)."""
        exact = self.nlat if self.latitudes == "legendre-gauss" else (self.nlat + 1) // 2
        return min(exact, self.nlon // 2 + 1)

    @property
    def spacing(self) -> tuple[float, ...]:
        """The mean colatitude spacing and the longitude spacing (radians)."""
        return (math.pi / self.nlat, 2 * math.pi / self.nlon)

    def axes(self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None) -> list[torch.Tensor]:
        """Colatitudes ``(nlat,)`` and longitudes ``(nlon,)`` in radians."""
        theta, _ = latitude_quadrature(self.nlat, self.latitudes)
        lon = 2 * math.pi * torch.arange(self.nlon, dtype=torch.float64, device=device) / self.nlon
        return [torch.as_tensor(theta, device=device).to(dtype), lon.to(dtype)]

    def latitude_degrees(self) -> np.ndarray:
        """Latitudes in degrees, north to south: ``(nlat,)``."""
        return 90.0 - np.degrees(latitude_quadrature(self.nlat, self.latitudes)[0])

    def area_weights(
        self, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Quadrature weights of the nodes on the unit sphere, ``(nlat, nlon)``; they sum to ``4 pi``."""
        _, w = latitude_quadrature(self.nlat, self.latitudes)
        w = torch.as_tensor(w * 2 * math.pi / self.nlon, dtype=dtype, device=device)
        return w[:, None].expand(self.nlat, self.nlon)

    def integrate(self, field: torch.Tensor) -> torch.Tensor:
        r""":math:`\int_{S^2} f\, dA` on the unit sphere: ``(..., nlat, nlon) -> (...)``."""
        return (field * self.area_weights(field.dtype, field.device)).sum(dim=(-2, -1))

    def refine(self, factor: int) -> SphereGrid:
        """The grid ``factor`` times finer; only ``factor = 1`` for Gauss-Legendre latitudes (they do
        not nest). Equiangular grids keep every node: ``(nlat - 1) factor + 1`` latitudes."""
        if factor == 1:
            return self
        if factor < 1 or self.latitudes != "equiangular":
            raise ValueError(f"cannot refine a {self.latitudes} sphere grid by {factor}")
        return SphereGrid(((self.nlat - 1) * factor + 1, self.nlon * factor), latitudes=self.latitudes)

    def with_shape(self, shape: tuple[int, ...]) -> SphereGrid:
        return SphereGrid(tuple(shape), latitudes=self.latitudes)

    def to_dict(self) -> dict:
        return {**super().to_dict(), "latitudes": self.latitudes}

    @classmethod
    def from_dict(cls, d: dict) -> SphereGrid:
        return cls(tuple(d["shape"]), latitudes=d["latitudes"])
