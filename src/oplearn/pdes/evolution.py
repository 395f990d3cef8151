r"""Scalar evolution equations on a periodic box, solved pseudo-spectrally.

.. math::

    u_t = L u + N(u) + f(x, t), \qquad u(\cdot, 0) = u_0,

with :math:`L` a constant-coefficient linear operator (diagonal in Fourier space),
:math:`N` an explicit, typically nonlinear, term and :math:`f` a source. A subclass writes
its equation once, as :meth:`PeriodicEvolution.terms`; :meth:`~PeriodicEvolution.solve`
integrates the terms with a :mod:`~oplearn.solvers.stepping` stepper (2/3-dealiased) and
:meth:`~PeriodicEvolution.residual` evaluates the same terms on stored frames (not
dealiased) against a finite-difference time derivative.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch

from oplearn.derivatives import time_derivative
from oplearn.grids import Grid
from oplearn.pdes.base import PDE
from oplearn.solvers.spectral import Fourier
from oplearn.solvers.stepping import Nonlinear, Stepper, integrate

#: A source: a field ``(*grid.shape)`` or ``(batch, *grid.shape)`` constant in time, or
#: a function of time returning one.
Forcing = torch.Tensor | Callable[[float], torch.Tensor]


@dataclass(frozen=True)
class Terms:
    """The right-hand side of ``u_t = L u + N(u) + f`` on one grid.

    Attributes
    ----------
    linear : Tensor
        The Fourier symbol of :math:`L`, broadcastable to the spectral shape.
    nonlinear : callable or None
        ``u_hat -> N_hat`` on spectral tensors ``(..., *spectral_shape)`` with any leading
        axes; products must pass through ``fourier.dealias``. ``None`` for linear equations.
    forcing : Tensor or None
        The default source ``f`` in physical space, ``(*grid.shape)``, constant in time.
    """

    linear: torch.Tensor
    nonlinear: Callable[[torch.Tensor], torch.Tensor] | None = None
    forcing: torch.Tensor | None = None


def check_positive(name: str, value: float | str) -> float:
    """``value`` as a float after checking that it is positive and finite.

    Numeric strings are accepted: ``--param nu=1e-4`` arrives as the string ``"1e-4"``
    (YAML 1.1 reads exponents without a decimal point as text).
    """
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be positive and finite, got {value}")
    return float(value)


class FieldSampler(Protocol):
    """Anything that draws ``n`` fields on a grid (e.g. :class:`~oplearn.fields.GaussianRandomField`)."""

    def sample(self, n: int, grid: Grid, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` fields ``(n, *grid.shape)``."""


class ZeroMean:
    """An initial-condition sampler with the spatial mean of each sample removed.

    For equations whose mean is conserved and physically zero (the vorticity of a periodic
    flow) or only shifts the pattern (Kuramoto-Sivashinsky).
    """

    def __init__(self, sampler: FieldSampler) -> None:
        self.sampler = sampler

    def sample(self, n: int, grid: Grid, generator: torch.Generator | None = None) -> torch.Tensor:
        u = self.sampler.sample(n, grid, generator)
        return u - u.mean(dim=tuple(range(1, u.ndim)), keepdim=True)


