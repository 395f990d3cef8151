r"""Noise-level schedules: the decreasing sequence of :math:`\sigma` a sampler visits.

Every schedule returns ``steps + 1`` levels in float64, from ``sigma_max`` down to
``sigma_min`` (``steps`` levels) followed by a final ``0``, so a sampler with ``steps``
steps ends on clean data.
"""

from __future__ import annotations

import math

import torch


def _check(steps: int, sigma_min: float, sigma_max: float) -> None:
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps}")
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got sigma_min={sigma_min}, sigma_max={sigma_max}")


def _with_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def karras_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0) -> torch.Tensor:
    r"""The EDM schedule (Karras et al. 2022), uniform in :math:`\sigma^{1/\rho}`:

    .. math::

        \sigma_i = \Big(\sigma_{max}^{1/\rho} + \tfrac{i}{N - 1}
        \big(\sigma_{min}^{1/\rho} - \sigma_{max}^{1/\rho}\big)\Big)^{\rho},
        \quad i = 0..N-1, \qquad \sigma_N = 0.

    With one step the single level is ``sigma_max``. Shapes: ``-> (steps + 1,)``.
    """
    _check(steps, sigma_min, sigma_max)
    if not rho > 0:
        raise ValueError(f"rho must be > 0, got {rho}")
    ramp = torch.linspace(0, 1, int(steps), dtype=torch.float64)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _with_zero((hi + ramp * (lo - hi)) ** rho)


def logsnr_sigmas(steps: int, sigma_min: float = 0.002, sigma_max: float = 80.0) -> torch.Tensor:
    r"""Levels uniform in log-SNR :math:`\lambda = -\log\sigma` (equal steps
    :math:`h = \lambda_{i+1} - \lambda_i` for the exponential integrators):

    .. math:: \sigma_i = \exp\big(\log\sigma_{max} + \tfrac{i}{N-1}(\log\sigma_{min} - \log\sigma_{max})\big),
              \quad \sigma_N = 0.

    Shapes: ``-> (steps + 1,)``.
    """
    _check(steps, sigma_min, sigma_max)
    ramp = torch.linspace(0, 1, int(steps), dtype=torch.float64)
    return _with_zero(torch.exp(math.log(sigma_max) + ramp * (math.log(sigma_min) - math.log(sigma_max))))


#: Schedule name -> function ``(steps, sigma_min, sigma_max) -> (steps + 1,)``.
SCHEDULES = {"karras": karras_sigmas, "logsnr": logsnr_sigmas}
