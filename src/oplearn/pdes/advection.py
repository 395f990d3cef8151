r"""Linear advection on a periodic interval, PDEBench recipe.

.. math::

    u_t + \beta u_x = 0 \ \text{on } [0, 1) \text{ periodic}, \qquad u(x, t) = u_0(x - \beta t).
"""

from __future__ import annotations

import math
from typing import Any

from oplearn.pdes.evolution import PeriodicEvolution, Terms
from oplearn.pdes.random_sines import RandomSines
from oplearn.solvers.spectral import Fourier
from oplearn.solvers.stepping import ExponentialEuler


class Advection(PeriodicEvolution):
    r"""Advection :math:`u_t + \beta u_x = 0` on the periodic unit interval, PDEBench recipe.

    Solved exactly in Fourier space: each frame multiplies the previous one's
    coefficients by :math:`e^{-i \beta k \Delta t}` (the propagator, applied once per frame
    interval by :class:`~oplearn.solvers.stepping.ExponentialEuler` with no nonlinear
    term), so the stored trajectory is the trigonometric interpolant of the initial
    condition shifted by :math:`\beta t`, exact in time. Shifts by a whole number of grid
    cells reproduce the shifted nodal values to round-off.

    The initial conditions are PDEBench's random sine waves
    (:class:`~oplearn.pdes.random_sines.RandomSines`); 201 frames at
    :math:`t = 0, 0.01, \dots, 2` (the first is the initial condition), 1024 points.
    PDEBench provides :math:`\beta \in \{0.1, 0.2, 0.4, 1, 2, 4\}`; the default here is
    :math:`\beta = 0.1`.

    Parameters
    ----------
    beta : float
        Advection speed.
    t_final : float
        Last stored time.
    n_times : int
        Number of stored frames, evenly spaced over ``[0, t_final]``.
    k_max : int
        Largest wavenumber index of the initial sine waves.
    refine : int
        :meth:`generate` solves on a ``refine``-times finer grid and subsamples (no gain
        in accuracy here; kept for a uniform interface).

    Shapes
    ------
    inputs ``(batch, 1, n)`` (``u0``), outputs ``(batch, n_times, 1, n)`` (``u``).

    References
    ----------
    M. Takamoto et al., PDEBench: an extensive benchmark for scientific machine learning,
    NeurIPS 2022 Datasets and Benchmarks.
    """

    name = "advection"
    input_names = ("u0",)
    output_names = ("u",)
    ndim = 1
    stepper = ExponentialEuler

    def __init__(
        self, beta: float = 0.1, t_final: float = 2.0, n_times: int = 201, k_max: int = 4, refine: int = 1
    ) -> None:
        self.beta = float(beta)
        if not math.isfinite(self.beta):
            raise ValueError(f"beta must be finite, got {beta}")
        self._set_schedule(t_final, n_times, include_initial=True, dt=None, refine=refine)  # one exact step per frame
        self.initial = RandomSines(k_max=k_max)

    def terms(self, fourier: Fourier) -> Terms:
        # The full symbol -i beta k, Nyquist mode included: a shift by whole cells then
        # multiplies that (real) mode by +-1, so it is exact for any nodal data.
        (k,) = fourier.k
        return Terms(linear=-1j * self.beta * k)

    def params(self) -> dict[str, Any]:
        return {
            "beta": self.beta,
            "t_final": self.t_final,
            "n_times": self.n_times,
            "k_max": self.initial.k_max,
            "initial": self.initial.params(),
            "refine": self.refine,
            "solver": "exact Fourier shift (trigonometric interpolation of the initial condition)",
        }
