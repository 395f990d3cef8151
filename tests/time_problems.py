"""Time-dependent problems with exact solutions, shared by the tests of steppers and PDEs
and by ``benchmarks/navier_stokes_speed.py`` (its convergence table).

Closed forms are differentiated with autograd, as in :mod:`problems`, so the manufactured
forcings need no hand-derived formula. Each ``*_errors`` function runs one convergence
study and returns ``(steps or spacings, errors)`` for :func:`problems.observed_order`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from oplearn.grids import Grid
from oplearn.pdes import Burgers, NavierStokes
from oplearn.solvers.stepping import ETDRK4, CrankNicolsonHeun, ExponentialEuler, Stepper, integrate

STEPPERS: list[type[Stepper]] = [ExponentialEuler, CrankNicolsonHeun, ETDRK4]


# --- semilinear ODEs u' = L u + N(u, t) -------------------------------------------------


@dataclass(frozen=True)
class SemilinearODE:
    """``u' = linear * u + nonlinear(u, t)``, ``u(0) = u0``, with the exact ``solution(t)``."""

    name: str
    linear: torch.Tensor
    nonlinear: Callable[[torch.Tensor, float], torch.Tensor]
    u0: torch.Tensor
    solution: Callable[[float], torch.Tensor]
    t_final: float


_OSCILLATOR = torch.tensor([2j, -1 + 3j, -20.0 + 0j], dtype=torch.complex128)
_OSCILLATOR_U0 = torch.tensor([1.0, 0.5, -0.3], dtype=torch.complex128)

SEMILINEAR_ODES = [
    # u' = -u + u^2, u(0) = 1/2: u = 1 / (1 + e^t)
    SemilinearODE(
        "logistic",
        torch.tensor([-1.0], dtype=torch.float64),
        lambda u, t: u * u,
        torch.tensor([0.5], dtype=torch.float64),
        lambda t: torch.tensor([1 / (1 + math.exp(t))], dtype=torch.float64),
        1.0,
    ),
    # u' = L (u - sin t) + cos t: u = sin t + u0 e^{L t} (oscillating, damped and stiff entries)
    SemilinearODE(
        "forced-oscillator",
        _OSCILLATOR,
        lambda u, t: -_OSCILLATOR * math.sin(t) + math.cos(t),
        _OSCILLATOR_U0,
        lambda t: math.sin(t) + _OSCILLATOR_U0 * torch.exp(_OSCILLATOR * t),
        2.0,
    ),
]


def ode_errors(stepper: type[Stepper], ode: SemilinearODE, steps=(16, 32, 64, 128)) -> tuple[list[float], list[float]]:
    """Max-norm error at ``t_final`` for each number of steps; returns ``(step sizes, errors)``."""
    errors = []
    for n in steps:
        u = integrate(stepper(ode.linear, ode.nonlinear), ode.u0[None], [ode.t_final], ode.t_final / n)
        errors.append((u[0, -1] - ode.solution(ode.t_final)).abs().max().item())
    return [ode.t_final / n for n in steps], errors


# --- Burgers: the Cole-Hopf solution ----------------------------------------------------


def cole_hopf(grid: Grid, t: float, nu: float) -> torch.Tensor:
    r"""Exact periodic Burgers solution :math:`u = -2 \nu (\log \varphi)_x` on ``grid``, ``(*grid.shape)``.

    :math:`\varphi = 2 + e^{-4\pi^2\nu t}\cos 2\pi x + \tfrac12 e^{-16\pi^2\nu t}\sin(4\pi x + 1)`
    solves the heat equation :math:`\varphi_t = \nu \varphi_{xx}` and stays positive.
    """
    (x,) = grid.coordinates(torch.float64).requires_grad_(True)
    phi = 2 + math.exp(-4 * math.pi**2 * nu * t) * torch.cos(2 * math.pi * x)
    phi = phi + 0.5 * math.exp(-16 * math.pi**2 * nu * t) * torch.sin(4 * math.pi * x + 1)
    (dlogphi,) = torch.autograd.grad(torch.log(phi).sum(), x)
    return -2 * nu * dlogphi


def burgers_time_errors(
    steps=(16, 32, 64, 128), n: int = 64, nu: float = 0.1, t_final: float = 0.5
) -> tuple[list[float], list[float]]:
    """ETDRK4 on Cole-Hopf at fixed resolution: ``(step sizes, max errors)``."""
    errors = []
    for m in steps:
        pde = Burgers(nu=nu, t_final=t_final, dt=t_final / m)
        grid = pde.grid(n)
        u = pde.solve(cole_hopf(grid, 0.0, nu)[None, None], grid)
        errors.append((u[0, -1, 0] - cole_hopf(grid, t_final, nu)).abs().max().item())
    return [t_final / m for m in steps], errors


