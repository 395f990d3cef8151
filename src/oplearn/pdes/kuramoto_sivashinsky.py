r"""Kuramoto-Sivashinsky equation on a periodic interval: a one-dimensional chaotic PDE.

.. math::

    u_t + u u_x + u_{xx} + u_{xxxx} = 0 \ \text{on } [0, L) \text{ periodic}, \qquad u(\cdot, 0) = u_0.

Modes with wavenumber :math:`|k| < 1` grow (:math:`u_{xx}` is anti-diffusive), higher ones
are damped by :math:`u_{xxxx}`, and the advection moves energy between them; for
:math:`L \gtrsim 20` the long-time dynamics is chaotic.
"""

from __future__ import annotations

from typing import Any

import torch

from oplearn.fields import GaussianRandomField
from oplearn.grids import Grid
from oplearn.pdes.evolution import PeriodicEvolution, Terms, check_positive
from oplearn.solvers.spectral import Fourier
from oplearn.solvers.stepping import ETDRK4


class KuramotoSivashinsky(PeriodicEvolution):
    r"""Kuramoto-Sivashinsky :math:`u_t = -u_{xx} - u_{xxxx} - \tfrac12 (u^2)_x` on :math:`[0, L)`, long trajectories.

    Solver: Fourier pseudo-spectral with 2/3 dealiasing of :math:`(u^2)_x`; the stiff
    linear symbol :math:`k^2 - k^4` is integrated exactly by
    :class:`~oplearn.solvers.stepping.ETDRK4` (Kassam-Trefethen contour-integral
    coefficients), steps of at most ``dt``. The mean of :math:`u` is conserved.

    The input is a periodic Gaussian random field (:class:`~oplearn.fields.GaussianRandomField`
    with covariance :math:`(-\partial_{xx} + 1)^{-2}`, up to ``modes`` periods over the box)
    evolved for ``burn_in`` time units on the solving grid, so it lies on the attractor (every
    mode is present, so no trajectory is trapped in the invariant subspace of functions of
    period :math:`L / m`, where KS may not be chaotic); the output is the trajectory of
    ``n_times`` frames at ``t_final * (1..n_times) / n_times`` after it. The defaults
    follow the PDE-Refiner setting: box :math:`L = 64` (``length``), so 256 nodes give
    :math:`\Delta x = 0.25`, and frames :math:`\Delta t = 0.8` apart (the PDE-Refiner
    data, as read by ``pdearena``, store :math:`\Delta t \approx 0.2` and step every fourth
    frame). ``length=128`` gives the longer, more chaotic domain. On :math:`L = 64` an
    occasional trajectory settles on a steady cellular state (energy constant in time):
    statistics that must be those of the chaotic attractor are safer on longer boxes.

    Coarse-solver data (multi-fidelity): ``refine`` solves on a ``refine``-times finer grid
    and subsamples; ``refine=1`` at the stored resolution is the same equation solved on the
    coarse grid.

    Parameters
    ----------
    length : float
        Period :math:`L` of the box.
    t_final : float
        Time of the last stored frame after the burn-in.
    n_times : int
        Number of stored frames.
    dt : float
        Largest solver time step.
    burn_in : float
        Time the random initial condition is evolved before the first (input) frame.
    modes : int
        Largest number of periods of the initial random field over the box.
    refine : int
        :meth:`generate` solves on a ``refine``-times finer grid and subsamples.

    Shapes
    ------
    inputs ``(batch, 1, n)`` (``u0``, after the burn-in), outputs ``(batch, n_times, 1, n)``.

    References
    ----------
    A.-K. Kassam, L. N. Trefethen, Fourth-order time-stepping for stiff PDEs, SIAM J. Sci.
    Comput. 26 (2005) 1214-1233. P. Lippe et al., PDE-Refiner: achieving accurate long
    rollouts with neural PDE solvers, NeurIPS 2023.
    """

    name = "kuramoto_sivashinsky"
    input_names = ("u0",)
    output_names = ("u",)
    ndim = 1
    stepper = ETDRK4

    def __init__(
        self,
        length: float = 64.0,
        t_final: float = 80.0,
        n_times: int = 100,
        dt: float = 0.1,
        burn_in: float = 100.0,
        modes: int = 16,
        refine: int = 1,
    ) -> None:
        self.length = check_positive("length", length)
        self._set_schedule(t_final, n_times, include_initial=False, dt=dt, refine=refine, burn_in=burn_in)
        self.modes = int(modes)
        self.initial = GaussianRandomField(2.0, 1.0, sigma=1.0, boundary="periodic", modes=self.modes)

    def grid(self, resolution: int) -> Grid:
        """The periodic grid of ``resolution`` nodes on :math:`[0, L)`."""
        return Grid((resolution,), domain=((0.0, self.length),), periodic=True)

    def terms(self, fourier: Fourier) -> Terms:
        (ik,) = fourier.ik

        def nonlinear(u_hat: torch.Tensor) -> torch.Tensor:
            u = fourier.inverse(fourier.dealias(u_hat))
            return -0.5 * ik * fourier.dealias(fourier.forward(u * u))

        return Terms(linear=fourier.k2 - fourier.k2**2, nonlinear=nonlinear)

    def params(self) -> dict[str, Any]:
        return {
            "length": self.length,
            "t_final": self.t_final,
            "n_times": self.n_times,
            "dt": self.dt,
            "burn_in": self.burn_in,
            "modes": self.modes,
            "initial": {"alpha": 2.0, "tau": 1.0, "sigma": 1.0},
            "refine": self.refine,
            "solver": "Fourier pseudo-spectral, 2/3 dealiasing, ETDRK4 (Cox-Matthews, contour-integral coefficients)",
        }
