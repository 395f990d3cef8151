r"""Incompressible Navier-Stokes in two dimensions, vorticity form, on the periodic unit square.

.. math::

    w_t + \mathbf u \cdot \nabla w = \nu \Delta w + f, \qquad
    \mathbf u = (\psi_y, -\psi_x), \quad -\Delta \psi = w, \qquad w(\cdot, 0) = w_0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from oplearn.fields import GaussianRandomField
from oplearn.pdes.evolution import PeriodicEvolution, Terms, check_positive
from oplearn.solvers.spectral import Fourier
from oplearn.solvers.stepping import CrankNicolsonHeun

#: Final times of the FNO datasets, by viscosity.
FNO_FINAL_TIMES = {1e-3: 50.0, 1e-4: 30.0, 1e-5: 20.0}


def velocity(w_hat: torch.Tensor, fourier: Fourier) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The velocity :math:`(\psi_y, -\psi_x)` of the vorticity :math:`w`, with :math:`-\Delta \psi = w`, in Fourier space.

    The mean of :math:`w` does not contribute (the stream function has zero mean).

    Shapes: ``(..., *spectral_shape) -> 2 x (..., *spectral_shape)``.
    """
    psi_hat = -fourier.inverse_laplacian(w_hat)
    ik_x, ik_y = fourier.ik
    return ik_y * psi_hat, -ik_x * psi_hat


