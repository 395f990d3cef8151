r"""The Ornstein-Uhlenbeck process with a linear rate schedule, and its exact law.

.. math::

    dX_t = -\beta(t)\,(X_t - \mu)\,dt + s\sqrt{2\beta(t)}\,dW_t, \qquad
    \beta(t) = \beta_0 + (\beta_1 - \beta_0)\,t / T,

whose transition from time :math:`r` to :math:`t` is Gaussian,

.. math::

    X_t \mid X_r \sim \mathcal N\big(\mu + e^{-B}(X_r - \mu),\; s^2 (1 - e^{-2B})\big),
    \qquad B = \int_r^t \beta = \beta_0 (t - r) + (\beta_1 - \beta_0)\frac{t^2 - r^2}{2T},

with invariant law :math:`\mathcal N(\mu, s^2)`. A constant rate (:math:`\beta_0 = \beta_1`)
is the classical OU process; a linear rate is the variance-preserving SDE of diffusion models
(the noising process of DIS with :math:`s = 1`).

References
----------
Song et al., "Score-Based Generative Modeling through Stochastic Differential Equations",
ICLR 2021 (VP SDE). Berner, Richter, Ullrich, "An optimal control perspective on
diffusion-based generative modeling", TMLR 2024 (DIS).
"""

from __future__ import annotations

import torch

from oplearn.errors import ConfigError
from oplearn.sde.noise import ScalarNoise
from oplearn.sde.terms import SDE


class OrnsteinUhlenbeck(SDE):
    """OU process with rate ``beta(t)`` linear from ``rate`` at 0 to ``rate_end`` at ``horizon``,
    mean ``mean`` and stationary standard deviation ``scale`` (module docstring)."""

    noise = ScalarNoise()

    def __init__(
        self,
        rate: float = 1.0,
        rate_end: float | None = None,
        mean: float = 0.0,
        scale: float = 1.0,
        horizon: float = 1.0,
    ) -> None:
        rate_end = rate if rate_end is None else rate_end
        if rate < 0 or rate_end < 0 or scale <= 0 or horizon <= 0:
            raise ConfigError(
                f"Ornstein-Uhlenbeck: rates must be >= 0 and scale, horizon > 0 (got {rate}, {rate_end}, {scale}, {horizon})"
            )
        self.rate, self.rate_end, self.mean, self.scale, self.horizon = rate, rate_end, mean, scale, horizon

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\\beta(t)`."""
        return self.rate + (self.rate_end - self.rate) * t / self.horizon

    def integrated_rate(self, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """:math:`B = \\int_r^t \\beta(\\tau)\\,d\\tau`."""
        return self.rate * (t - r) + (self.rate_end - self.rate) * (t * t - r * r) / (2 * self.horizon)

    def drift(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -self.beta(t).reshape(-1, 1) * (x - self.mean)

    def diffusion(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.scale * torch.sqrt(2 * self.beta(t))

    def transition(self, r: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(batch, d)`` and standard deviation ``(batch, 1)`` of :math:`X_t` given :math:`X_r = x`
        (times scalars or ``(batch,)``)."""
        r, t = (torch.as_tensor(v, dtype=x.dtype, device=x.device) for v in (r, t))
        decay = torch.exp(-self.integrated_rate(r, t)).reshape(-1, 1)
        return self.mean + decay * (x - self.mean), self.scale * torch.sqrt(1 - decay**2)
