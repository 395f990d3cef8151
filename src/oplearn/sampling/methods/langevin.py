r"""Annealed Langevin samplers: ULA, MCD and CMCD, overdamped or underdamped.

All follow the geometric annealing path from the initial distribution :math:`p_0` (a learned
diagonal Gaussian) to the target,

.. math:: \log\pi_t(x) = (1 - \lambda_t)\log p_0(x) + \lambda_t\log\gamma(x), \qquad \lambda_t = t / T

(or a learned schedule, ``learn_annealing``: :mod:`oplearn.sampling.annealing`),

with Langevin dynamics of diffusion coefficient :math:`\sigma` (learned, :math:`a = \sigma^2`).
Overdamped (Euler-Maruyama kernels):

- forward :math:`dX = a\big(\nabla\log\pi_t(X) + u^F(t, X)\big)\,dt + \sqrt{2a}\,dW`,
- backward drift :math:`a\big(\nabla\log\pi_t(x) + u^B(t, x)\big)` (pointing backwards in time).

Underdamped (:class:`~oplearn.sde.terms.UnderdampedSDE`, a splitting scheme): the force is
:math:`\nabla\log\pi_t`, the friction :math:`\gamma` and mass :math:`M`, and the controls act in the
momentum's ``O`` kernels, :math:`u^F` forwards and :math:`u^B` backwards.

======  =========================  ============================  ==========================
method  :math:`u^F`                :math:`u^B`                    reference
======  =========================  ============================  ==========================
ULA     0                          0                             uncorrected (unadjusted) Langevin annealing
MCD     0                          :math:`-s_\theta` (learned)    Monte Carlo Diffusion
CMCD    :math:`u_\theta`           :math:`-u_\theta`              Controlled Monte Carlo Diffusion
======  =========================  ============================  ==========================

With :math:`u = 0` the forward and backward kernels are each other's reversal only in the
limit of slow annealing, so ULA's weights correct a bias that MCD and CMCD learn to remove.
The networks take the annealed score :math:`\nabla\log\pi_t` as their feature (overdamped; the
underdamped ones see :math:`(x, p)`).

References
----------
Thin et al., "Monte Carlo variational auto-encoders", ICML 2021, and Geffner, Domke, "MCMC
variational inference via uncorrected Hamiltonian annealing", NeurIPS 2021 (ULA, UHA). Doucet,
Grathwohl, Matthews, Strathmann, "Score-based diffusion meets annealed importance sampling",
NeurIPS 2022 (MCD, LDVI). Vargas, Padhy, Blessing, Nüsken, "Transport meets variational
inference: controlled Monte Carlo diffusions", ICLR 2024 (CMCD). Blessing et al.,
"Underdamped Diffusion Bridges with Applications to Sampling", ICLR 2025 (underdamped versions).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from oplearn.sampling.annealing import AnnealingSchedule
from oplearn.sampling.methods.base import Sampler, explore, gaussian_log_density
from oplearn.sampling.networks import ControlNet
from oplearn.sampling.prior import GaussianPrior
from oplearn.sampling.targets.base import Target
from oplearn.sde import (
    SDE,
    ItoSDE,
    Path,
    Splitting,
    UnderdampedSDE,
    backward_log_density,
    forward_log_density,
    noise_log_density,
    solve,
)


class AnnealedLangevin(Sampler):
    """Shared parts of ULA, MCD and CMCD (module docstring).

    Parameters
    ----------
    scale:
        Initial scale of :math:`p_0` (learned with its mean).
    diffusion:
        Initial :math:`\\sigma` (learned; overdamped only).
    integrator:
        ``EM`` for the overdamped samplers, or a splitting scheme (``OBAB``, ``BAOAB``,
        ``OBABO``) for the underdamped ones.
    friction, mass:
        Initial values for the underdamped dynamics, both learned (``learn_mass``): the mass sets
        the kernels' time scale (mass :math:`M` at friction :math:`\\gamma` is unit mass at friction
        :math:`\\gamma\\sqrt M` with the time step :math:`h/\\sqrt M`), as the overdamped samplers'
        learned :math:`\\sigma` sets theirs and as the references learn their step size.
    learn_mass:
        Learn the mass (underdamped only); ``False`` keeps it at ``mass``.
    learn_diffusion:
        Learn :math:`\\sigma` (overdamped only); ``False`` keeps it at ``diffusion``. The
        log-variance loss can drive a learned :math:`\\sigma` towards 0 (BENCHMARKS.md, Many-Well):
        the transport then stops and the sampler is importance sampling from its learned
        :math:`p_0`.
    learn_annealing:
        Learn the annealing schedule :math:`\\lambda(t)`, piecewise linear with one piece per step
        (:mod:`oplearn.sampling.annealing`); ``False`` keeps :math:`\\lambda = t / T`.
    """

    #: Which controls the method learns: ``"forward"`` and/or ``"backward"``.
    controls: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        target: Target,
        steps: int = 100,
        horizon: float = 1.0,
        grid: str = "uniform",
        scale: float = 1.0,
        diffusion: float = 1.0,
        integrator: str = "EM",
        friction: float = 1.0,
        mass: float = 1.0,
        learn_mass: bool = True,
        learn_diffusion: bool = True,
        net: ControlNet | dict | None = None,
        learn_annealing: bool = False,
    ) -> None:
        solver = None if integrator == "EM" else Splitting(integrator)
        super().__init__(target, steps, horizon, grid, solver)
        self.annealing = AnnealingSchedule(horizon, steps if learn_annealing else 0)
        self.prior = GaussianPrior(target.dim, scale, learn=True)
        if self.underdamped:
            self.log_friction = nn.Parameter(torch.tensor(math.log(friction)))
            self._parameter_or_buffer("log_mass", math.log(mass), learn_mass)
        else:
            self._parameter_or_buffer("log_diffusion", math.log(diffusion), learn_diffusion)
        if self.controls:
            state_dim = 2 * target.dim if self.underdamped else target.dim
            self.net = self.make_net(net, state_dim, use_score=not self.underdamped)

    def _parameter_or_buffer(self, name: str, value: float, learn: bool) -> None:
        """Register the scalar ``value`` as ``name``: a parameter if ``learn``, else a buffer."""
        if learn:
            setattr(self, name, nn.Parameter(torch.tensor(value)))
        else:
            self.register_buffer(name, torch.tensor(value))

    @property
    def mass(self) -> torch.Tensor:
        """The underdamped dynamics' mass :math:`M` (a scalar tensor)."""
        return torch.exp(self.log_mass)

    def annealed_log_density(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\log\\pi_t(x)` (unnormalised): ``(batch,), (batch, d) -> (batch,)``."""
        lam = self.annealing(t)
        return (1 - lam) * self.prior.log_density(x) + lam * self.target.log_density(x)

    def annealed_score(
        self, t: torch.Tensor, x: torch.Tensor, target_score: torch.Tensor | None = None
    ) -> torch.Tensor:
        """:math:`\\nabla\\log\\pi_t(x)`, differentiable in ``x`` when ``x`` requires gradients
        (``target_score``: :math:`\\nabla\\log\\gamma(x)` when already known)."""
        lam = self.annealing(t)[:, None]
        return (1 - lam) * self.prior.score(x) + lam * (self.target.score(x) if target_score is None else target_score)

    def _control(self, sign: float, t: torch.Tensor, z: torch.Tensor, score: torch.Tensor | None) -> torch.Tensor:
        return sign * self.net(t, z, score)

    def _drift(
        self,
        direction: str,
        exploration: float = 0.0,
        generator: torch.Generator | None = None,
        target_scores: list | torch.Tensor | None = None,
    ) -> ItoSDE:
        """Overdamped drift :math:`a(\\nabla\\log\\pi_t + u)` with ``u`` the ``direction``'s control.

        ``target_scores``: a list to which every call appends the target scores it computed (the
        tape of a simulation), or the tensor of target scores at the points of the one call to
        come (a replay: no target evaluation).
        """
        a = torch.exp(2 * self.log_diffusion)
        learned = direction in self.controls
        sign = 1.0 if direction == "forward" else -1.0

        def drift(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            if isinstance(target_scores, torch.Tensor):
                known = target_scores
            else:
                known = self.target.score(x)
                if target_scores is not None:
                    target_scores.append(known)
            score = self.annealed_score(t, x, known)
            if not learned:
                return a * score
            u = explore(lambda t_, x_: self._control(sign, t_, x_, score), exploration, generator)(t, x)
            return a * (score + u)

        return ItoSDE(drift, torch.exp(self.log_diffusion) * math.sqrt(2.0))

    def simulate(self, n: int, generator: torch.Generator | None = None, exploration: float = 0.0) -> Path:
        return self.solve_from(self.initial_state(n, generator), self.times(), generator, exploration)

    def solve_from(
        self,
        state: tuple[torch.Tensor, ...],
        times: torch.Tensor,
        generator: torch.Generator | None = None,
        exploration: float = 0.0,
    ) -> Path:
        """Forward paths from ``state`` along ``times`` (normals kept); overdamped paths keep the
        target scores the drift computed (:class:`ScoredPath`) so that their weights need no
        second evaluation of the target."""
        if self.underdamped:
            return solve(
                self.forward_sde(exploration, generator),
                state,
                times,
                self.solver,
                generator=generator,
                keep_noise=True,
            )
        tape: list[torch.Tensor] = []
        path = solve(
            self._drift("forward", exploration, generator, tape),
            state,
            times,
            self.solver,
            generator=generator,
            keep_noise=True,
        )
        return ScoredPath(path.times, path.states, path.noise, path.records, torch.stack(tape))

    def transition_log_ratio(self, path: Path, on_policy: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`\\log p_B - \\log p_F` of the path's transitions and :math:`\\log\\gamma(X_N)`, both ``(batch,)``.
        On a :class:`ScoredPath` the kernels replay its recorded target scores, and the end point's
        value and score come from one evaluation: :math:`N + 1` target evaluations per path of
        :math:`N` steps."""
        if not isinstance(path, ScoredPath):
            forward = self.forward_sde()
            log_forward = (
                noise_log_density(forward, path, self.solver)
                if on_policy
                else forward_log_density(forward, path, self.solver)
            )
            return backward_log_density(self.backward_sde(), path, self.solver) - log_forward, self.target.log_density(
                path.final
            )
        value, score = self.target.log_density_and_score(path.final)
        scores = torch.cat([path.target_scores, score[None]])
        if on_policy:
            log_forward = noise_log_density(self._drift("forward"), path, self.solver)
        else:
            log_forward = forward_log_density(
                self._drift("forward", target_scores=scores[:-1].flatten(0, 1)), path, self.solver
            )
        log_backward = backward_log_density(
            self._drift("backward", target_scores=scores[1:].flatten(0, 1)), path, self.solver
        )
        return log_backward - log_forward, value

    def log_weights(self, path: Path, on_policy: bool = True) -> torch.Tensor:
        ratio, value = self.transition_log_ratio(path, on_policy)
        end = value + gaussian_log_density(path.states[1][-1], self.mass) if self.underdamped else value
        return end + ratio - self.initial_log_density(tuple(s[0] for s in path.states))

    def _underdamped(
        self, direction: str, exploration: float = 0.0, generator: torch.Generator | None = None
    ) -> UnderdampedSDE:
        sign = 1.0 if direction == "forward" else -1.0
        control = None
        if direction in self.controls:
            control = explore(
                lambda t, x, p: self._control(sign, t, torch.cat([x, p], -1), None), exploration, generator
            )
        return UnderdampedSDE(self.annealed_score, torch.exp(self.log_friction), self.mass, control)

    def forward_sde(self, exploration: float = 0.0, generator: torch.Generator | None = None) -> SDE | UnderdampedSDE:
        build = self._underdamped if self.underdamped else self._drift
        return build("forward", exploration, generator)

    def backward_sde(self) -> SDE | UnderdampedSDE:
        return self._underdamped("backward") if self.underdamped else self._drift("backward")


@dataclass
class ScoredPath(Path):
    """A :class:`~oplearn.sde.solvers.Path` with the target scores its drift computed,
    ``target_scores (steps, batch, d)`` at :math:`X_0, \\dots, X_{N-1}`."""

    target_scores: torch.Tensor | None = None


class ULA(AnnealedLangevin):
    """Unadjusted Langevin annealing (ULA; underdamped: UHA), no control."""

    name = "ula"
    learns_control = False


class MCD(AnnealedLangevin):
    """Monte Carlo Diffusion (MCD; underdamped: LDVI), a learned backward correction."""

    name = "mcd"
    controls = ("backward",)


class CMCD(AnnealedLangevin):
    """Controlled Monte Carlo Diffusion, one control, added forwards and subtracted backwards."""

    name = "cmcd"
    controls = ("forward", "backward")
