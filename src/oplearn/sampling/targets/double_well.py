r"""The double-well family of ``sde_sampler`` ("Improved sampling via learned diffusions"):
``wells`` double-well coordinates with separation :math:`\delta`, the rest standard Gaussian.

.. math:: \log\gamma(x) = -\sum_{i < w} (x_i^2 - \delta)^2 - \sum_{i \ge w} \tfrac12 x_i^2, \qquad
          \log Z = w \log\int e^{-(u^2 - \delta)^2} du + \tfrac{d - w}2 \log 2\pi

(the one-dimensional integral by quadrature, :mod:`~oplearn.sampling.targets.quadrature`).
The reference configurations: ``mw`` (:math:`d = 5`, 5 wells, :math:`\delta = 4`: 32 modes
separated by high barriers) and ``mw_50d`` (:math:`d = 50`, 5 wells, :math:`\delta = 2`).
Exact samples by inverse transform; modes: the sign of each double-well coordinate (equal
weights).

References
----------
Richter, Berner, "Improved sampling via learned diffusions", ICLR 2024 (targets ``mw``,
``mw_50d``); Berner, Richter, Ullrich, "An optimal control perspective on diffusion-based
generative modeling", TMLR 2024.
"""

from __future__ import annotations

import math

import torch

from oplearn.errors import ConfigError
from oplearn.sampling.targets.base import Target
from oplearn.sampling.targets.quadrature import TabulatedDensity


class DoubleWell(Target):
    """``wells`` double wells of separation ``separation`` in ``dim`` dimensions (module docstring)."""

    name = "double_well"

    def __init__(self, dim: int = 5, wells: int = 5, separation: float = 4.0) -> None:
        if not 1 <= wells <= dim:
            raise ConfigError(f"double_well: wells must be between 1 and dim={dim}, got {wells}")
        super().__init__(dim)
        self.wells, self.separation = wells, float(separation)
        half_width = math.sqrt(self.separation) + 3.0
        self.well = TabulatedDensity(lambda u: -((u**2 - self.separation) ** 2), -half_width, half_width)
        self.log_Z = wells * self.well.log_normalizer + 0.5 * (dim - wells) * math.log(2 * math.pi)

    def unnormalized_log_density(self, x: torch.Tensor) -> torch.Tensor:
        u, v = x[:, : self.wells], x[:, self.wells :]
        return -((u.square() - self.separation) ** 2).sum(-1) - 0.5 * v.square().sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        u = self.well.sample((n, self.wells), generator).float()
        return torch.cat([u, torch.randn(n, self.dim - self.wells, generator=generator)], dim=1)

    def modes(self, x: torch.Tensor) -> torch.Tensor:
        return (x[:, : self.wells] > 0).long()

    def mode_weights(self) -> torch.Tensor:
        return torch.full((self.wells, 2), 0.5)
