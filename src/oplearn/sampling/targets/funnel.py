r"""Neal's funnel in :math:`d` dimensions ("Beyond ELBOs": :math:`d = 10`).

.. math:: x_0 \sim \mathcal N(0, 3^2), \qquad x_{1..d-1} \mid x_0 \sim \mathcal N(0, e^{x_0} I),
          \qquad \log Z = 0.

The reference clips its exact samples to ``[-30, 30]`` (``sample_bounds``); ours are unclipped.

References
----------
Neal, "Slice sampling", Annals of Statistics 2003. Blessing et al., "Beyond ELBOs", ICML 2024
(Funnel, :math:`d = 10`).
"""

from __future__ import annotations

import math

import torch

from oplearn.sampling.targets.base import Target


class Funnel(Target):
    """Neal's funnel (module docstring)."""

    name = "funnel"
    log_Z = 0.0

    def __init__(self, dim: int = 10, scale: float = 3.0) -> None:
        super().__init__(dim)
        self.scale = float(scale)

    def unnormalized_log_density(self, x: torch.Tensor) -> torch.Tensor:
        x0, rest = x[:, 0], x[:, 1:]
        log_x0 = -0.5 * (x0 / self.scale) ** 2 - math.log(self.scale) - 0.5 * math.log(2 * math.pi)
        log_rest = -0.5 * rest.square().sum(-1) * torch.exp(-x0) - 0.5 * (self.dim - 1) * (x0 + math.log(2 * math.pi))
        return log_x0 + log_rest

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        x0 = self.scale * torch.randn(n, 1, generator=generator)
        return torch.cat([x0, torch.exp(0.5 * x0) * torch.randn(n, self.dim - 1, generator=generator)], dim=1)
