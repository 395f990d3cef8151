r"""Diagonal Gaussian initial distributions :math:`p_0 = \mathcal N(\mu, \mathrm{diag}(s^2))` of
the samplers, optionally learned (mean and log-scale as parameters)."""

from __future__ import annotations

import math

import torch
from torch import nn


class GaussianPrior(nn.Module):
    """:math:`\\mathcal N(\\mu, \\mathrm{diag}(s^2))` in ``dim`` dimensions, ``scale`` a float; ``learn``
    makes :math:`\\mu` and :math:`\\log s` trainable."""

    def __init__(self, dim: int, scale: float = 1.0, learn: bool = False) -> None:
        super().__init__()
        loc, log_scale = torch.zeros(dim), torch.full((dim,), math.log(scale))
        if learn:
            self.loc, self.log_scale = nn.Parameter(loc), nn.Parameter(log_scale)
        else:
            self.register_buffer("loc", loc)
            self.register_buffer("log_scale", log_scale)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = self.loc.device if generator is None else generator.device
        z = torch.randn(n, self.loc.shape[0], generator=generator, device=device).to(self.loc.device)
        return self.loc + torch.exp(self.log_scale) * z

    def log_density(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.loc) * torch.exp(-self.log_scale)
        return -0.5 * z.square().sum(-1) - self.log_scale.sum() - 0.5 * x.shape[-1] * math.log(2 * math.pi)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        return -(x - self.loc) * torch.exp(-2 * self.log_scale)