def advection(fourier: Fourier) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""The alias-free advection term :math:`w \mapsto -\mathbf u \cdot \nabla w` in Fourier space.

    :math:`\mathbf u \cdot \nabla w` is computed from the 2/3-truncated vorticity and
    truncated again (``fourier.dealias``).

    Shapes: ``(..., *spectral_shape) -> (..., *spectral_shape)``.
    """
    # The symbols of w -> u, v, w_x, w_y as full arrays (velocity is linear, so its
    # symbols are its image of ones); four separate inverse FFTs are faster than one
    # stacked transform on the CPU.
    ones = torch.ones(fourier.spectral_shape, dtype=torch.complex128, device=fourier.k2.device)
    symbols = (*velocity(ones, fourier), *(ik * ones for ik in fourier.ik))

    def nonlinear(w_hat: torch.Tensor) -> torch.Tensor:
        w_hat = fourier.dealias(w_hat)
        u, v, w_x, w_y = (fourier.inverse(symbol * w_hat) for symbol in symbols)
        return -fourier.dealias(fourier.forward(u * w_x + v * w_y))

    return nonlinear


class NavierStokes(PeriodicEvolution):
    r"""2D Navier-Stokes in vorticity form on the periodic unit square, FNO recipe.

    :math:`w_t + \mathbf u \cdot \nabla w = \nu \Delta w + f` with the velocity
    :math:`\mathbf u = (\psi_y, -\psi_x)`, :math:`-\Delta \psi = w`, and the forcing
    :math:`f = a (\sin 2\pi(x + y) + \cos 2\pi(x + y))`, :math:`a` = ``forcing_amplitude``
    (0.1 in FNO). The initial vorticity is the periodic Gaussian random field of
    :class:`~oplearn.fields.GaussianRandomField` with :math:`\alpha = 2.5`, :math:`\tau = 7`
    and :math:`\sigma = \sqrt 2\, \tau^{(2\alpha - 2)/2}` (FNO's law, see that class).

    Solver: Fourier pseudo-spectral; the advection term :math:`\mathbf u \cdot \nabla w` is
    computed from the 2/3-truncated vorticity and truncated again (alias-free); diffusion by
    Crank-Nicolson, advection and forcing by Heun's method
    (:class:`~oplearn.solvers.stepping.CrankNicolsonHeun`, second order), steps of at most
    ``dt`` = 1e-4. The mean vorticity is conserved exactly. FNO solved at :math:`256^2`
    and stored :math:`64^2`: the default ``refine=4`` does this when generating at
    resolution 64 (it solves at ``4 * resolution`` in general). Frames are stored at
    ``t_final * (1..n_times) / n_times``, one per time unit by default; FNO's final times
    are 50, 30 and 20 for :math:`\nu = 10^{-3}, 10^{-4}, 10^{-5}`, the default
    ``t_final`` for those viscosities.

    Parameters
    ----------
    nu : float
        Viscosity.
    t_final : float, optional
        Last stored time; required unless ``nu`` is one of FNO's three.
    n_times : int, optional
        Number of stored frames; defaults to one per time unit (``round(t_final)``, at
        least 1).
    dt : float
        Largest time step.
    forcing_amplitude : float
        :math:`a` in the forcing; 0 for unforced (decaying) flow.
    alpha, tau : float
        Smoothness and inverse length scale of the initial vorticity field.
    sigma : float, optional
        Its amplitude; defaults to FNO's :math:`\sqrt 2\, \tau^{\alpha - 1}`.
    modes : int
        Fourier modes per dimension of the initial field, independent of the resolution.
    refine : int
        :meth:`generate` solves on a ``refine``-times finer grid and subsamples.

    Shapes
    ------
    inputs ``(batch, 1, n, n)`` (``w0``), outputs ``(batch, n_times, 1, n, n)`` (``w``).

    References
    ----------
    Z. Li et al., Fourier neural operator for parametric partial differential equations,
    ICLR 2021, section 5.3.
    """

    name = "navier_stokes"
    input_names = ("w0",)
    output_names = ("w",)
    ndim = 2
    stepper = CrankNicolsonHeun

    def __init__(
        self,
        nu: float = 1e-3,
        t_final: float | None = None,
        n_times: int | None = None,
        dt: float = 1e-4,
        forcing_amplitude: float = 0.1,
        alpha: float = 2.5,
        tau: float = 7.0,
        sigma: float | None = None,
        modes: int = 64,
        refine: int = 4,
    ) -> None:
        self.nu = nu = check_positive("nu", nu)
        if t_final is None:
            t_final = next((t for v, t in FNO_FINAL_TIMES.items() if math.isclose(v, nu)), None)
            if t_final is None:
                raise ValueError(
                    f"give t_final for nu={nu} (defaults exist only for FNO's nu in {sorted(FNO_FINAL_TIMES)})"
                )
        if n_times is None:
            n_times = max(1, round(check_positive("t_final", t_final)))
        self._set_schedule(t_final, n_times, include_initial=False, dt=dt, refine=refine)
        self.forcing_amplitude = float(forcing_amplitude)
        if not math.isfinite(self.forcing_amplitude):
            raise ValueError(f"forcing_amplitude must be finite, got {forcing_amplitude}")
        sigma = math.sqrt(2) * tau ** (alpha - 1) if sigma is None else sigma
        self.initial = GaussianRandomField(alpha, tau, sigma=sigma, boundary="periodic", modes=modes)
        self.alpha, self.tau, self.sigma, self.modes = float(alpha), float(tau), float(sigma), int(modes)

    def terms(self, fourier: Fourier) -> Terms:
        x, y = fourier.grid.coordinates(torch.float64, fourier.k2.device)
        phase = 2 * math.pi * (x + y)
        forcing = self.forcing_amplitude * (torch.sin(phase) + torch.cos(phase)) if self.forcing_amplitude else None
        return Terms(linear=-self.nu * fourier.k2, nonlinear=advection(fourier), forcing=forcing)

    def params(self) -> dict[str, Any]:
        return {
            "nu": self.nu,
            "t_final": self.t_final,
            "n_times": self.n_times,
            "dt": self.dt,
            "forcing_amplitude": self.forcing_amplitude,
            "alpha": self.alpha,
            "tau": self.tau,
            "sigma": self.sigma,
            "modes": self.modes,
            "refine": self.refine,
            "solver": "Fourier pseudo-spectral vorticity-stream function, 2/3 dealiasing, Crank-Nicolson diffusion, Heun advection and forcing",
        }
