r"""Time-reversed Diffusion Sampler (DIS) and Denoising Diffusion Sampler (DDS).

Both learn the time reversal of a variance-preserving noising process started at the target,
:math:`dY_\tau = -\beta(\tau) Y_\tau\,d\tau + \nu\sqrt{2\beta(\tau)}\,dB_\tau`, :math:`\beta` linear
from ``rate_min`` to ``rate_max`` over :math:`[0, T]`, which ends close to its stationary law
:math:`p_0 = \mathcal N(0, \nu^2 I)`. In generative time :math:`t = T - \tau` the noising
process is the Ornstein-Uhlenbeck process :math:`\mathcal O` with rates running from
``rate_max`` down to ``rate_min`` (:class:`~oplearn.sde.linear.OrnsteinUhlenbeck`), the
backward process of the weights, and with :math:`\sigma(t) = \nu\sqrt{2\beta(T - t)}`:

- **DIS**: :math:`dX = \big(\beta X + \sigma u_\theta\big)\,dt + \sigma\,dW` (Euler-Maruyama), where
  :math:`u^* = \sigma\nabla\log p_{T-t}` is the scaled score of the noised target;
- **DDS**: :math:`dX = \big(-\beta X + \sigma u_\theta\big)\,dt + \sigma\,dW` with exponential-integrator
  kernels on both sides (:class:`~oplearn.sde.solvers.ExponentialEuler`), where
  :math:`u^* = \sigma\nabla\log(p_{T-t} / p_0)`.

For a Gaussian target :math:`\mathcal N(m, s^2)` the noised marginal is
:math:`\mathcal N\big(m e^{-B}, s^2 e^{-2B} + \nu^2(1 - e^{-2B})\big)`, :math:`B = \int_0^{T-t}\beta`,
which gives both optimal controls in closed form.

References
----------
Berner, Richter, Ullrich, "An optimal control perspective on diffusion-based generative
modeling", TMLR 2024 (DIS). Vargas, Grathwohl, Doucet, "Denoising Diffusion Samplers", ICLR
2023 (DDS). Richter, Berner, "Improved sampling via learned diffusions", ICLR 2024 (the VP
schedule with squared diffusion from 0.1 to 10, i.e. ``rate_min = 0.05``, ``rate_max = 5``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from oplearn.sampling.methods.base import Sampler, explore
from oplearn.sampling.networks import ControlNet
from oplearn.sampling.prior import GaussianPrior
from oplearn.sampling.targets.base import Target
from oplearn.sde import (
    SDE,
    ControlledSDE,
    ExponentialEuler,
    ItoSDE,
    OrnsteinUhlenbeck,
    Solver,
    Splitting,
    UnderdampedSDE,
)


class _ReversedNoising(Sampler):
    """The shared parts of DIS and DDS: the noising process, the prior, the network."""

    feature_gate = 1.0

    def __init__(
        self,
        target: Target,
        steps: int = 100,
        horizon: float = 1.0,
        grid: str = "uniform",
        scale: float = 1.0,
        rate_min: float = 0.05,
        rate_max: float = 5.0,
        net: ControlNet | dict | None = None,
        solver: Solver | None = None,
    ) -> None:
        super().__init__(target, steps, horizon, grid, solver)
        self.noising = OrnsteinUhlenbeck(rate=rate_max, rate_end=rate_min, scale=scale, horizon=horizon)
        self.prior = GaussianPrior(target.dim, scale)
        self.net = self.make_net(net)

    def control(self, exploration: float = 0.0, generator: torch.Generator | None = None) -> Callable:
        return explore(lambda t, x: self.net(t, x, self.score_feature(t, x)), exploration, generator)

    def interpolated_score(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r""":math:`(1 - t/T)\nabla\log p_0(x) + (t/T)\nabla\log\gamma(x)`, the scores of the noised
        target's two ends interpolated (exact at :math:`t = 0` up to the noising's residual and at :math:`T`)."""
        lam = (t / self.horizon)[:, None]
        return (1 - lam) * self.prior.score(x) + lam * self.target.score(x)

    def backward_sde(self) -> SDE | UnderdampedSDE:
        return self.noising

    def noised_target(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance ``(batch, d)`` of the noised Gaussian target at generative time ``t``."""
        ou, m, s2 = self.noising, self.target.mean, self.target.scale**2
        decay = torch.exp(-ou.integrated_rate(t, torch.full_like(t, self.horizon)))[:, None]
        return m * decay, s2 * decay**2 + ou.scale**2 * (1 - decay**2)


