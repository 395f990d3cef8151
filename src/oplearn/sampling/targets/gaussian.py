r"""Gaussian target with a diagonal covariance, the test case with closed forms everywhere.

.. math:: \gamma(x) = \exp\Big(-\sum_i \frac{(x_i - m_i)^2}{2 s_i^2}\Big), \qquad
          \log Z = \sum_i \log\big(s_i\sqrt{2\pi}\big).

Unnormalised on purpose (``log_Z`` is not 0), so that estimators of :math:`\log Z` are
tested for real. Its optimal controls for the diffusion samplers are Gaussian computations
(:meth:`oplearn.sampling.methods.Sampler.optimal_control`).
"""

from __future__ import annotations

import math

import torch

from oplearn.sampling.targets.base import Target


class Gaussian(Target):
    """:math:`\\mathcal N(m, \\mathrm{diag}(s^2))` up to its normaliser; ``mean`` and ``scale`` floats or ``(dim,)``."""

    name = "gaussian"

    def __init__(self, dim: int = 2, mean: float | list[float] = 0.0, scale: float | list[float] = 1.0) -> None:
        super().__init__(dim)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).expand(dim).clone(), persistent=False)
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32).expand(dim).clone(), persistent=False)
        self.log_Z = float(torch.log(self.scale.double() * math.sqrt(2 * math.pi)).sum())

    def unnormalized_log_density(self, x: torch.Tensor) -> torch.Tensor:
        return -0.5 * ((x - self.mean) / self.scale).square().sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.dim, generator=generator, dtype=self.mean.dtype, device=self.mean.device)
        return self.mean + self.scale * z
