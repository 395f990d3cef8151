r"""SDEs as objects: drift and diffusion of :math:`dX_t = f(t, X_t)\,dt + \sigma(t, X_t)\,dW_t`.

Every callable here takes the time as a ``(batch,)`` tensor (one time per sample; the
integrators expand a shared grid) and the state as ``(batch, d)``. The diffusion's shape
follows its :mod:`~oplearn.sde.noise` structure: scalar ``()``/``(batch,)``, diagonal
``(d,)``/``(batch, d)`` or matrix ``(d, m)``/``(batch, d, m)``.

Parametric families (per-sample parameters such as volatilities or strikes) are SDEs whose
drift and diffusion close over a ``(batch, p)`` parameter tensor: build one :class:`ItoSDE`
per batch of parameters.

- :class:`SDE` -- the abstract first-order (overdamped) SDE.
- :class:`ItoSDE` -- an SDE from two callables (or a constant diffusion).
- :class:`ControlledSDE` -- :math:`dX = (f + \sigma u)\,dt + \sigma\,dW` for a control
  :math:`u(t, x)` of Brownian dimension (stochastic optimal control, learned samplers).
- :class:`UnderdampedSDE` -- the second-order Langevin system in position and momentum.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import torch

from oplearn.errors import ConfigError
from oplearn.sde.noise import Noise, ScalarNoise

#: ``f(t: (batch,), x: (batch, d)) -> (batch, d)`` and the like.
TimeStateFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class SDE(ABC):
    r""":math:`dX_t = f(t, X_t)\,dt + \sigma(t, X_t)\,dW_t`, ``noise`` says how :math:`\sigma` acts."""

    noise: Noise

    @abstractmethod
    def drift(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """:math:`f(t, x)`: ``(batch,), (batch, d) -> (batch, d)``."""

    @abstractmethod
    def diffusion(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        r""":math:`\sigma(t, x)` in the shape of ``noise`` (module docstring)."""


class ItoSDE(SDE):
    """An SDE given by its drift callable and its diffusion (a callable, or a constant tensor/float)."""

    def __init__(
        self, drift: TimeStateFn, diffusion: TimeStateFn | torch.Tensor | float, noise: Noise | None = None
    ) -> None:
        self._drift, self._diffusion = drift, diffusion
        self.noise = noise or ScalarNoise()

    def drift(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self._drift(t, x)

    def diffusion(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if callable(self._diffusion):
            return self._diffusion(t, x)
        return torch.as_tensor(self._diffusion, dtype=x.dtype, device=x.device)


class ControlledSDE(SDE):
    r""":math:`dX = \big(f(t, X) + \sigma(t, X)\,u(t, X)\big)\,dt + \sigma(t, X)\,dW` over a base SDE.

    The control ``u(t, x) -> (batch, m)`` lives in the Brownian coordinates, so that by
    Girsanov's theorem the log-density of the controlled path measure with respect to the base
    one is :math:`\int u \cdot dW + \tfrac12 \int |u|^2\,dt`
    (:func:`oplearn.sde.likelihood.girsanov_log_ratio`).
    """

    def __init__(self, base: SDE, control: TimeStateFn) -> None:
        self.base, self.control = base, control
        self.noise = base.noise

    def drift(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.base.drift(t, x) + self.noise.apply(self.base.diffusion(t, x), self.control(t, x))

    def diffusion(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.base.diffusion(t, x)


class UnderdampedSDE:
    r"""Underdamped (kinetic) Langevin dynamics in position :math:`X` and momentum :math:`P`:

    .. math::

        dX = M^{-1} P\,dt, \qquad
        dP = F(t, X)\,dt - \gamma P\,dt + \sigma\,u(t, X, P)\,dt + \sigma\,dW, \qquad
        \sigma = \sqrt{2\gamma M},

    with a diagonal mass :math:`M` and friction :math:`\gamma > 0` (floats or ``(d,)`` tensors,
    possibly learnable) and an optional control :math:`u` (default 0). With
    :math:`F = \nabla\log\pi` and :math:`u = 0` the law :math:`\pi(x)\,\mathcal N(p; 0, M)` is
    invariant.

    Splitting integrators (:class:`oplearn.sde.solvers.Splitting`) use the exact flows of its
    three parts: ``A`` (:math:`dX = M^{-1}P\,dt`), ``B`` (:math:`dP = F\,dt`) and ``O`` (the
    Ornstein-Uhlenbeck part with the control frozen over the sub-step, a Gaussian with
    :meth:`momentum_mean` and :meth:`momentum_std`).

    References
    ----------
    Leimkuhler, Matthews, "Rational construction of stochastic numerical methods for molecular
    sampling", AMRX 2013 (the A/B/O splitting). Blessing et al., "Underdamped Diffusion Bridges
    with Applications to Sampling", ICLR 2025 (controlled underdamped samplers).
    """

    def __init__(
        self,
        force: TimeStateFn,
        friction: float | torch.Tensor = 1.0,
        mass: float | torch.Tensor = 1.0,
        control: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        if bool(torch.any(torch.as_tensor(friction) <= 0)) or bool(torch.any(torch.as_tensor(mass) <= 0)):
            raise ConfigError("underdamped SDE: friction and mass must be positive")
        self.force, self.friction, self.mass, self.control = force, friction, mass, control

    def velocity(self, p: torch.Tensor) -> torch.Tensor:
        """:math:`M^{-1} p`."""
        return p / self.mass

    def momentum_mean(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        r"""Mean of the exact ``O`` flow over a time ``h`` from :math:`p`, the control frozen:

        .. math::

            P_h \sim \mathcal N\big(e^{-\gamma h} p + (1 - e^{-\gamma h})\,\sigma u / \gamma,\;
            (1 - e^{-2\gamma h}) M\big), \qquad u = u(t, x, p).

        Shapes: ``t (batch,)``, ``x, p (batch, d)``, ``h`` scalar or ``(batch, 1)`` -> ``(batch, d)``.
        """
        decay = torch.exp(-self.friction * h)
        mean = decay * p
        if self.control is not None:
            sigma = torch.sqrt(2 * self.friction * torch.as_tensor(self.mass, dtype=p.dtype, device=p.device))
            mean = mean + (1 - decay) * sigma * self.control(t, x, p) / self.friction
        return mean

    def momentum_std(self, h: torch.Tensor) -> torch.Tensor:
        """Standard deviation :math:`\\sqrt{(1 - e^{-2\\gamma h}) M}` of the ``O`` flow (broadcastable to ``(batch, d)``)."""
        return torch.sqrt((1 - torch.exp(-2 * self.friction * h)) * self.mass)
