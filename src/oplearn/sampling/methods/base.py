r"""The shared core of the diffusion samplers: simulate, weigh, run backwards.

A sampler transports an initial distribution :math:`p_0` to the target :math:`\pi = \gamma/Z`
with a (learned) forward process :math:`\mathbb P_F` on a time grid :math:`t_0 < \dots < t_N`;
a backward process :math:`\mathbb P_B` from :math:`\gamma` defines the importance weight of a
path, the discrete-time Radon-Nikodym derivative

.. math:: \log w(X) = \log\gamma(X_N) + \log p_B(X_{0:N-1} \mid X_N) - \log p_0(X_0) - \log p_F(X_{1:N} \mid X_0),

so that :math:`E_{\mathbb P_F}[w] = Z` (any forward and backward kernels), the ELBO
:math:`E_{\mathbb P_F}[\log w] \le \log Z` and, on backward paths started from exact
samples, the EUBO :math:`E_{\mathbb P_B}[\log w] \ge \log Z`; both gaps vanish exactly when
the two path measures agree. Underdamped samplers carry momenta :math:`P \sim \mathcal N(0, M)`
at both ends: :math:`\log\mathcal N(P_N; 0, M) - \log\mathcal N(P_0; 0, M)` joins the weight,
and their transitions are the ``O`` sub-steps of a splitting scheme.

A method is a subclass giving its initial distribution, forward and backward SDEs (and,
for the Gaussian target, its optimal control); the transition densities, the on-policy
density from the normals alone (reparametrised losses), the off-policy density of any given
path (log-variance losses) and backward simulation come from :mod:`oplearn.sde`.

Shapes: paths ``(steps + 1, batch, dim)``; weights ``(batch,)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from oplearn.errors import ConfigError
from oplearn.sampling.networks import ControlNet
from oplearn.sampling.prior import GaussianPrior
from oplearn.sampling.resampling import log_mean_exp
from oplearn.sampling.targets.base import Target
from oplearn.sde import (
    SDE,
    CosineGrid,
    EulerMaruyama,
    GeometricGrid,
    Path,
    Solver,
    Splitting,
    TimeGrid,
    UnderdampedSDE,
    UniformGrid,
    backward_log_density,
    forward_log_density,
    noise_log_density,
    solve,
    solve_backward,
)

GRIDS: dict[str, Callable[..., TimeGrid]] = {"uniform": UniformGrid, "cosine": CosineGrid, "geometric": GeometricGrid}


@dataclass
class Estimate:
    """What a sampler returns for evaluation: samples ``(n, dim)``, their log-weights ``(n,)``
    (after the last resampling for SMC-type methods), :math:`\\log\\hat Z` and the ELBO
    (``None`` where the method has none)."""

    samples: torch.Tensor
    log_weights: torch.Tensor
    log_Z: float
    elbo: float | None


def make_grid(name: str, horizon: float) -> TimeGrid:
    """The time grid ``name`` (``uniform``, ``cosine``, ``geometric``) on ``[0, horizon]``."""
    if name not in GRIDS:
        raise ConfigError(f"unknown time grid '{name}'; choose one of {', '.join(GRIDS)}")
    return GRIDS[name](0.0, horizon)


def explore(control: Callable, exploration: float, generator: torch.Generator | None) -> Callable:
    """``control`` plus independent :math:`\\mathcal N(0, \\varepsilon^2)` noise at every call (the
    off-policy exploration of the log-variance loss: a behaviour process around the current one)."""
    if exploration == 0:
        return control

    def noisy(*args: torch.Tensor) -> torch.Tensor:
        u = control(*args)
        device = u.device if generator is None else generator.device
        return u + exploration * torch.randn(u.shape, generator=generator, device=device).to(u.device)

    return noisy


def gaussian_log_density(p: torch.Tensor, variance: torch.Tensor | float) -> torch.Tensor:
    """:math:`\\log\\mathcal N(p; 0, \\mathrm{diag}(v))`: ``(batch, d) -> (batch,)``."""
    v = torch.as_tensor(variance, dtype=p.dtype, device=p.device).expand_as(p)
    return -0.5 * (p.square() / v + torch.log(2 * math.pi * v)).sum(-1)


class Sampler(nn.Module):
    """A diffusion sampler (module docstring).

    Parameters
    ----------
    target:
        The :class:`~oplearn.sampling.targets.base.Target`.
    steps:
        Number of time steps :math:`N`.
    horizon:
        :math:`T`; the grid is ``grid`` on :math:`[0, T]`.
    grid:
        ``uniform``, ``cosine`` or ``geometric`` (:mod:`oplearn.sde.times`).
    solver:
        Default Euler-Maruyama; ``Splitting`` schemes for underdamped samplers.
    """

    name: ClassVar[str]
    #: Whether the method trains a control network (if not, only its scalar parameters).
    learns_control: ClassVar[bool] = True

    def __init__(
        self,
        target: Target,
        steps: int = 100,
        horizon: float = 1.0,
        grid: str = "uniform",
        solver: Solver | None = None,
    ) -> None:
        super().__init__()
        if steps < 1:
            raise ConfigError(f"sampler: steps must be >= 1, got {steps}")
        self.target, self.steps, self.horizon = target, int(steps), float(horizon)
        self.grid = make_grid(grid, horizon)
        self.solver = solver or EulerMaruyama()
        self.register_buffer("_device_marker", torch.zeros(0), persistent=False)

    @property
    def underdamped(self) -> bool:
        return isinstance(self.solver, Splitting)

    @property
    def device(self) -> torch.device:
        return self._device_marker.device

    def times(self) -> torch.Tensor:
        """The time grid ``(steps + 1,)``."""
        return self.grid.times(self.steps, device=self.device)

    # ----------------------------------------------------------------- a method's parts

    prior: GaussianPrior

    def forward_sde(self, exploration: float = 0.0, generator: torch.Generator | None = None) -> SDE | UnderdampedSDE:
        """The forward (generative) SDE, its control perturbed by ``exploration`` noise."""
        raise NotImplementedError

    def backward_sde(self) -> SDE | UnderdampedSDE:
        """The backward SDE, its drift pointing backwards in time (:mod:`oplearn.sde.likelihood`)."""
        raise NotImplementedError

    def log_backward(self, path: Path) -> torch.Tensor:
        """:math:`\\log p_B(X_{0:N-1} \\mid X_N)` (a method with a reference process overrides it)."""
        return backward_log_density(self.backward_sde(), path, self.solver)

    def initial_log_density(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """:math:`\\log p_0(X_0)` (with the momentum's Gaussian for underdamped samplers)."""
        value = self.prior.log_density(state[0])
        return value + gaussian_log_density(state[1], self.mass) if self.underdamped else value

    def terminal_log_density(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """:math:`\\log\\gamma(X_N)` (with the momentum's Gaussian for underdamped samplers)."""
        value = self.target.log_density(state[0])
        return value + gaussian_log_density(state[1], self.mass) if self.underdamped else value

    def optimal_control(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The exact optimal control for a :class:`~oplearn.sampling.targets.Gaussian` target (tests)."""
        raise NotImplementedError(f"{self.name} has no closed-form optimal control")

    # ----------------------------------------------------------------- provided

    #: Initial weight of the score feature in the control (the gate's bias, :class:`ControlNet`).
    feature_gate: ClassVar[float] = 0.0

    def make_net(self, net: nn.Module | dict | None, state_dim: int | None = None, use_score: bool = True) -> nn.Module:
        """``net`` itself, or a :class:`ControlNet` for this method built with the options of the
        dict ``net`` (``width``, ``depth``, ``use_score``, ``clip``, ``gate_init``; a ``gate_init``
        of ``None`` is the method's :attr:`feature_gate`; ``use_score`` only where the method has a feature)."""
        if isinstance(net, nn.Module):
            return net
        options = dict(net or {})
        options["use_score"] = use_score and options.get("use_score", True)  # a method without a feature takes none
        if options.get("gate_init") is None:
            options["gate_init"] = self.feature_gate
        return ControlNet(self.target.dim, state_dim, horizon=self.horizon, **options)

    def feature(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The score feature :math:`f(t, x)` of the control network (default: the target score)."""
        return self.target.score(x)

    def score_feature(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor | None:
        """:meth:`feature` at detached points (``None`` when the network takes no score)."""
        net = getattr(self, "net", None)
        return self.feature(t, x.detach()) if isinstance(net, ControlNet) and net.use_score else None

    def _momentum(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        device = self.device if generator is None else generator.device
        z = torch.randn(n, self.target.dim, generator=generator, device=device).to(self.device)
        return z * torch.sqrt(torch.as_tensor(self.mass, device=self.device))

    def initial_state(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
        """``(X_0,)`` or ``(X_0, P_0)`` drawn from :math:`p_0`."""
        x = self.prior.sample(n, generator)
        return (x, self._momentum(n, generator)) if self.underdamped else (x,)

    def simulate(self, n: int, generator: torch.Generator | None = None, exploration: float = 0.0) -> Path:
        """``n`` forward paths (normals kept for the on-policy density); gradients flow unless
        called under ``torch.no_grad()``."""
        sde = self.forward_sde(exploration, generator)
        return solve(
            sde, self.initial_state(n, generator), self.times(), self.solver, generator=generator, keep_noise=True
        )

    def log_weights(self, path: Path, on_policy: bool = True) -> torch.Tensor:
        """:math:`\\log w` of ``path`` (module docstring). ``on_policy``: the path was simulated by this
        sampler without exploration, so :math:`\\log p_F` comes from its normals; otherwise the
        forward kernels are evaluated along the given path."""
        forward = self.forward_sde()
        log_forward = (
            noise_log_density(forward, path, self.solver)
            if on_policy
            else forward_log_density(forward, path, self.solver)
        )
        start = tuple(s[0] for s in path.states)
        end = tuple(s[-1] for s in path.states)
        return self.terminal_log_density(end) + self.log_backward(path) - self.initial_log_density(start) - log_forward

    def simulate_backward(self, x: torch.Tensor, generator: torch.Generator | None = None) -> Path:
        """Backward paths ending at the samples ``x`` (exact samples of the target: EUBO)."""
        end = (x, self._momentum(x.shape[0], generator)) if self.underdamped else x
        return solve_backward(self.backward_sde(), end, self.times(), self.solver, generator=generator)

    def training_log_weights(
        self, n: int, generator: torch.Generator | None = None, off_policy: bool = False, exploration: float = 0.0
    ) -> torch.Tensor:
        """Log-weights ``(n,)`` for a loss: on-policy (reparametrised, gradients through the paths)
        or off-policy (paths of the exploring behaviour process, detached; gradients through the
        kernels' densities only)."""
        if not off_policy:
            return self.log_weights(self.simulate(n, generator))
        with torch.no_grad():
            path = self.simulate(n, generator, exploration)
        return self.log_weights(path, on_policy=False)

    @torch.no_grad()
    def estimate(self, n: int, generator: torch.Generator | None = None) -> Estimate:
        """``n`` samples with their log-weights, the importance-sampling :math:`\\log\\hat Z` and the ELBO."""
        path = self.simulate(n, generator)
        log_w = self.log_weights(path)
        return Estimate(path.final, log_w, float(log_mean_exp(log_w)), float(log_w.mean()))

    @torch.no_grad()
    def eubo(self, samples: torch.Tensor, generator: torch.Generator | None = None) -> float:
        """:math:`E_{\\mathbb P_B}[\\log w]` on backward paths from exact ``samples`` (an upper bound of :math:`\\log Z`)."""
        return float(self.log_weights(self.simulate_backward(samples, generator), on_policy=False).mean())
