r"""Kolmogorov flow: two-dimensional Navier-Stokes driven by a steady shear force, on the periodic box :math:`[0, 2\pi)^2`.

.. math::

    w_t + \mathbf u \cdot \nabla w = \frac{1}{Re} \Delta w - n \cos(n y), \qquad
    \mathbf u = (\psi_y, -\psi_x), \quad -\Delta \psi = w,

the vorticity form of :math:`\mathbf u_t + \mathbf u \cdot \nabla \mathbf u = -\nabla p +
Re^{-1} \Delta \mathbf u + (\sin n y, 0)`. Above a modest Reynolds number the laminar
shear flow is unstable and the flow becomes turbulent and chaotic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from oplearn.fields import GaussianRandomField
from oplearn.grids import Grid
from oplearn.pdes.evolution import PeriodicEvolution, Terms, ZeroMean, check_positive
from oplearn.pdes.navier_stokes import advection, velocity
from oplearn.solvers.spectral import Fourier
from oplearn.solvers.stepping import CrankNicolsonHeun


def smagorinsky(fourier: Fourier, coefficient: float) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""The Smagorinsky eddy-viscosity term :math:`\nabla \cdot (\nu_t \nabla w)` in Fourier space.

    .. math::

        \nu_t = (C_s \Delta)^2 |S|, \qquad |S| = \sqrt{2 S_{ij} S_{ij}}, \quad
        S_{ij} = \tfrac12 (\partial_i u_j + \partial_j u_i),

    with :math:`C_s` = ``coefficient`` and the filter width :math:`\Delta` the grid spacing:
    the classical closure of a large-eddy simulation on a coarse grid, written for the
    vorticity equation. Products are dealiased by the 2/3 rule.

    Shapes: ``(..., *spectral_shape) -> (..., *spectral_shape)``.
    """
    width = max(fourier.grid.spacing)
    ik_x, ik_y = fourier.ik

    def term(w_hat: torch.Tensor) -> torch.Tensor:
        w_hat = fourier.dealias(w_hat)
        u_hat, v_hat = velocity(w_hat, fourier)
        u_x, u_y, v_x = (fourier.inverse(s) for s in (ik_x * u_hat, ik_y * u_hat, ik_x * v_hat))
        strain = torch.sqrt(2 * (2 * u_x**2 + 0.5 * (u_y + v_x) ** 2))  # S_11 = u_x = -S_22
        nu_t = (coefficient * width) ** 2 * strain
        flux_x, flux_y = (fourier.inverse(ik * w_hat) * nu_t for ik in (ik_x, ik_y))
        return fourier.dealias(ik_x * fourier.forward(flux_x) + ik_y * fourier.forward(flux_y))

    return term


