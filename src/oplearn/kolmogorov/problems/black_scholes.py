r"""Black-Scholes models: geometric Brownian motions and put-type payoffs.

- :class:`BlackScholes` (one asset, parametric): :math:`dX = \sigma X\,dW`, put payoff
  :math:`\varphi = (K - x)^+`, parameters :math:`\sigma \in [0.1, 0.6]`, :math:`K \in [10, 12]`,
  ``x`` in :math:`[9, 10]`, ``t`` in :math:`[0, 1]`; closed-form price

  .. math::

      u = K\,\Phi(-d_2) - x\,\Phi(-d_1), \qquad
      d_{1,2} = \frac{\log(x / K) \pm \sigma^2 t / 2}{\sigma\sqrt t}.

- :class:`CorrelatedBlackScholes` (``d = 50`` assets): :math:`dX_i = r X_i\,dt + X_i\,(\Sigma\,dW)_i`,
  :math:`\Sigma = \operatorname{diag}(\beta) L`, :math:`LL^\top = \tfrac12(\mathbf 1\mathbf 1^\top + I)`,
  :math:`\beta_i = 0.1 + i / (2d)`, :math:`r = -0.05`, payoff :math:`(K - \min_i x_i)^+` with
  :math:`K = 5.5`, ``x`` in :math:`[4.5, 5.5]^d`, ``T = 1``. No closed form: references are
  Monte-Carlo means over exact log-normal draws
  :math:`X_i(t) = x_i \exp\big((r - |\Sigma_i|^2/2)\,t + \sqrt t\,(\Sigma\xi)_i\big)` (65536 per point).

References
----------
Berner, Dablander, Grohs, NeurIPS 2020, github.com/juliusberner/deep_kolmogorov,
``deep_kolmogorov/pdes.py`` (``black_scholes`` boxes). Richter, Berner, ICML 2022,
github.com/juliusberner/robust_kolmogorov, ``configs/problems/bs_50d.yaml`` and
``robust_kolmogorov/problems.py`` (the volatility construction).
"""

from __future__ import annotations

import math

import torch

from oplearn.kolmogorov.problems.base import KolmogorovPDE, ParameterBox
from oplearn.sde import DiagonalNoise, MatrixNoise


def normal_cdf(z: torch.Tensor) -> torch.Tensor:
    r""":math:`\Phi(z)`."""
    return 0.5 * (1 + torch.erf(z / math.sqrt(2)))


class BlackScholes(KolmogorovPDE):
    """One-asset put, parametric in volatility and strike (module docstring)."""

    name = "black_scholes"

    def __init__(self) -> None:
        super().__init__(1, (9.0, 10.0), (ParameterBox("sigma", (1,), 0.1, 0.6), ParameterBox("K", (1,), 10.0, 12.0)))
        self.noise = DiagonalNoise()

    def drift(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def diffusion(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return p[:, :1].to(x.dtype) * x

    def initial(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.relu(p[:, 1] - x[:, 0])

    def exact(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        sigma, strike, s = p[:, 0], p[:, 1], x[:, 0]
        vol = sigma * t.clamp(min=1e-12).sqrt()
        d1 = (torch.log(s / strike) + 0.5 * vol.square()) / vol
        return strike * normal_cdf(vol - d1) - s * normal_cdf(-d1)

    def sample_end(
        self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        sigma = p[:, :1].to(x.dtype)
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        return x * torch.exp(-0.5 * sigma.square() * t[:, None] + sigma * t.sqrt()[:, None] * xi)


class CorrelatedBlackScholes(KolmogorovPDE):
    """A put on the minimum of ``dim`` correlated assets (module docstring)."""

    name = "black_scholes_correlated"

    def __init__(self, dim: int = 50, strike: float = 5.5, rate: float = -0.05) -> None:
        super().__init__(dim, (4.5, 5.5))
        self.strike, self.rate = float(strike), float(rate)
        chol = torch.linalg.cholesky(
            0.5 * torch.ones(dim, dim, dtype=torch.float64) + 0.5 * torch.eye(dim, dtype=torch.float64)
        )
        beta = 0.1 + torch.arange(1, dim + 1, dtype=torch.float64) / (2 * dim)
        self.volatility = beta[:, None] * chol  # Sigma (d, d)
        self.noise = MatrixNoise()

    def drift(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return self.rate * x

    def diffusion(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return x[:, :, None] * self.volatility.to(x)

    def initial(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.strike - x.min(-1).values)

    def sample_end(
        self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        vol = self.volatility.to(x)
        xi = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        log_growth = (self.rate - 0.5 * vol.square().sum(1)) * t[:, None] + t.sqrt()[:, None] * xi @ vol.T
        return x * torch.exp(log_growth)