class DIS(_ReversedNoising):
    """Time-reversed Diffusion Sampler (module docstring); ``scale`` is :math:`\\nu`."""

    name = "dis"

    def forward_sde(self, exploration: float = 0.0, generator: torch.Generator | None = None) -> SDE | UnderdampedSDE:
        ou = self.noising
        return ControlledSDE(ItoSDE(lambda t, x: -ou.drift(t, x), ou.diffusion), self.control(exploration, generator))

    def feature(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\sigma(t)` times ``interpolated_score``, which approximates :math:`u^*` (the
        feature of the DIS of "Beyond ELBOs" and of ``sde_sampler``'s ``lerp`` control)."""
        return self.noising.diffusion(t, x)[:, None] * self.interpolated_score(t, x)

    def optimal_control(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.noised_target(t)
        return self.noising.diffusion(t, x)[:, None] * (mean - x) / var


class DDS(_ReversedNoising):
    """Denoising Diffusion Sampler (module docstring), with exponential-integrator kernels."""

    name = "dds"

    def __init__(
        self,
        target: Target,
        steps: int = 100,
        horizon: float = 1.0,
        grid: str = "uniform",
        scale: float = 1.0,
        rate_min: float = 0.05,
        rate_max: float = 5.0,
        net: ControlNet | dict | None = None,
    ) -> None:
        super().__init__(target, steps, horizon, grid, scale, rate_min, rate_max, net, solver=ExponentialEuler())

    def feature(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\sigma(t)(\text{interpolated score} - \nabla\log p_0)`, which approximates :math:`u^*`."""
        return self.noising.diffusion(t, x)[:, None] * (self.interpolated_score(t, x) - self.prior.score(x))

    def forward_sde(self, exploration: float = 0.0, generator: torch.Generator | None = None) -> SDE | UnderdampedSDE:
        return ControlledSDE(self.noising, self.control(exploration, generator))

    def optimal_control(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.noised_target(t)
        return self.noising.diffusion(t, x)[:, None] * ((mean - x) / var + x / self.noising.scale**2)


class UnderdampedDIS(Sampler):
    r"""Underdamped DIS: the noising process is underdamped Langevin dynamics with the force
    :math:`\nabla\log p_0` of the prior :math:`p_0 = \mathcal N(0, \nu^2 I)` (invariant law
    :math:`p_0 \otimes \mathcal N(0, M)`), the sampler the same dynamics with a learned control
    :math:`u_\theta(t, x, p)` in the momentum's ``O`` kernels (Blessing et al., ICLR 2025)."""

    name = "dis_ud"

    def __init__(
        self,
        target: Target,
        steps: int = 100,
        horizon: float = 1.0,
        grid: str = "uniform",
        scale: float = 1.0,
        friction: float = 1.0,
        mass: float = 1.0,
        integrator: str = "OBABO",
        net: ControlNet | dict | None = None,
    ) -> None:
        super().__init__(target, steps, horizon, grid, Splitting(integrator))
        self.prior = GaussianPrior(target.dim, scale)
        self.friction, self.mass = float(friction), float(mass)
        self.net = self.make_net(net, 2 * target.dim)

    def forward_sde(self, exploration: float = 0.0, generator: torch.Generator | None = None) -> SDE | UnderdampedSDE:
        control = explore(
            lambda t, x, p: self.net(t, torch.cat([x, p], -1), self.score_feature(t, x)), exploration, generator
        )
        return UnderdampedSDE(lambda t, x: self.prior.score(x), self.friction, self.mass, control)

    def backward_sde(self) -> SDE | UnderdampedSDE:
        return UnderdampedSDE(lambda t, x: self.prior.score(x), self.friction, self.mass)
