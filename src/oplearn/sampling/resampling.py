r"""Importance-weight utilities shared by SMC, SCLD and the metrics.

- :func:`log_mean_exp`: :math:`\log\frac1n\sum_i e^{a_i}`, the log of an importance-sampling
  estimate of :math:`Z` from log-weights (unbiased in :math:`Z`).
- :func:`effective_sample_size`: :math:`(\sum w)^2 / \sum w^2`, from log-weights.
- :func:`systematic_resample`: indices of systematic resampling (one uniform, ``n`` evenly
  spaced points through the cumulative weights; unbiased, lower variance than multinomial).

References
----------
Kitagawa, "Monte Carlo filter and smoother for non-Gaussian nonlinear state space models",
JCGS 1996 (systematic resampling). Kong, "A note on importance sampling using standardized
weights", 1992 (ESS).
"""

from __future__ import annotations

import math

import torch


def log_mean_exp(log_w: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """:math:`\\log\\frac1n\\sum_i e^{a_i}` along ``dim``."""
    return torch.logsumexp(log_w, dim=dim) - math.log(log_w.shape[dim])


def effective_sample_size(log_w: torch.Tensor) -> torch.Tensor:
    """:math:`(\\sum_i w_i)^2 / \\sum_i w_i^2` of ``(n,)`` log-weights (between 1 and ``n``)."""
    return torch.exp(2 * torch.logsumexp(log_w, 0) - torch.logsumexp(2 * log_w, 0))


def systematic_resample(log_w: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` ancestor indices ``(n,)`` drawn proportionally to ``exp(log_w)`` by systematic resampling."""
    n = log_w.shape[0]
    w = torch.softmax(log_w.double(), 0).cpu()
    u = (
        torch.rand(
            1, generator=generator, dtype=torch.float64, device="cpu" if generator is None else generator.device
        ).cpu()
        + torch.arange(n, dtype=torch.float64)
    ) / n
    cdf = torch.cumsum(w, 0)
    cdf[-1] = 1.0
    return torch.searchsorted(cdf, u).clamp(max=n - 1).to(log_w.device)
