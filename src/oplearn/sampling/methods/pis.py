r"""Path Integral Sampler (PIS): a controlled Brownian motion from the origin.

Reference process :math:`dX = \sigma\,dW`, :math:`X_0 = 0`, whose end point has the law
:math:`\mathcal N(0, \sigma^2 T I)`; the sampler is :math:`dX = \sigma u_\theta(t, X)\,dt + \sigma\,dW`.
The backward process is the reference's time reversal (Brownian bridges to the origin, exact on
the grid since the Euler chain of a Brownian motion is exact), so

.. math:: \log w = \log\gamma(X_N) - \log\mathcal N(X_N; 0, \sigma^2 T I)
          + \log p^{ref}_F(X_{1:N} \mid 0) - \log p^{u}_F(X_{1:N} \mid 0),

which on Euler paths is the Girsanov form :math:`\log\gamma(X_N) - \log\mathcal N(X_N; 0, \sigma^2T)
- \sum_k (u_k\cdot\Delta W_k + \tfrac12|u_k|^2 h_k)`.

Optimal control (the reference conditioned on ending at :math:`\pi`), for a Gaussian target
:math:`\mathcal N(m, \mathrm{diag}(s^2))`, with :math:`a = 1/s^2 - 1/(\sigma^2 T)`:

.. math:: u^*(t, x) = \sigma\,\frac{m / s^2 - a\,x}{1 + a\,\sigma^2 (T - t)}.

References
----------
Zhang, Chen, "Path Integral Sampler: a stochastic control approach for sampling", ICLR 2022.
"""

from __future__ import annotations

import torch

from oplearn.sampling.methods.base import Sampler, explore, gaussian_log_density
from oplearn.sampling.networks import ControlNet
from oplearn.sampling.prior import GaussianPrior
from oplearn.sampling.targets.base import Target
from oplearn.sde import SDE, ControlledSDE, ItoSDE, Path, UnderdampedSDE, forward_log_density, solve


class PIS(Sampler):
    """Path Integral Sampler (module docstring); ``diffusion`` is :math:`\\sigma`."""

    name = "pis"

    feature_gate = 1.0

    def __init__(
        self,
        target: Target,
        steps: int = 100,
        horizon: float = 1.0,
        grid: str = "uniform",
        diffusion: float = 1.0,
        net: ControlNet | dict | None = None,
    ) -> None:
        super().__init__(target, steps, horizon, grid)
        self.diffusion = float(diffusion)
        self.net = self.make_net(net)
        # a point mass at the origin: a zero-scale prior whose log-density cancels in the weights
        self.prior = GaussianPrior(target.dim, 1.0)

    def reference(self) -> ItoSDE:
        return ItoSDE(lambda t, x: torch.zeros_like(x), self.diffusion)

    def initial_state(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        return (torch.zeros(n, self.target.dim, device=self.device),)

    def initial_log_density(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return torch.zeros(state[0].shape[0], device=state[0].device)

    def forward_sde(self, exploration: float = 0.0, generator: torch.Generator | None = None) -> SDE | UnderdampedSDE:
        control = explore(lambda t, x: self.net(t, x, self.score_feature(t, x)), exploration, generator)
        return ControlledSDE(self.reference(), control)

    def feature(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r""":math:`(t / T)\nabla\log\gamma(x)`, the score feature of the "Beyond ELBOs" PIS."""
        return (t / self.horizon)[:, None] * self.target.score(x)

    def simulate_backward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Path:
        """Exact Brownian bridges from the origin at 0 to ``x`` at :math:`T`: :math:`B_k = W_k + (t_k / T)(x - W_N)`
        for a reference path :math:`W` (the backward process of the weights, exactly)."""
        t = self.times()
        walk = solve(self.reference(), torch.zeros_like(x), t, generator=generator)
        bridge = walk.xs + (t / t[-1])[:, None, None] * (x - walk.final)
        return Path(t, (bridge,))

    def log_backward(self, path: Path) -> torch.Tensor:
        reference_end = gaussian_log_density(path.final, self.diffusion**2 * self.horizon)
        return forward_log_density(self.reference(), path, self.solver) - reference_end

    def optimal_control(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        m, s2 = self.target.mean, self.target.scale**2
        a = 1 / s2 - 1 / (self.diffusion**2 * self.horizon)
        return self.diffusion * (m / s2 - a * x) / (1 + a * self.diffusion**2 * (self.horizon - t[:, None]))
