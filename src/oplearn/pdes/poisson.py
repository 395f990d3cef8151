r"""Poisson and Helmholtz problems with a random source on the unit square.

.. math::

    \Delta u + k^2 u = f \ \text{on } [0, 1]^2, \qquad u = 0 \ \text{on the boundary},

with :math:`k = 0` for :class:`Poisson` and :math:`k > 0` for :class:`Helmholtz`. Both map the
source ``f`` (a Gaussian random field) to the solution ``u`` and share everything but
:math:`k`, so they are one base class and two thin subclasses.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from oplearn.derivatives import divergence_form
from oplearn.fields import GaussianRandomField
from oplearn.grids import Grid
from oplearn.pdes.base import PDE
from oplearn.solvers.elliptic import solve_dirichlet

SOLVER = "5-point finite differences, sparse LU (SuperLU) factorised once per batch"


class _RandomSourceProblem(PDE):
    r""":math:`\Delta u + k^2 u = f` on the unit square with zero Dirichlet data and a random source.

    The source is drawn from ``GaussianRandomField(alpha, tau, sigma, boundary="neumann",
    modes=modes)``: covariance :math:`\sigma^2(-\Delta + \tau^2)^{-\alpha}` in the cosine basis,
    zero mean mode. Its values on the boundary nodes do not enter the solution.

    The reference solver writes the equation as :math:`-\Delta u - k^2 u = -f` and calls
    :func:`oplearn.solvers.elliptic.solve_dirichlet` with ``a = 1`` and ``reaction = -k^2``;
    the 5-point operator is the same as :func:`oplearn.derivatives.divergence_form` with
    ``a = 1``, so :meth:`residual` vanishes at the solution to round-off.

    Shapes
    ------
    inputs ``(batch, 1, n, n)`` (channel ``f``), outputs ``(batch, 1, n, n)`` (channel ``u``),
    residual ``(batch, 1, n - 2, n - 2)``.
    """

    input_names = ("f",)
    output_names = ("u",)
    periodic = False
    zero_dirichlet = True
    ndim = 2

    #: The wavenumber :math:`k` (``0`` for Poisson).
    k: float

    def __init__(self, alpha: float, tau: float, sigma: float | None, modes: int, refine: int) -> None:
        if int(refine) != refine or refine < 1:
            raise ValueError(f"refine must be a positive integer, got {refine}")
        self.field = GaussianRandomField(alpha, tau, sigma=sigma, boundary="neumann", modes=modes)
        self.alpha, self.tau, self.sigma, self.modes = (
            self.field.alpha,
            self.field.tau,
            self.field.sigma,
            self.field.modes,
        )
        self.refine = int(refine)

    def _field_params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "tau": self.tau,
            "sigma": self.sigma,
            "modes": self.modes,
            "refine": self.refine,
            "solver": SOLVER,
        }

    def sample_input(self, n: int, grid: Grid, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` sources on ``grid``: ``(n, 1, *grid.shape)``, float64."""
        self._check_grid(grid)
        return self.field.sample(n, grid, generator).unsqueeze(1)

    def solve(self, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        """Solve for each source: ``(batch, 1, *grid.shape) -> (batch, 1, *grid.shape)``, float64."""
        f = self._check_inputs(inputs, grid)
        self._check_not_resonant(grid)
        ones = torch.ones((1, *grid.shape), dtype=torch.float64)
        return solve_dirichlet(ones, -f, grid, reaction=-(self.k**2)).unsqueeze(1)

    def residual(self, outputs: torch.Tensor, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        r""":math:`\Delta_h u + k^2 u - f` at the interior nodes (differentiable).

        Shapes: ``outputs, inputs (batch, 1, n, n) -> (batch, 1, n - 2, n - 2)``.
        """
        f = self._check_inputs(inputs, grid)
        if outputs.ndim != 4 or outputs.shape[1] != 1 or tuple(outputs.shape[2:]) != grid.shape:
            raise ValueError(
                f"{self.name} outputs must have shape (batch, 1, *{grid.shape}), got {tuple(outputs.shape)}"
            )
        u = outputs[:, 0]
        laplacian = divergence_form(u, torch.ones(grid.shape, dtype=u.dtype, device=u.device), grid)
        interior = (slice(None), slice(1, -1), slice(1, -1))
        return (laplacian + self.k**2 * u[interior] - f[interior].to(u)).unsqueeze(1)

    def _check_grid(self, grid: Grid) -> None:
        if grid.ndim != 2 or grid.periodic:
            raise ValueError(
                f"{self.name} needs a bounded 2D grid, got shape {grid.shape} with periodic={grid.periodic}"
            )

    def _check_inputs(self, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        """The source ``(batch, *grid.shape)`` after checking shape and values."""
        self._check_grid(grid)
        if inputs.ndim != 4 or inputs.shape[1] != 1 or tuple(inputs.shape[2:]) != grid.shape:
            raise ValueError(f"{self.name} inputs must have shape (batch, 1, *{grid.shape}), got {tuple(inputs.shape)}")
        if not torch.isfinite(inputs).all():
            raise ValueError(f"{self.name} source contains NaN or infinite values")
        return inputs[:, 0]

    def _check_not_resonant(self, grid: Grid) -> None:
        r"""Refuse :math:`k^2` at an eigenvalue of the discrete Dirichlet Laplacian (singular system).

        The eigenvalues of :math:`-\Delta_h` are
        :math:`\sum_d (4 / h_d^2) \sin^2(p_d \pi / (2 (n_d - 1)))`, :math:`p_d = 1 .. n_d - 2`.
        """
        if self.k == 0:
            return
        eigenvalues = [
            (4 / h**2) * torch.sin(torch.arange(1, n - 1, dtype=torch.float64) * math.pi / (2 * (n - 1))) ** 2
            for n, h in zip(grid.shape, grid.spacing)
        ]
        gap = (eigenvalues[0][:, None] + eigenvalues[1][None, :] - self.k**2).abs().min().item()
        if gap < 1e-8 * self.k**2:
            raise ValueError(
                f"k^2 = {self.k**2:.6g} is an eigenvalue of the discrete Laplacian on the {grid.shape} grid "
                "(resonance: no unique solution); change k or the resolution"
            )


class Poisson(_RandomSourceProblem):
    r"""Poisson's equation :math:`\Delta u = f`, :math:`u = 0` on the boundary of the unit square.

    The defaults are the DiffusionPDE / FunDPS data recipe: ``f`` a cosine-basis Gaussian random
    field with ``alpha = 2``, ``tau = 3`` (the Darcy field before thresholding), solved with the
    5-point stencil at the stored resolution (128^2 in those papers). One difference in scale:
    their field expands in the L2-normalised cosines (``sqrt(2) cos`` per non-constant
    direction) while :class:`~oplearn.fields.GaussianRandomField` uses plain cosines, so their
    ``f`` (and ``u``) is about twice as large (exactly 2 on modes with both indices non-zero,
    ``sqrt(2)`` on the others). Relative errors do not depend on it; ``sigma=6.0`` matches
    their scale on the dominant modes.

    Parameters
    ----------
    alpha, tau : float
        Smoothness and inverse length scale of the source field.
    sigma : float, optional
        Amplitude of the source field; defaults to ``tau ** (alpha - 1)`` (see
        :class:`~oplearn.fields.GaussianRandomField` for the normalisation of its cosine basis).
    modes : int
        Cosine modes per dimension of the source field (independent of the resolution).
    refine : int
        :meth:`generate` solves on a ``refine``-times finer grid and subsamples.

    Shapes
    ------
    inputs ``(batch, 1, n, n)`` (channel ``f``), outputs ``(batch, 1, n, n)`` (channel ``u``).
    """

    name = "poisson"
    k = 0.0

    def __init__(
        self, alpha: float = 2.0, tau: float = 3.0, sigma: float | None = None, modes: int = 64, refine: int = 1
    ) -> None:
        super().__init__(alpha, tau, sigma, modes, refine)

    def params(self) -> dict[str, Any]:
        return self._field_params()


class Helmholtz(_RandomSourceProblem):
    r"""Helmholtz's equation :math:`\Delta u + k^2 u = f`, :math:`u = 0` on the boundary of the unit square.

    The source is drawn as for :class:`Poisson`; ``k = 1`` is the DiffusionPDE / FunDPS value.
    A ``k^2`` at an eigenvalue of the discrete Laplacian (the smallest is about
    :math:`2 \pi^2`) makes the problem singular and is refused by ``solve``.

    Parameters
    ----------
    k : float
        The wavenumber, finite and ``>= 0``.
    alpha, tau, sigma, modes, refine
        As for :class:`Poisson`.

    Shapes
    ------
    inputs ``(batch, 1, n, n)`` (channel ``f``), outputs ``(batch, 1, n, n)`` (channel ``u``).
    """

    name = "helmholtz"

    def __init__(
        self,
        k: float = 1.0,
        alpha: float = 2.0,
        tau: float = 3.0,
        sigma: float | None = None,
        modes: int = 64,
        refine: int = 1,
    ) -> None:
        if not (math.isfinite(k) and k >= 0):
            raise ValueError(f"the wavenumber k must be finite and >= 0, got {k}")
        super().__init__(alpha, tau, sigma, modes, refine)
        self.k = float(k)

    def params(self) -> dict[str, Any]:
        return {"k": self.k, **self._field_params()}
