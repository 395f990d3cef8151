r"""Steady Darcy flow with a two-valued random permeability.

.. math::

    -\nabla \cdot (a \nabla u) = f \ \text{on } [0, 1]^2, \qquad u = 0 \ \text{on the boundary}.
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


class Darcy(PDE):
    r"""Darcy flow :math:`-\nabla \cdot (a \nabla u) = f`, :math:`u = 0` on the boundary of the unit square.

    The permeability is a thresholded Gaussian random field,
    :math:`a = \text{high}` where :math:`g \ge \text{threshold}` and :math:`\text{low}`
    elsewhere, with :math:`g` drawn from
    ``GaussianRandomField(alpha, tau, boundary="neumann", modes=modes)``: covariance
    :math:`(-\Delta + \tau^2)^{-\alpha}` in the cosine basis with eigen-coefficients
    :math:`\tau^{\alpha - 1}(\pi^2|k|^2 + \tau^2)^{-\alpha/2}`. The defaults are the
    DiffusionPDE / FunDPS recipe (the FNO data used ``low=4``). The forcing is the constant
    ``forcing``. The reference solver is the 5-point finite-difference scheme of
    :func:`oplearn.derivatives.divergence_form` solved directly
    (:func:`oplearn.solvers.elliptic.solve_dirichlet`).

    Parameters
    ----------
    alpha, tau : float
        Smoothness and inverse length scale of the underlying random field.
    high, low : float
        The two permeability values, both positive.
    threshold : float
        Level of the random field separating ``high`` (at or above) from ``low``.
    forcing : float
        The constant right-hand side ``f``.
    modes : int
        Cosine modes per dimension of the random field (independent of the resolution).
    refine : int
        :meth:`generate` solves on a ``refine``-times finer grid and subsamples.

    Shapes
    ------
    inputs ``(batch, 1, n, n)`` (channel ``a``), outputs ``(batch, 1, n, n)`` (channel ``u``).
    """

    name = "darcy"
    input_names = ("a",)
    output_names = ("u",)
    periodic = False
    zero_dirichlet = True
    self_adjoint = True
    ndim = 2

    def __init__(
        self,
        alpha: float = 2.0,
        tau: float = 3.0,
        high: float = 12.0,
        low: float = 3.0,
        threshold: float = 0.0,
        forcing: float = 1.0,
        modes: int = 64,
        refine: int = 1,
    ) -> None:
        if not (high > 0 and low > 0):
            raise ValueError(f"permeabilities must be positive, got high={high}, low={low}")
        if not all(math.isfinite(v) for v in (threshold, forcing)):
            raise ValueError(f"threshold and forcing must be finite, got {threshold}, {forcing}")
        if int(refine) != refine or refine < 1:
            raise ValueError(f"refine must be a positive integer, got {refine}")
        self.field = GaussianRandomField(alpha, tau, boundary="neumann", modes=modes)
        self.alpha, self.tau, self.modes = float(alpha), float(tau), int(modes)
        self.high, self.low = float(high), float(low)
        self.threshold = float(threshold)
        self.forcing = float(forcing)
        self.refine = int(refine)

    def params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "tau": self.tau,
            "high": self.high,
            "low": self.low,
            "threshold": self.threshold,
            "forcing": self.forcing,
            "modes": self.modes,
            "refine": self.refine,
            "solver": "5-point finite differences, face coefficients by arithmetic averaging, sparse LU (SuperLU)",
        }

    def sample_input(self, n: int, grid: Grid, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` permeabilities on ``grid``: ``(n, 1, *grid.shape)``, values in ``{low, high}``."""
        self._check_grid(grid)
        g = self.field.sample(n, grid, generator)
        return torch.where(g >= self.threshold, g.new_tensor(self.high), g.new_tensor(self.low)).unsqueeze(1)

    def solve(self, inputs: torch.Tensor, grid: Grid, forcing: torch.Tensor | None = None) -> torch.Tensor:
        """Solve for each permeability: ``(batch, 1, *grid.shape) -> (batch, 1, *grid.shape)``.

        ``forcing`` ``(batch, *grid.shape)`` replaces the constant right-hand side.
        """
        a = self._check_inputs(inputs, grid)
        f = self._forcing(forcing, a)
        return solve_dirichlet(a, f, grid).unsqueeze(1)

    def residual(
        self, outputs: torch.Tensor, inputs: torch.Tensor, grid: Grid, forcing: torch.Tensor | None = None
    ) -> torch.Tensor:
        r""":math:`-\nabla \cdot (a \nabla u) - f` at the interior nodes (differentiable).

        Shapes: ``outputs, inputs (batch, 1, n, n) -> (batch, 1, n - 2, n - 2)``.
        """
        a = self._check_inputs(inputs, grid)
        if outputs.ndim != 4 or outputs.shape[1] != 1 or tuple(outputs.shape[2:]) != grid.shape:
            raise ValueError(f"Darcy outputs must have shape (batch, 1, *{grid.shape}), got {tuple(outputs.shape)}")
        f = self._forcing(forcing, a)[:, 1:-1, 1:-1]
        return (-divergence_form(outputs[:, 0], a, grid) - f).unsqueeze(1)

    def _check_grid(self, grid: Grid) -> None:
        if grid.ndim != 2 or grid.periodic:
            raise ValueError(f"Darcy needs a bounded 2D grid, got shape {grid.shape} with periodic={grid.periodic}")

    def _check_inputs(self, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        """The permeability ``(batch, *grid.shape)`` after checking shape and values."""
        self._check_grid(grid)
        if inputs.ndim != 4 or inputs.shape[1] != 1 or tuple(inputs.shape[2:]) != grid.shape:
            raise ValueError(f"Darcy inputs must have shape (batch, 1, *{grid.shape}), got {tuple(inputs.shape)}")
        if not torch.isfinite(inputs).all():
            raise ValueError("Darcy permeability contains NaN or infinite values")
        if not (inputs > 0).all():
            raise ValueError(f"Darcy permeability must be positive; its minimum is {inputs.min().item():.3g}")
        return inputs[:, 0]

    def _forcing(self, forcing: torch.Tensor | None, a: torch.Tensor) -> torch.Tensor:
        if forcing is None:
            return torch.full_like(a, self.forcing)
        if tuple(forcing.shape) != tuple(a.shape):
            raise ValueError(f"forcing must have shape {tuple(a.shape)}, got {tuple(forcing.shape)}")
        return forcing.to(a)