class KolmogorovFlow(PeriodicEvolution):
    r"""Kolmogorov flow :math:`w_t + \mathbf u \cdot \nabla w = Re^{-1} \Delta w - n \cos(n y)` on :math:`[0, 2\pi)^2`, long trajectories.

    The PINO setting: forcing wavenumber :math:`n = 4`, initial vorticity the periodic
    Gaussian random field with :math:`\alpha = 2.5, \tau = 7` (FNO's law, see
    :class:`~oplearn.fields.GaussianRandomField`; its mean, non-zero only by aliasing on
    coarse grids, removed) evolved for ``burn_in`` time units before
    the first (input) frame; frames ``t_final / n_times`` apart (PINO: burn-in 100, 64
    frames per time unit, Reynolds numbers 40 to 500). The solver is the 2D
    Navier-Stokes one of :mod:`oplearn.pdes.navier_stokes` (pseudo-spectral, 2/3
    dealiasing, :class:`~oplearn.solvers.stepping.CrankNicolsonHeun` steps of at most
    ``dt``); the mean vorticity stays zero.

    ``smagorinsky = C_s > 0`` adds the Smagorinsky eddy viscosity (:func:`smagorinsky`): the
    large-eddy-simulation closure baseline on a coarse grid. Coarse-solver data
    (multi-fidelity): ``refine=1`` at the stored resolution solves the same equation on the
    coarse grid; ``refine > 1`` solves finer and subsamples.

    Parameters
    ----------
    re : float
        Reynolds number; the viscosity is ``1 / re``.
    wavenumber : int
        Forcing wavenumber :math:`n`.
    t_final : float
        Time of the last stored frame after the burn-in.
    n_times : int
        Number of stored frames.
    dt : float
        Largest solver time step (the advection is explicit: a CFL condition applies).
    burn_in : float
        Time the random initial vorticity is evolved before the input frame.
    smagorinsky : float
        Smagorinsky constant :math:`C_s` of the eddy viscosity; 0 (default) for none.
    refine : int
        :meth:`generate` solves on a ``refine``-times finer grid and subsamples.

    Shapes
    ------
    inputs ``(batch, 1, n, n)`` (``w0``, after the burn-in), outputs ``(batch, n_times, 1, n, n)``.

    References
    ----------
    Z. Li et al., Physics-informed neural operator for learning partial differential
    equations, ACM/JMS J. Data Sci. (2024); its data generator ``solver/kolmogorov_flow.py``
    in ``neuraloperator/physics_informed``.
    """

    name = "kolmogorov_flow"
    input_names = ("w0",)
    output_names = ("w",)
    ndim = 2
    stepper = CrankNicolsonHeun

    def __init__(
        self,
        re: float = 100.0,
        wavenumber: int = 4,
        t_final: float = 20.0,
        n_times: int = 40,
        dt: float = 5e-3,
        burn_in: float = 50.0,
        smagorinsky: float = 0.0,
        refine: int = 1,
    ) -> None:
        self.re = check_positive("re", re)
        if int(wavenumber) != wavenumber or wavenumber < 1:
            raise ValueError(f"wavenumber must be a positive integer, got {wavenumber}")
        self.wavenumber = int(wavenumber)
        self._set_schedule(t_final, n_times, include_initial=False, dt=dt, refine=refine, burn_in=burn_in)
        smagorinsky = float(smagorinsky)
        if not (smagorinsky >= 0 and math.isfinite(smagorinsky)):
            raise ValueError(f"smagorinsky must be >= 0 and finite, got {smagorinsky}")
        self.smagorinsky = smagorinsky
        self.initial = ZeroMean(
            GaussianRandomField(2.5, 7.0, sigma=math.sqrt(2) * 7.0**1.5, boundary="periodic", modes=32)
        )

    def grid(self, resolution: int) -> Grid:
        """The periodic ``resolution x resolution`` grid on :math:`[0, 2\\pi)^2`."""
        return Grid((resolution, resolution), domain=((0.0, 2 * math.pi),) * 2, periodic=True)

    def terms(self, fourier: Fourier) -> Terms:
        nonlinear = advection(fourier)
        if self.smagorinsky > 0:
            closure = smagorinsky(fourier, self.smagorinsky)
            transport = nonlinear

            def nonlinear(w_hat: torch.Tensor) -> torch.Tensor:
                return transport(w_hat) + closure(w_hat)

        _, y = fourier.grid.coordinates(torch.float64, fourier.k2.device)
        forcing = -self.wavenumber * torch.cos(self.wavenumber * y)
        return Terms(linear=-fourier.k2 / self.re, nonlinear=nonlinear, forcing=forcing)

    def body_force(self, grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
        """The velocity forcing :math:`(\\sin n y, 0)` on ``grid``: two ``(*grid.shape)`` tensors, float64."""
        _, y = grid.coordinates(torch.float64)
        return torch.sin(self.wavenumber * y), torch.zeros_like(y)

    def params(self) -> dict[str, Any]:
        return {
            "re": self.re,
            "wavenumber": self.wavenumber,
            "t_final": self.t_final,
            "n_times": self.n_times,
            "dt": self.dt,
            "burn_in": self.burn_in,
            "smagorinsky": self.smagorinsky,
            "initial": {"alpha": 2.5, "tau": 7.0, "sigma": math.sqrt(2) * 7.0**1.5, "modes": 32},
            "refine": self.refine,
            "solver": "Fourier pseudo-spectral vorticity-stream function, 2/3 dealiasing, Crank-Nicolson diffusion, "
            "Heun advection and forcing" + (", Smagorinsky eddy viscosity" if self.smagorinsky else ""),
        }