def burgers_space_errors(
    sizes=(8, 16, 32, 64), nu: float = 0.1, t_final: float = 0.25, dt: float = 1 / 2048
) -> tuple[list[float], list[float]]:
    """Cole-Hopf at several resolutions with a time error below 1e-13: ``(spacings, max errors)``."""
    errors = []
    for n in sizes:
        pde = Burgers(nu=nu, t_final=t_final, dt=dt)
        grid = pde.grid(n)
        u = pde.solve(cole_hopf(grid, 0.0, nu)[None, None], grid)
        errors.append((u[0, -1, 0] - cole_hopf(grid, t_final, nu)).abs().max().item())
    return [1 / n for n in sizes], errors


# --- Navier-Stokes: manufactured vorticity fields --------------------------------------


@dataclass(frozen=True)
class VorticityProblem:
    r"""A stream function :math:`\psi(x, y, t)` on the unit torus and the forcing that makes
    :math:`w = -\Delta \psi` solve :math:`w_t + \mathbf u \cdot \nabla w = \nu \Delta w + f`."""

    name: str
    stream: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    nu: float

    def fields(self, grid: Grid, t: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(w, f)`` at the nodes of ``grid`` at time ``t``, each ``(*grid.shape)``, float64."""
        xy = grid.coordinates(torch.float64).requires_grad_(True)
        time = torch.full(grid.shape, float(t), dtype=torch.float64, requires_grad=True)  # pointwise w_t
        psi = self.stream(xy[0], xy[1], time)

        def grad(field):
            return torch.autograd.grad(field.sum(), (xy, time), create_graph=True, allow_unused=True)

        (dpsi, _) = grad(psi)
        velocity = (dpsi[1], -dpsi[0])
        w = -sum(grad(dpsi[d])[0][d] for d in range(2))
        dw, w_t = grad(w)
        laplacian_w = sum(grad(dw[d])[0][d] for d in range(2))
        w_t = torch.zeros_like(w) if w_t is None else w_t
        f = w_t + velocity[0] * dw[0] + velocity[1] * dw[1] - self.nu * laplacian_w
        return w.detach(), f.detach()


TWO_PI = 2 * math.pi

#: Band-limited (modes |j| <= 2) with a non-vanishing nonlinear term: only the time error remains.
FORCED_VORTICITY = VorticityProblem(
    "forced-band-limited",
    lambda x, y, t: (
        (
            torch.cos(t) * torch.sin(TWO_PI * x) * torch.sin(TWO_PI * y)
            + (0.5 + 0.5 * torch.sin(2 * t)) * torch.cos(2 * TWO_PI * x + TWO_PI * y)
        )
        / (4 * math.pi**2)
    ),
    nu=0.01,
)

#: Steady and analytic but not band-limited: the stepper keeps a discrete steady state, so
#: only the spatial error remains.
STEADY_VORTICITY = VorticityProblem(
    "steady-analytic",
    lambda x, y, t: torch.exp(0.5 * torch.sin(TWO_PI * x) + 0.4 * torch.cos(TWO_PI * y)) / (4 * math.pi**2),
    nu=0.02,
)


def vorticity_errors(problem: VorticityProblem, n: int, t_final: float, dt: float) -> float:
    """Max error at ``t_final`` of :class:`NavierStokes` started from the exact vorticity."""
    pde = NavierStokes(nu=problem.nu, t_final=t_final, n_times=1, dt=dt, refine=1)
    grid = pde.grid(n)
    w0, _ = problem.fields(grid, 0.0)
    w = pde.solve(w0[None, None], grid, forcing=lambda t: problem.fields(grid, t)[1])
    return (w[0, -1, 0] - problem.fields(grid, t_final)[0]).abs().max().item()


def navier_stokes_time_errors(
    steps=(5, 10, 20, 40), n: int = 16, t_final: float = 0.5
) -> tuple[list[float], list[float]]:
    """Crank-Nicolson/Heun on :data:`FORCED_VORTICITY`: ``(step sizes, max errors)``."""
    errors = [vorticity_errors(FORCED_VORTICITY, n, t_final, t_final / m) for m in steps]
    return [t_final / m for m in steps], errors


def navier_stokes_space_errors(
    sizes=(8, 16, 32), t_final: float = 0.1, dt: float = 0.05
) -> tuple[list[float], list[float]]:
    """:data:`STEADY_VORTICITY` at several resolutions: ``(spacings, max errors)``."""
    errors = []
    for n in sizes:
        pde = NavierStokes(nu=STEADY_VORTICITY.nu, t_final=t_final, n_times=1, dt=dt, refine=1)
        grid = pde.grid(n)
        w, f = STEADY_VORTICITY.fields(grid, 0.0)
        errors.append((pde.solve(w[None, None], grid, forcing=f)[0, -1, 0] - w).abs().max().item())
    return [1 / n for n in sizes], errors


@pytest.fixture(scope="module")
def one_thread():
    """Run a module single-threaded: its many small FFTs pay more for thread start-up than
    they gain (on a busy two-core machine a batched FFT took ~10 ms with two threads and
    0.01-0.1 ms with one). Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
