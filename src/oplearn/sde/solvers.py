r"""Fixed-grid SDE integrators with one interface, and the loop that runs them.

A solver is a small object with a stated weak order (``order``: the weak error
:math:`|E\,\phi(X^h_T) - E\,\phi(X_T)| = O(h^{order})` for smooth :math:`\phi`) and three
methods: :meth:`Solver.noise_shape` (the standard normals one step consumes),
:meth:`Solver.init` (its own state, e.g. a cached force) and :meth:`Solver.step`, which maps
``(state, solver_state)`` to the next pair; no state is hidden in the solver object. Every
step is a composition of Gaussian kernels and deterministic volume-preserving maps; the
kernels are exposed (:meth:`Solver.transitions`, :meth:`Solver.kernel`) so that path
likelihoods (:mod:`oplearn.sde.likelihood`) work for every solver.
:func:`solve` draws the normals (seeded by a ``torch.Generator``, or given explicitly),
steps along a :mod:`time grid <oplearn.sde.times>` and returns a :class:`Path`.

========================  ================================  ==========  ============================
solver                    SDE                               weak order  drift / force calls a step
========================  ================================  ==========  ============================
``EulerMaruyama()``       any first-order SDE               1           1
``ExponentialEuler()``    (controlled) Ornstein-Uhlenbeck   1           1 (control only)
``Splitting("OBAB")``     underdamped                       1           1 (the last ``B`` is reused)
``Splitting("BAOAB")``    underdamped                       2           1
``Splitting("OBABO")``    underdamped                       2           1
========================  ================================  ==========  ============================

Euler-Maruyama: :math:`X_{k+1} = X_k + f(t_k, X_k) h_k + \sigma(t_k, X_k)\,\Delta W_k`,
:math:`\Delta W_k = \sqrt{h_k}\,\xi_k`.

A splitting scheme is the string of its sub-steps, applied left to right; each letter's
occurrences share the step equally (``BAOAB``: ``B`` and ``A`` over ``h/2`` twice, ``O`` over
``h``): ``A`` moves the position, ``B`` kicks the momentum with the force, ``O`` samples the
exact Ornstein-Uhlenbeck flow of the momentum
(:meth:`~oplearn.sde.terms.UnderdampedSDE.momentum_mean`, ``momentum_std``). A sub-step is evaluated at the
time :math:`t_k + h_k \cdot (\text{fraction of the A sub-steps done})`. Palindromic schemes
are symmetric Strang splittings (weak order 2), the others Lie-Trotter (weak order 1). When
the scheme's first ``B`` precedes every ``A`` and its last ``B`` follows them all, the last
force evaluation of a step is the first of the next one and is reused.

References
----------
Kloeden, Platen, "Numerical Solution of Stochastic Differential Equations", 1992 (Euler-
Maruyama, weak order 1). Leimkuhler, Matthews, "Rational construction of stochastic numerical
methods for molecular sampling", AMRX 2013 (BAOAB, weak order 2). Blessing et al.,
"Underdamped Diffusion Bridges with Applications to Sampling", ICLR 2025 (OBAB, BAOAB, OBABO
as sampler integrators).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, NamedTuple

import torch

from oplearn.errors import OplearnError
from oplearn.sde.noise import DiagonalNoise, Noise
from oplearn.sde.terms import SDE, ControlledSDE, TimeStateFn, UnderdampedSDE

if TYPE_CHECKING:
    from oplearn.sde.linear import OrnsteinUhlenbeck

State = tuple[torch.Tensor, ...]
#: What a solver carries from one step to the next besides the state (a cached force, or ``None``).
SolverState = torch.Tensor | None


class Transitions(NamedTuple):
    """The Gaussian transitions of a path, flattened over steps and samples (``n`` rows).

    The forward kernel moves ``start`` to ``end`` at time ``t_forward`` given the state
    ``given_forward``; a backward kernel moves ``end`` back to ``start`` at ``t_backward``
    given ``given_backward``. For Euler-Maruyama the state is the variable itself
    (``given_forward = start = x_k``, ``given_backward = end = x_{k+1}``); for a splitting
    scheme the variable is the momentum of an ``O`` sub-step and the state its position.
    ``noise`` holds the normals that produced ``end`` (when the path kept them).
    """

    t_forward: torch.Tensor
    t_backward: torch.Tensor
    given_forward: torch.Tensor
    given_backward: torch.Tensor
    start: torch.Tensor
    end: torch.Tensor
    h: torch.Tensor
    noise: torch.Tensor | None


class Solver(ABC):
    """A fixed-step integrator (module docstring).

    Every solver's random part is a sequence of Gaussian kernels, exposed for path
    likelihoods (:mod:`oplearn.sde.likelihood`) by :meth:`transitions` (which variables of a
    path each kernel moved) and :meth:`kernel` (its mean, coefficient and variance scale).
    """

    order: float

    @abstractmethod
    def noise_shape(self, sde: SDE | UnderdampedSDE, state: State) -> tuple[int, ...]:
        """Shape of the standard normals one step consumes."""

    def init(self, sde: SDE | UnderdampedSDE, t: torch.Tensor, state: State) -> SolverState:
        """The solver's own state before the first step (``None`` when it keeps none)."""
        return None

    @abstractmethod
    def step(
        self,
        sde: SDE | UnderdampedSDE,
        t: torch.Tensor,
        dt: torch.Tensor,
        state: State,
        solver_state: SolverState,
        xi: torch.Tensor,
    ) -> tuple[State, SolverState, torch.Tensor | None]:
        """One step from time ``t`` over ``dt`` (both ``(batch,)``) with normals ``xi``:
        ``(next state, next solver state, record)``; a record (or ``None``) is what the path
        keeps of the step beyond its state."""

    @abstractmethod
    def step_back(
        self, sde: SDE | UnderdampedSDE, t: torch.Tensor, dt: torch.Tensor, state: State, xi: torch.Tensor
    ) -> tuple[State, torch.Tensor | None]:
        """One step of the backward process from time ``t + dt`` to ``t``: the forward step's
        deterministic maps inverted and its kernels replaced by those of the backward-pointing
        ``sde``; returns ``(state at t, record)`` with the record in the forward step's layout."""

    @abstractmethod
    def transitions(self, path: Path) -> Transitions:
        """The Gaussian transitions of a kept path."""

    @abstractmethod
    def kernel(
        self, sde: SDE | UnderdampedSDE, t: torch.Tensor, given: torch.Tensor, y: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean, coefficient ``sigma`` and variance scale ``v`` of the kernel of ``sde`` moving ``y``
        (given the state ``given``) over ``h``: the next value is ``mean + sigma sqrt(v) xi``."""

    @abstractmethod
    def kernel_scale(
        self, sde: SDE | UnderdampedSDE, t: torch.Tensor, given: torch.Tensor, y: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sigma, v)`` of :meth:`kernel` alone (no drift or control evaluation where they do not enter)."""

    @abstractmethod
    def kernel_noise(self, sde: SDE | UnderdampedSDE) -> Noise:
        """The noise structure of :meth:`kernel`'s coefficient."""


class GaussianStep(Solver):
    """A one-step scheme :math:`X_{k+1} = m(t_k, X_k, h_k) + \\sigma(t_k, X_k)\\sqrt{v_k}\\,\\xi_k` for a
    first-order SDE; subclasses give :meth:`kernel`."""

    def noise_shape(self, sde: SDE, state: State) -> tuple[int, ...]:
        x = state[0]
        return (x.shape[0], sde.noise.brownian_dim(x.shape[1]))

    def step(
        self,
        sde: SDE,
        t: torch.Tensor,
        dt: torch.Tensor,
        state: State,
        solver_state: SolverState,
        xi: torch.Tensor,
    ) -> tuple[State, SolverState, torch.Tensor | None]:
        (x,) = state
        mean, sigma, variance = self.kernel(sde, t, x, x, dt[:, None])
        return (mean + sde.noise.apply(sigma, torch.sqrt(variance) * xi),), None, None

    def step_back(
        self, sde: SDE, t: torch.Tensor, dt: torch.Tensor, state: State, xi: torch.Tensor
    ) -> tuple[State, torch.Tensor | None]:
        (y,) = state
        mean, sigma, variance = self.kernel(sde, t + dt, y, y, dt[:, None])
        return (mean + sde.noise.apply(sigma, torch.sqrt(variance) * xi),), None

    def transitions(self, path: Path) -> Transitions:
        xs = path.xs
        if xs.shape[0] != path.times.shape[0]:
            raise OplearnError("path log-density: the path was not kept (solve with keep_path=True)")
        steps, batch, d = xs[:-1].shape
        t = path.times if path.times.ndim == 2 else path.times[:, None].expand(-1, batch)
        h = path.step_sizes().expand(-1, batch, 1).reshape(-1, 1)
        start, end = xs[:-1].reshape(-1, d), xs[1:].reshape(-1, d)
        noise = None if path.noise is None else path.noise.reshape(steps * batch, -1)
        return Transitions(t[:-1].reshape(-1), t[1:].reshape(-1), start, end, start, end, h, noise)

    def kernel_noise(self, sde: SDE) -> Noise:
        return sde.noise


class EulerMaruyama(GaussianStep):
    r"""Euler-Maruyama for :math:`dX = f\,dt + \sigma\,dW` (weak order 1, strong order 1/2):
    :math:`m = x + f(t, x) h`, :math:`v = h`."""

    order: ClassVar[float] = 1.0

    def kernel(
        self, sde: SDE, t: torch.Tensor, given: torch.Tensor, y: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return y + sde.drift(t, y) * h, sde.diffusion(t, y), h

    def kernel_scale(
        self, sde: SDE, t: torch.Tensor, given: torch.Tensor, y: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return sde.diffusion(t, y), h


class ExponentialEuler(GaussianStep):
    r"""Exponential integrator for an Ornstein-Uhlenbeck process with an optional control,
    :math:`dX = -\beta(t)(X - \mu)\,dt + \sigma(t) u\,dt + \sigma(t)\,dW`,
    :math:`\sigma = s\sqrt{2\beta}` (an :class:`~oplearn.sde.linear.OrnsteinUhlenbeck`, or a
    :class:`~oplearn.sde.terms.ControlledSDE` over one), with :math:`\beta`, :math:`\sigma` and
    :math:`u` frozen at the start of the step (weak order 1, exact without control for a
    constant rate):

    .. math::

        m = \mu + e^{-\beta h}(x - \mu) + (1 - e^{-\beta h})\,\sigma u / \beta, \qquad
        \text{coefficient } s, \qquad v = 1 - e^{-2\beta h}.

    References
    ----------
    Vargas, Grathwohl, Doucet, "Denoising Diffusion Samplers", ICLR 2023 (the DDS kernels).
    """

    order: ClassVar[float] = 1.0

    @staticmethod
    def _parts(sde: SDE) -> tuple[OrnsteinUhlenbeck, TimeStateFn | None]:
        from oplearn.sde.linear import OrnsteinUhlenbeck

        base, control = (sde.base, sde.control) if isinstance(sde, ControlledSDE) else (sde, None)
        if not isinstance(base, OrnsteinUhlenbeck):
            raise OplearnError("exponential Euler: the SDE must be an Ornstein-Uhlenbeck process or a controlled one")
        return base, control

    def _decay(self, ou: OrnsteinUhlenbeck, t: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        beta = ou.beta(t).reshape(-1, 1)
        if bool(torch.any(beta <= 0)):
            raise OplearnError("exponential Euler: the Ornstein-Uhlenbeck rate must be > 0")
        return beta, torch.exp(-beta * h)

    def kernel(
        self, sde: SDE, t: torch.Tensor, given: torch.Tensor, y: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ou, control = self._parts(sde)
        beta, decay = self._decay(ou, t, h)
        mean = ou.mean + decay * (y - ou.mean)
        if control is not None:
            mean = mean + (1 - decay) * ou.diffusion(t, y).reshape(-1, 1) * control(t, y) / beta
        return (mean, *self.kernel_scale(sde, t, given, y, h))

    def kernel_scale(
        self, sde: SDE, t: torch.Tensor, given: torch.Tensor, y: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        ou, _ = self._parts(sde)
        _, decay = self._decay(ou, t, h)
        return torch.as_tensor(ou.scale, dtype=y.dtype, device=y.device), 1 - decay**2


class Splitting(Solver):
    """A splitting scheme for :class:`~oplearn.sde.terms.UnderdampedSDE`, e.g. ``Splitting("BAOAB")``
    (module docstring); the state is ``(x, p)``, the solver state the cached force, and each
    step records ``(x, p_in, p_out)`` of its ``O`` sub-steps for path likelihoods."""

    def __init__(self, scheme: str) -> None:
        if not scheme or set(scheme) - set("ABO") or not all(c in scheme for c in "ABO"):
            raise OplearnError(f"splitting scheme '{scheme}': use the letters A, B and O, each at least once")
        self.scheme = scheme
        self.order = 2.0 if scheme == scheme[::-1] else 1.0
        self.counts = {c: scheme.count(c) for c in "ABO"}
        a_first, a_last = scheme.index("A"), scheme.rindex("A")
        self.reuses_force = scheme.index("B") < a_first and scheme.rindex("B") > a_last
        #: Fraction of the step's A sub-steps done before each O sub-step (its time within the step).
        self.o_fractions = [scheme[:i].count("A") / self.counts["A"] for i, c in enumerate(scheme) if c == "O"]

    def __repr__(self) -> str:
        return f"Splitting({self.scheme!r})"

    def noise_shape(self, sde: UnderdampedSDE, state: State) -> tuple[int, ...]:
        return (self.counts["O"], *state[0].shape)

    def init(self, sde: UnderdampedSDE, t: torch.Tensor, state: State) -> SolverState:
        return sde.force(t, state[0]) if self.reuses_force else None

    def step(
        self,
        sde: UnderdampedSDE,
        t: torch.Tensor,
        dt: torch.Tensor,
        state: State,
        solver_state: SolverState,
        xi: torch.Tensor,
    ) -> tuple[State, SolverState, torch.Tensor]:
        x, p = state
        h = dt[:, None]
        n_a, n_b, n_o = (self.counts[c] for c in "ABO")
        a_done = b_done = 0
        force, record = None, []
        for letter in self.scheme:
            time = t + dt * (a_done / n_a)
            if letter == "A":
                x = x + (h / n_a) * sde.velocity(p)
                a_done += 1
            elif letter == "B":
                reuse = self.reuses_force and b_done == 0
                force = solver_state if reuse else sde.force(time, x)
                p = p + (h / n_b) * force
                b_done += 1
            else:
                mean, std, _ = self.kernel(sde, time, x, p, h / n_o)
                p_out = mean + std * xi[len(record)]
                record.append(torch.stack([x, p, p_out]))
                p = p_out
        return (x, p), (force if self.reuses_force else None), torch.stack(record)

    def step_back(
        self, sde: UnderdampedSDE, t: torch.Tensor, dt: torch.Tensor, state: State, xi: torch.Tensor
    ) -> tuple[State, torch.Tensor]:
        x, p = state
        h = dt[:, None]
        n_a, n_b, n_o = (self.counts[c] for c in "ABO")
        a_done, record = n_a, []
        for letter in reversed(self.scheme):
            time = t + dt * (a_done / n_a)
            if letter == "A":
                x = x - (h / n_a) * sde.velocity(p)
                a_done -= 1
            elif letter == "B":
                p = p - (h / n_b) * sde.force(time, x)
            else:
                mean, std, _ = self.kernel(sde, time, x, p, h / n_o)
                p_in = mean + std * xi[n_o - 1 - len(record)]
                record.append(torch.stack([x, p_in, p]))
                p = p_in
        return (x, p), torch.stack(record[::-1])

    def transitions(self, path: Path) -> Transitions:
        if path.records is None:
            raise OplearnError("path log-density: the path was not kept (solve with keep_path=True)")
        steps, n_o, _, batch, d = path.records.shape
        t = path.times if path.times.ndim == 2 else path.times[:, None].expand(-1, batch)
        dt = t[1:] - t[:-1]
        frac = torch.tensor(self.o_fractions, dtype=t.dtype, device=t.device)
        t_o = (t[:-1, None, :] + dt[:, None, :] * frac[None, :, None]).reshape(-1)
        h = (dt[:, None, :] / n_o).expand(steps, n_o, batch).reshape(-1, 1)
        x, p_in, p_out = (path.records[:, :, i].reshape(-1, d) for i in range(3))
        noise = None if path.noise is None else path.noise.reshape(-1, d)
        return Transitions(t_o, t_o, x, x, p_in, p_out, h, noise)

    def kernel(
        self, sde: UnderdampedSDE, t: torch.Tensor, given: torch.Tensor, y: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return sde.momentum_mean(t, given, y, h), sde.momentum_std(h).expand_as(y), torch.ones_like(h)

    def kernel_scale(
        self, sde: UnderdampedSDE, t: torch.Tensor, given: torch.Tensor, y: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return sde.momentum_std(h).expand_as(y), torch.ones_like(h)

    def kernel_noise(self, sde: UnderdampedSDE) -> Noise:
        return DiagonalNoise()


@dataclass
class Path:
    """A discretised path.

    Attributes
    ----------
    times:
        ``(steps + 1,)`` or, for per-sample grids, ``(steps + 1, batch)``.
    states:
        One tensor per state component (``(x,)``, or ``(x, p)`` for underdamped SDEs), each
        ``(steps + 1, batch, d)``, or ``(1, batch, d)`` (the end point alone) when the path
        was not kept.
    noise:
        The standard normals used, ``(steps, *solver.noise_shape)``, when kept.
    records:
        What the solver recorded of each step (``(steps, ...)``, kept with the path; e.g. the
        ``O`` sub-steps of a splitting scheme), or ``None``.
    """

    times: torch.Tensor
    states: State
    noise: torch.Tensor | None = None
    records: torch.Tensor | None = None

    @property
    def xs(self) -> torch.Tensor:
        """Positions ``(steps + 1, batch, d)`` (or ``(1, batch, d)``)."""
        return self.states[0]

    @property
    def final(self) -> torch.Tensor:
        """:math:`X_T`: ``(batch, d)``."""
        return self.states[0][-1]

    @property
    def steps(self) -> int:
        return self.times.shape[0] - 1

    def step_sizes(self) -> torch.Tensor:
        """:math:`h_k`, shaped to broadcast against ``(steps, batch, d)``: ``(steps, 1, 1)`` or ``(steps, batch, 1)``."""
        h = self.times[1:] - self.times[:-1]
        return h.reshape(h.shape[0], -1, 1)

    def increments(self) -> torch.Tensor:
        r"""Brownian increments :math:`\Delta W_k = \sqrt{h_k}\,\xi_k` of an Euler-Maruyama path: ``(steps, batch, m)``."""
        if self.noise is None or self.noise.ndim != 3:
            raise OplearnError("path: Brownian increments need an Euler-Maruyama path solved with keep_noise=True")
        return torch.sqrt(self.step_sizes()) * self.noise


def _kept_path(times: torch.Tensor, kept: list[State], records: list[torch.Tensor], noise: torch.Tensor | None) -> Path:
    states = tuple(torch.stack(component) for component in zip(*kept))
    return Path(times, states, noise, torch.stack(records) if records else None)


def _check_times(times: torch.Tensor, batch: int) -> None:
    if times.ndim not in (1, 2) or times.shape[0] < 2:
        raise OplearnError(
            f"sde: times must have shape (steps + 1,) or (steps + 1, batch) with steps >= 1, got {tuple(times.shape)}"
        )
    if times.ndim == 2 and times.shape[1] != batch:
        raise OplearnError(f"sde: per-sample times have {times.shape[1]} columns for a batch of {batch}")
    if not bool(torch.all(times[1:] > times[:-1])):
        raise OplearnError("sde: times must be strictly increasing")


def solve(
    sde: SDE | UnderdampedSDE,
    state: torch.Tensor | State,
    times: torch.Tensor,
    solver: Solver | None = None,
    *,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    keep_path: bool = True,
    keep_noise: bool = False,
) -> Path:
    """Integrate ``sde`` from ``state`` at ``times[0]`` along ``times``.

    Parameters
    ----------
    state:
        ``x0 (batch, d)`` for a first-order SDE, ``(x0, p0)`` for an underdamped one.
    times:
        ``(steps + 1,)`` shared or ``(steps + 1, batch)`` per-sample grid, increasing
        (:mod:`oplearn.sde.times`).
    solver:
        Default :class:`EulerMaruyama`.
    generator:
        Seeds the normals (e.g. :func:`oplearn.seeding.generator`); ignored when ``noise`` is given.
    noise:
        The normals to use, ``(steps, *solver.noise_shape(...))`` (common random numbers,
        exact-moment computations).
    keep_path, keep_noise:
        Store every state (else only the end point) and the normals.
    """
    solver, state, times, t_all, noise = _prepare(solver, sde, state, times, generator, noise)
    steps = times.shape[0] - 1
    solver_state = solver.init(sde, t_all[0], state)
    kept, records = [state], []
    for k in range(steps):
        state, solver_state, record = solver.step(sde, t_all[k], t_all[k + 1] - t_all[k], state, solver_state, noise[k])
        if keep_path:
            kept.append(state)
            if record is not None:
                records.append(record)
    return _kept_path(times, kept if keep_path else [state], records, noise if keep_noise else None)


def _prepare(
    solver: Solver | None,
    sde: SDE | UnderdampedSDE,
    state: torch.Tensor | State,
    times: torch.Tensor,
    generator: torch.Generator | None,
    noise: torch.Tensor | None,
) -> tuple[Solver, State, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked ``(solver, state tuple, times, per-sample times, normals)`` for a run along ``times``."""
    solver = solver or EulerMaruyama()
    state = (state,) if isinstance(state, torch.Tensor) else tuple(state)
    x0 = state[0]
    if x0.ndim != 2:
        raise OplearnError(f"sde: the state must have shape (batch, dim), got {tuple(x0.shape)}")
    batch = x0.shape[0]
    _check_times(times, batch)
    times = times.to(dtype=x0.dtype, device=x0.device)
    steps = times.shape[0] - 1
    shape = solver.noise_shape(sde, state)
    if noise is None:
        noise = torch.randn((steps, *shape), generator=generator, dtype=x0.dtype, device=x0.device)
    elif tuple(noise.shape) != (steps, *shape):
        raise OplearnError(f"sde: noise must have shape {(steps, *shape)}, got {tuple(noise.shape)}")
    t_all = times[:, None].expand(steps + 1, batch) if times.ndim == 1 else times
    return solver, state, times, t_all, noise


def solve_backward(
    sde: SDE | UnderdampedSDE,
    state: torch.Tensor | State,
    times: torch.Tensor,
    solver: Solver | None = None,
    *,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
) -> Path:
    """Run the backward process of ``solver`` with the backward-pointing ``sde`` from ``state`` at
    ``times[-1]`` down to ``times[0]`` (:meth:`Solver.step_back`); the returned path is ordered
    forwards in time (its last state is ``state``), so that :mod:`path likelihoods
    <oplearn.sde.likelihood>` apply to it unchanged. Arguments as for :func:`solve`."""
    solver, state, times, t_all, noise = _prepare(solver, sde, state, times, generator, noise)
    kept, records = [state], []
    for k in reversed(range(times.shape[0] - 1)):
        state, record = solver.step_back(sde, t_all[k], t_all[k + 1] - t_all[k], state, noise[k])
        kept.append(state)
        if record is not None:
            records.append(record)
    return _kept_path(times, kept[::-1], records[::-1], None)
