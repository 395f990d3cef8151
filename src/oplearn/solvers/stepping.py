r"""Time steppers for semilinear evolution equations with a diagonal linear part.

.. math::

    \frac{du}{dt} = L u + N(u, t),

where :math:`L` is a diagonal operator given by its entries (a tensor broadcastable
against :math:`u`; a Fourier symbol for a pseudo-spectral discretisation) and :math:`N` an
explicit, typically nonlinear, term. A stepper is built from ``(linear, nonlinear)``;
:meth:`Stepper.step_function` fixes a step size and returns a pure function
``step(u, t) -> u`` advancing one step, and :func:`integrate` drives any stepper through a
list of output times. Each stepper states its ``order``, which the tests check against the
observed convergence rate.

Steppers
--------
:class:`ExponentialEuler` (order 1, exact when ``nonlinear`` is ``None``),
:class:`CrankNicolsonHeun` (order 2, implicit-explicit), :class:`ETDRK4` (order 4,
exponential time differencing).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from typing import ClassVar

import torch

from oplearn.progress import fraction_done

Nonlinear = Callable[[torch.Tensor, float], torch.Tensor]
Step = Callable[[torch.Tensor, float], torch.Tensor]


class Stepper(abc.ABC):
    """A one-step method for ``du/dt = linear * u + nonlinear(u, t)``.

    Parameters
    ----------
    linear : Tensor
        The diagonal of :math:`L`, broadcastable against the state.
    nonlinear : callable ``(u, t) -> Tensor`` or None
        The explicit term, same shape as ``u``; ``None`` for a purely linear equation.
    """

    #: The order of accuracy in time.
    order: ClassVar[int]

    def __init__(self, linear: torch.Tensor, nonlinear: Nonlinear | None) -> None:
        self.linear = linear
        self.nonlinear = nonlinear

    @abc.abstractmethod
    def step_function(self, h: float) -> Step:
        """The map ``(u, t) -> u(t + h)`` of one step of size ``h`` (coefficients precomputed)."""


class ExponentialEuler(Stepper):
    r"""Exponential Euler, :math:`u_{n+1} = e^{hL} u_n + h \varphi_1(hL) N(u_n, t_n)`.

    First order; exact in time for a linear equation (``nonlinear=None``), where it is
    the propagator :math:`e^{hL}`.
    """

    order = 1

    def step_function(self, h: float) -> Step:
        z = h * self.linear
        e = torch.exp(z)
        if self.nonlinear is None:
            return lambda u, t: e * u
        f1 = h * _phi(z)[0]
        nonlinear = self.nonlinear
        return lambda u, t: e * u + f1 * nonlinear(u, t)


class CrankNicolsonHeun(Stepper):
    r"""Crank-Nicolson for :math:`L`, Heun's method (explicit trapezoid) for :math:`N`.

    .. math::

        \tilde u = \frac{(1 + \tfrac h2 L) u_n + h N(u_n, t_n)}{1 - \tfrac h2 L}, \qquad
        u_{n+1} = \frac{(1 + \tfrac h2 L) u_n + \tfrac h2 \left(N(u_n, t_n) + N(\tilde u, t_{n+1})\right)}{1 - \tfrac h2 L}.

    Second order; two evaluations of :math:`N` per step. Unconditionally stable for the
    linear part when :math:`\mathrm{Re}\, L \le 0` (diffusion), explicit in :math:`N`
    (advection: a CFL condition applies).
    """

    order = 2

    def step_function(self, h: float) -> Step:
        explicit = 1 + 0.5 * h * self.linear
        implicit = 1 / (1 - 0.5 * h * self.linear)
        nonlinear = self.nonlinear
        if nonlinear is None:
            return lambda u, t: implicit * explicit * u

        def step(u: torch.Tensor, t: float) -> torch.Tensor:
            n0 = nonlinear(u, t)
            predictor = implicit * (explicit * u + h * n0)
            return implicit * (explicit * u + 0.5 * h * (n0 + nonlinear(predictor, t + h)))

        return step


class ETDRK4(Stepper):
    r"""Fourth-order exponential time differencing Runge-Kutta (Cox and Matthews 2002).

    With :math:`E = e^{hL}`, :math:`E_2 = e^{hL/2}`, :math:`N_u = N(u_n, t_n)`:

    .. math::

        a &= E_2 u_n + \tfrac h2 \varphi_1(\tfrac{hL}{2}) N_u, \qquad
        b = E_2 u_n + \tfrac h2 \varphi_1(\tfrac{hL}{2}) N(a, t_n + \tfrac h2), \\
        c &= E_2 a + \tfrac h2 \varphi_1(\tfrac{hL}{2}) \left(2 N(b, t_n + \tfrac h2) - N_u\right), \\
        u_{n+1} &= E u_n + h f_1 N_u + 2 h f_2 \left(N_a + N_b\right) + h f_3 N(c, t_n + h),

    with :math:`f_1 = \varphi_1 - 3\varphi_2 + 4\varphi_3`, :math:`f_2 = \varphi_2 - 2\varphi_3`,
    :math:`f_3 = 4\varphi_3 - \varphi_2` at :math:`hL`. The linear part is integrated
    exactly, so stiff diffusion costs nothing in stability; the :math:`\varphi` functions
    are evaluated by contour integrals (Kassam and Trefethen 2005), accurate for all
    :math:`hL` including :math:`hL \to 0`. Four evaluations of :math:`N` per step.

    References
    ----------
    S. M. Cox, P. C. Matthews, J. Comput. Phys. 176 (2002) 430-455.
    A.-K. Kassam, L. N. Trefethen, SIAM J. Sci. Comput. 26 (2005) 1214-1233.
    """

    order = 4

    def step_function(self, h: float) -> Step:
        z = h * self.linear
        e, e2 = torch.exp(z), torch.exp(z / 2)
        nonlinear = self.nonlinear
        if nonlinear is None:
            return lambda u, t: e * u
        q = 0.5 * h * _phi(z / 2)[0]
        phi1, phi2, phi3 = _phi(z)
        f1 = h * (phi1 - 3 * phi2 + 4 * phi3)
        f2 = h * (phi2 - 2 * phi3)
        f3 = h * (4 * phi3 - phi2)

        def step(u: torch.Tensor, t: float) -> torch.Tensor:
            n_u = nonlinear(u, t)
            a = e2 * u + q * n_u
            n_a = nonlinear(a, t + h / 2)
            b = e2 * u + q * n_a
            n_b = nonlinear(b, t + h / 2)
            c = e2 * a + q * (2 * n_b - n_u)
            return e * u + f1 * n_u + 2 * f2 * (n_a + n_b) + f3 * nonlinear(c, t + h)

        return step


def _phi(z: torch.Tensor, points: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r""":math:`\varphi_1, \varphi_2, \varphi_3` at ``z``, by the mean over a circle of radius 1.

    :math:`\varphi_1(z) = (e^z - 1)/z`, :math:`\varphi_2(z) = (e^z - 1 - z)/z^2`,
    :math:`\varphi_3(z) = (e^z - 1 - z - z^2/2)/z^3`. Each is analytic, so its value at
    ``z`` is its mean over the circle :math:`z + e^{i\theta}`, where the formulas above
    suffer no cancellation. Real ``z`` give real results.
    """
    z = torch.as_tensor(z)
    complex_dtype = torch.complex128 if z.dtype in (torch.float64, torch.complex128) else torch.complex64
    theta = 2 * math.pi * (torch.arange(points, dtype=torch.float64, device=z.device) + 0.5) / points
    r = torch.exp(1j * theta).to(complex_dtype)
    w = z.to(complex_dtype).unsqueeze(-1) + r  # (..., points)
    ew = torch.exp(w)
    phi1 = ((ew - 1) / w).mean(-1)
    phi2 = ((ew - 1 - w) / w**2).mean(-1)
    phi3 = ((ew - 1 - w - w**2 / 2) / w**3).mean(-1)
    if not z.is_complex():
        return phi1.real.to(z.dtype), phi2.real.to(z.dtype), phi3.real.to(z.dtype)
    return phi1, phi2, phi3


def integrate(
    stepper: Stepper,
    u0: torch.Tensor,
    times: Sequence[float] | torch.Tensor,
    dt: float | None,
    t0: float = 0.0,
    observe: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Advance ``u0`` from ``t0`` and return the states at ``times``, stacked on axis 1.

    Each interval between consecutive output times (the first starting at ``t0``) is
    split into ``ceil(interval / dt)`` equal steps, so no step exceeds ``dt`` and every
    output time is hit exactly; ``dt=None`` takes one step per interval (exact for a linear
    equation with :class:`ExponentialEuler`). An output time equal to the previous one
    repeats the state. ``observe`` maps each saved state to what is kept (for example the
    inverse FFT), so only the observed frames are held in memory.

    Shapes: ``u0 (batch, ...) -> (batch, len(times), ...)`` (``observe`` may change the
    trailing axes).
    """
    times = [float(t) for t in (times.tolist() if isinstance(times, torch.Tensor) else times)]
    if not times:
        raise ValueError("integrate needs at least one output time")
    if dt is not None and not (dt > 0 and math.isfinite(dt)):
        raise ValueError(f"time step must be positive and finite, got {dt}")
    if any(b < a for a, b in zip([t0, *times], times)):
        raise ValueError(f"output times must be non-decreasing from t0={t0}, got {times}")
    steps: dict[float, Step] = {}  # one step function per distinct step size
    counts = [
        0 if b <= a else 1 if dt is None else max(1, math.ceil((b - a) / dt - 1e-9))
        for a, b in zip([t0, *times], times)
    ]
    total, done = max(sum(counts), 1), 0
    u, t, frames = u0, float(t0), []
    for t_out, n in zip(times, counts):
        if n:
            h = (t_out - t) / n
            if h not in steps:
                steps[h] = stepper.step_function(h)
            step = steps[h]
            for i in range(n):
                u = step(u, t + i * h)
                done += 1
                fraction_done(done / total)
            t = t_out
        frames.append(u if observe is None else observe(u))
    return torch.stack(frames, dim=1)
