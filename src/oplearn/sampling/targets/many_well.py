r"""Many-Well of the "Beyond ELBOs" benchmark: :math:`d/2` independent two-dimensional double
wells (:math:`d = 32`: 16 wells, :math:`2^{16}` modes).

.. math:: \log\gamma(x) = \sum_{j=0}^{d/2-1} \big(-a\,x_{2j} - b\,x_{2j}^2 - c\,x_{2j}^4 - \tfrac12 x_{2j+1}^2\big),
          \qquad a = -0.5,\ b = -6,\ c = 1,

.. math:: \log Z = \tfrac d2\Big(\log\int e^{0.5 u + 6u^2 - u^4}\,du + \tfrac12\log 2\pi\Big)
          = \tfrac d2\big(\log 11784.50927 + \tfrac12\log 2\pi\big).

Exact samples: the double-well coordinate by inverse transform of its tabulated density
(:mod:`~oplearn.sampling.targets.quadrature`), the other Gaussian (the reference has no sampler).
Modes: the sign of each double-well coordinate (the wells at :math:`\approx\pm 1.7`); the deep
well (positive) carries the larger mass.

References
----------
Noé, Olsson, Köhler, Wu, "Boltzmann generators", Science 2019 (the double-well energy).
Midgley et al., "Flow Annealed Importance Sampling Bootstrap", ICLR 2023, and Blessing et al.,
"Beyond ELBOs", ICML 2024 (Many-Well, :math:`d = 32`, :math:`\log Z` above).
"""

from __future__ import annotations

import math

import torch

from oplearn.errors import ConfigError
from oplearn.sampling.targets.base import Target
from oplearn.sampling.targets.quadrature import TabulatedDensity


class ManyWell(Target):
    """Many-Well (module docstring); ``dim`` even."""

    name = "many_well"

    def __init__(self, dim: int = 32, a: float = -0.5, b: float = -6.0, c: float = 1.0) -> None:
        if dim % 2:
            raise ConfigError(f"many_well: dim must be even, got {dim}")
        super().__init__(dim)
        self.a, self.b, self.c = a, b, c
        self.wells = dim // 2
        self.well = TabulatedDensity(lambda u: -(a * u + b * u**2 + c * u**4), -5.0, 5.0)
        self.log_Z = self.wells * (self.well.log_normalizer + 0.5 * math.log(2 * math.pi))

    def unnormalized_log_density(self, x: torch.Tensor) -> torch.Tensor:
        u, v = x[:, 0::2], x[:, 1::2]
        return (-(self.a * u + self.b * u**2 + self.c * u**4) - 0.5 * v**2).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        x = torch.empty(n, self.dim)
        x[:, 0::2] = self.well.sample((n, self.wells), generator).float()
        x[:, 1::2] = torch.randn(n, self.wells, generator=generator)
        return x

    def modes(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, 0::2] > 0).long()

    def mode_weights(self) -> torch.Tensor:
        below = self.well.mass_below(0.0)
        return torch.tensor([[below, 1 - below]]).expand(self.wells, 2)
