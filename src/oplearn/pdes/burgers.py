r"""Viscous Burgers equation on a periodic interval.

.. math::

    u_t + \left(\tfrac12 u^2\right)_x = \nu u_{xx} \ \text{on } [0, 1) \text{ periodic}, \qquad u(\cdot, 0) = u_0.

Two standard datasets: :class:`Burgers` (FNO: Gaussian random field initial conditions,
:math:`u_0 \mapsto u(\cdot, 1)`) and :class:`BurgersPDEBench` (PDEBench: random sine waves,
201 frames on :math:`[0, 2]`, viscosity written :math:`\nu / \pi`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from oplearn.fields import GaussianRandomField
from oplearn.pdes.evolution import PeriodicEvolution, Terms, check_positive
from oplearn.pdes.random_sines import RandomSines
from oplearn.solvers.spectral import Fourier
from oplearn.solvers.stepping import ETDRK4

SOLVER = "Fourier pseudo-spectral, 2/3 dealiasing, ETDRK4 (Cox-Matthews, contour-integral coefficients)"


class ViscousBurgers(PeriodicEvolution):
    r"""Burgers' equation :math:`u_t = \nu u_{xx} - \tfrac12 (u^2)_x`, the terms shared by both datasets.

    The solver is Fourier pseudo-spectral: :math:`-\tfrac12 (u^2)_x` is computed from the
    2/3-truncated :math:`u` and truncated again (alias-free), the diffusion
    :math:`-\nu k^2` is integrated exactly by :class:`~oplearn.solvers.stepping.ETDRK4`
    with steps of at most ``dt``. The mean of :math:`u` is conserved exactly.
    Subclasses set :attr:`viscosity` and the input distribution.
    """

    input_names = ("u0",)
    output_names = ("u",)
    ndim = 1
    stepper = ETDRK4
    viscosity: float

    def terms(self, fourier: Fourier) -> Terms:
        (ik,) = fourier.ik

        def nonlinear(u_hat: torch.Tensor) -> torch.Tensor:
            u = fourier.inverse(fourier.dealias(u_hat))
            return -0.5 * ik * fourier.dealias(fourier.forward(u * u))

        return Terms(linear=-self.viscosity * fourier.k2, nonlinear=nonlinear)


class Burgers(ViscousBurgers):
    r"""Viscous Burgers :math:`u_t + (u^2/2)_x = \nu u_{xx}` on the periodic unit interval, FNO recipe.

    The initial condition is the periodic Gaussian random field
    :math:`u_0 \sim N(0, \sigma^2 (-\Delta + \tau^2 I)^{-\alpha})` of
    :class:`~oplearn.fields.GaussianRandomField` (``boundary="periodic"``: coefficients
    :math:`\sigma (4\pi^2 k^2 + \tau^2)^{-\alpha/2}`, zero mean mode); the defaults
    :math:`\sigma = 25, \tau = 5, \alpha = 2` give the FNO paper's
    :math:`N(0, 625 (-\Delta + 25 I)^{-2})`. The FNO task maps :math:`u_0` to
    :math:`u(\cdot, 1)` with :math:`\nu = 0.1`, solved at 8192 points (``refine=8`` for
    1024 stored points). ``n_times > 1`` stores a trajectory at
    ``t_final * (1..n_times) / n_times``.

    Parameters
    ----------
    nu : float
        Viscosity.
    t_final : float
        Last stored time.
    n_times : int
        Number of stored frames, evenly spaced up to ``t_final`` (``t = 0`` is the input).
    dt : float
        Largest time step; each interval between frames takes ``ceil(interval / dt)``
        equal steps. The default gives a relative time error near :math:`10^{-8}` for the
        default field and ``nu`` (ETDRK4 is fourth order); smaller ``nu`` may need a
        smaller step for stability (the advection term is explicit).
    alpha, tau, sigma : float
        Smoothness, inverse length scale and amplitude of the initial random field.
    modes : int
        Fourier modes of the initial field, independent of the resolution.
    refine : int
        :meth:`generate` solves on a ``refine``-times finer grid and subsamples.

    Shapes
    ------
    inputs ``(batch, 1, n)`` (``u0``), outputs ``(batch, n_times, 1, n)`` (``u``).

    References
    ----------
    Z. Li et al., Fourier neural operator for parametric partial differential equations,
    ICLR 2021, section 5.1.
    """

    name = "burgers"

    def __init__(
        self,
        nu: float = 0.1,
        t_final: float = 1.0,
        n_times: int = 1,
        dt: float = 2e-3,
        alpha: float = 2.0,
        tau: float = 5.0,
        sigma: float = 25.0,
        modes: int = 128,
        refine: int = 1,
    ) -> None:
        self.viscosity = self.nu = check_positive("nu", nu)
        self._set_schedule(t_final, n_times, include_initial=False, dt=dt, refine=refine)
        self.initial = GaussianRandomField(alpha, tau, sigma=sigma, boundary="periodic", modes=modes)
        self.alpha, self.tau, self.sigma, self.modes = float(alpha), float(tau), float(sigma), int(modes)

    def params(self) -> dict[str, Any]:
        return {
            "nu": self.nu,
            "t_final": self.t_final,
            "n_times": self.n_times,
            "dt": self.dt,
            "alpha": self.alpha,
            "tau": self.tau,
            "sigma": self.sigma,
            "modes": self.modes,
            "refine": self.refine,
            "solver": SOLVER,
        }


class BurgersPDEBench(ViscousBurgers):
    r"""Viscous Burgers :math:`u_t + (u^2/2)_x = (\nu / \pi) u_{xx}` on the periodic unit interval, PDEBench recipe.

    PDEBench writes the viscosity as :math:`\nu / \pi` and names its files by :math:`\nu`
    (``1D_Burgers_Sols_Nu0.01``: :math:`\nu = 0.01`, diffusion coefficient
    :math:`0.01 / \pi`); ``nu`` here is that :math:`\nu`. Initial conditions are the
    random sine waves of :class:`~oplearn.pdes.random_sines.RandomSines`; 201 frames at
    :math:`t = 0, 0.01, \dots, 2` (the first is the initial condition), 1024 points.
    PDEBench solved with a second-order finite-volume scheme on the 1024 cells; this
    solver is spectral and resolves the viscous shocks (width about
    :math:`4 \nu / (\pi \Delta u)`) only on a fine enough grid: 1024 points suffice for
    the default :math:`\nu = 0.01` (the solution agrees with an 8192-point solve to a
    relative :math:`3 \times 10^{-7}`), while :math:`\nu = 0.001` needs about
    ``refine=16`` and a smaller ``dt``.

    Parameters
    ----------
    nu : float
        PDEBench's viscosity parameter; the diffusion coefficient is ``nu / pi``.
    t_final : float
        Last stored time.
    n_times : int
        Number of stored frames, evenly spaced over ``[0, t_final]``.
    dt : float
        Largest time step (see :class:`Burgers`). The default keeps the time error near
        :math:`10^{-8}` relative for the default ``nu``; the advection term is explicit, so a
        finer grid or a smaller ``nu`` may need a smaller one for stability.
    k_max : int
        Largest wavenumber index of the initial sine waves.
    refine : int
        :meth:`generate` solves on a ``refine``-times finer grid and subsamples.

    Shapes
    ------
    inputs ``(batch, 1, n)`` (``u0``), outputs ``(batch, n_times, 1, n)`` (``u``).

    References
    ----------
    M. Takamoto et al., PDEBench: an extensive benchmark for scientific machine learning,
    NeurIPS 2022 Datasets and Benchmarks.
    """

    name = "burgers_pdebench"

    def __init__(
        self,
        nu: float = 0.01,
        t_final: float = 2.0,
        n_times: int = 201,
        dt: float = 2.5e-4,
        k_max: int = 4,
        refine: int = 1,
    ) -> None:
        self.nu = check_positive("nu", nu)
        self.viscosity = self.nu / math.pi
        self._set_schedule(t_final, n_times, include_initial=True, dt=dt, refine=refine)
        self.initial = RandomSines(k_max=k_max)

    def params(self) -> dict[str, Any]:
        return {
            "nu": self.nu,
            "t_final": self.t_final,
            "n_times": self.n_times,
            "dt": self.dt,
            "k_max": self.initial.k_max,
            "initial": self.initial.params(),
            "refine": self.refine,
            "solver": SOLVER,
        }