class PeriodicEvolution(PDE):
    r"""A scalar evolution equation :math:`u_t = L u + N(u) + f` on a periodic box.

    Subclasses set :attr:`stepper`, call :meth:`_set_schedule` and set :attr:`initial`
    (the initial-condition sampler: anything with ``sample(n, grid, generator)``, such as
    :class:`~oplearn.fields.GaussianRandomField`) in their constructor, and implement
    :meth:`terms` and :meth:`params`.

    Shapes
    ------
    inputs ``(batch, 1, *grid.shape)`` (the initial condition), outputs
    ``(batch, len(times), 1, *grid.shape)`` (the trajectory at :attr:`times`).
    """

    periodic = True
    stepper: ClassVar[type[Stepper]]
    times: torch.Tensor
    #: The largest time step; ``None``: one step per output interval.
    dt: float | None
    initial: Any
    #: Time the initial condition drawn from :attr:`initial` is evolved before it becomes
    #: the input (chaotic systems: the input then lies on the attractor).
    burn_in: float = 0.0

    @abc.abstractmethod
    def terms(self, fourier: Fourier) -> Terms:
        """The right-hand side on ``fourier.grid``, dealiased through ``fourier``."""

    def _set_schedule(
        self, t_final: float, n_times: int, include_initial: bool, dt: float | None, refine: int, burn_in: float = 0.0
    ) -> None:
        """Check and store the output times, the time step, the refinement and the burn-in.

        :attr:`times` holds ``n_times`` evenly spaced times ending at ``t_final``: from
        ``0`` (the first frame repeats the initial condition) when ``include_initial``,
        else from ``t_final / n_times``.
        """
        t_final = check_positive("t_final", t_final)
        minimum = 2 if include_initial else 1
        if int(n_times) != n_times or n_times < minimum:
            raise ValueError(f"n_times must be an integer >= {minimum}, got {n_times}")
        if include_initial:
            self.times = torch.linspace(0.0, t_final, int(n_times), dtype=torch.float64)
        else:
            self.times = t_final * torch.arange(1, int(n_times) + 1, dtype=torch.float64) / int(n_times)
        self.t_final, self.n_times = t_final, int(n_times)
        self.dt = None if dt is None else check_positive("dt", dt)
        if int(refine) != refine or refine < 1:
            raise ValueError(f"refine must be a positive integer, got {refine}")
        self.refine = int(refine)
        burn_in = float(burn_in)
        if not burn_in >= 0:
            raise ValueError(f"burn_in must be >= 0, got {burn_in}")
        self.burn_in = burn_in

    def sample_input(self, n: int, grid: Grid, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` initial conditions from :attr:`initial` on ``grid``, evolved for
        :attr:`burn_in` by the solver on ``grid``: ``(n, 1, *grid.shape)``, float64."""
        self._check_grid(grid)
        u0 = self.initial.sample(n, grid, generator)
        if self.burn_in > 0:
            fourier = Fourier(grid, u0.device, dealias=True)
            terms = self.terms(fourier)
            stepper = self.stepper(terms.linear, self._explicit(terms, fourier, None, grid))
            u0 = integrate(stepper, fourier.forward(u0), [self.burn_in], self.dt, observe=fourier.inverse)[:, 0]
        return u0.unsqueeze(1)

    def solve(self, inputs: torch.Tensor, grid: Grid, forcing: Forcing | None = None) -> torch.Tensor:
        """Integrate each initial condition: ``(batch, 1, *grid.shape) -> (batch, len(times), 1, *grid.shape)``.

        Runs on the device of ``inputs`` in double precision (the Fourier symbols are
        float64) and returns the dtype of ``inputs``. ``forcing`` replaces the default
        source (a manufactured solution's, say).
        """
        u0 = self._check_inputs(inputs, grid)
        fourier = Fourier(grid, u0.device, dealias=True)
        terms = self.terms(fourier)
        explicit = self._explicit(terms, fourier, forcing, grid)
        stepper = self.stepper(terms.linear, explicit)
        frames = integrate(stepper, fourier.forward(u0), self.times, self.dt, observe=fourier.inverse)
        return frames.to(u0.dtype).unsqueeze(2)

    def residual(
        self, outputs: torch.Tensor, inputs: torch.Tensor, grid: Grid, forcing: Forcing | None = None
    ) -> torch.Tensor:
        r""":math:`u_t - L u - N(u) - f` at the stored frames (differentiable).

        :math:`u_t` comes from :func:`oplearn.derivatives.time_derivative` (second-order
        finite differences in time over the initial condition and the frames), the spatial
        terms from the same Fourier discretisation as the solver, without dealiasing. For
        ``solve``'s output it is small but not zero: :math:`O(\Delta t^2)` in the frame
        spacing, plus the spatial truncation error. The constant grows with the fastest
        time scale in the frames (the highest modes of a rough initial condition decay at
        the rate :math:`\nu k^2`), so frames far apart give a large residual even for an
        accurate solution. At least three times (the initial one counted) are needed.

        Shapes: ``outputs (batch, len(times), 1, *grid.shape)``, ``inputs (batch, 1, *grid.shape)``
        -> ``(batch, len(times), 1, *grid.shape)``.
        """
        u0 = self._check_inputs(inputs, grid)
        expected = (len(self.times), 1, *grid.shape)
        if outputs.ndim != grid.ndim + 3 or tuple(outputs.shape[1:]) != expected or len(outputs) != len(u0):
            raise ValueError(
                f"{self.name} outputs must have shape ({len(u0)}, *{expected}), got {tuple(outputs.shape)}"
            )
        frames, times = outputs[:, :, 0], self.times.to(outputs.device)
        prepended = float(times[0]) > 0
        if prepended:
            frames = torch.cat([u0.unsqueeze(1), frames], dim=1)
            times = torch.cat([times.new_zeros(1), times])
        fourier = Fourier(grid, frames.device, dealias=False)
        terms = self.terms(fourier)
        u_hat = fourier.forward(frames)
        rhs = terms.linear * u_hat
        if terms.nonlinear is not None:
            rhs = rhs + terms.nonlinear(u_hat)
        rhs = fourier.inverse(rhs)
        source = forcing if forcing is not None else terms.forcing
        if callable(source):
            rhs = rhs + torch.stack([self._check_forcing(source(float(t)), grid) for t in times], dim=-grid.ndim - 1)
        elif source is not None:
            rhs = rhs + self._check_forcing(source, grid).unsqueeze(-grid.ndim - 1)
        residual = time_derivative(frames, times, dim=1) - rhs
        return residual[:, 1:].unsqueeze(2) if prepended else residual.unsqueeze(2)

    def tendency(self, u: torch.Tensor, grid: Grid) -> torch.Tensor:
        r"""The right-hand side :math:`L u + N(u) + f` of each field (the default source, constant
        in time), from the solver's dealiased terms; differentiable.

        Shapes: ``(..., *grid.shape) -> (..., *grid.shape)`` (float64).
        """
        self._check_grid(grid)
        fourier = Fourier(grid, u.device, dealias=True)
        terms = self.terms(fourier)
        u_hat = fourier.forward(u.double())
        rhs = terms.linear * u_hat
        if terms.nonlinear is not None:
            rhs = rhs + terms.nonlinear(u_hat)
        rhs = fourier.inverse(rhs)
        return rhs if terms.forcing is None else rhs + terms.forcing

    def _explicit(self, terms: Terms, fourier: Fourier, forcing: Forcing | None, grid: Grid) -> Nonlinear | None:
        """The stepper's explicit term ``(u_hat, t) -> N_hat + f_hat(t)``, or ``None``."""
        nonlinear = terms.nonlinear
        source = forcing if forcing is not None else terms.forcing
        if source is None:
            return None if nonlinear is None else lambda u_hat, t: nonlinear(u_hat)
        if callable(source):

            def source_hat(t: float) -> torch.Tensor:
                return fourier.forward(self._check_forcing(source(t), grid))
        else:
            constant = fourier.forward(self._check_forcing(source, grid))

            def source_hat(t: float) -> torch.Tensor:
                return constant

        if nonlinear is None:
            return lambda u_hat, t: source_hat(t)
        return lambda u_hat, t: nonlinear(u_hat) + source_hat(t)

    def _check_forcing(self, f: torch.Tensor, grid: Grid) -> torch.Tensor:
        if not isinstance(f, torch.Tensor) or tuple(f.shape[-grid.ndim :]) != grid.shape or f.ndim > grid.ndim + 1:
            shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise ValueError(f"forcing must have shape {grid.shape} or (batch, *{grid.shape}), got {shape}")
        return f

    def _check_grid(self, grid: Grid) -> None:
        if grid.ndim != self.ndim or not grid.periodic:
            raise ValueError(
                f"{self.name} needs a periodic {self.ndim}D grid, got shape {grid.shape} with periodic={grid.periodic}"
            )

    def _check_inputs(self, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        """The initial condition ``(batch, *grid.shape)`` after checking shape and values."""
        self._check_grid(grid)
        if inputs.ndim != grid.ndim + 2 or inputs.shape[1] != 1 or tuple(inputs.shape[2:]) != grid.shape:
            raise ValueError(f"{self.name} inputs must have shape (batch, 1, *{grid.shape}), got {tuple(inputs.shape)}")
        if not torch.isfinite(inputs).all():
            raise ValueError(f"{self.name} initial condition contains NaN or infinite values")
        return inputs[:, 0]
