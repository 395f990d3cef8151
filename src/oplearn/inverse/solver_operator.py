r"""A PDE's own solver as a differentiable forward operator, by the adjoint method.

For a steady PDE whose discrete residual is linear in the solution,
:math:`R(u, a) = A(a)\,u - f = 0` at the interior nodes, the solution map :math:`a \mapsto u(a)`
has the vector-Jacobian product

.. math::

    \Big(\frac{\partial u}{\partial a}\Big)^{\!\top} g = -\Big(\frac{\partial R}{\partial a}\Big)^{\!\top} \lambda,
    \qquad A(a)^\top \lambda = g,

one more solve with the same operator (the *adjoint* solve) and one vector-Jacobian product of
the PDE's differentiable :meth:`~oplearn.pdes.base.PDE.residual`. Where :math:`A` is symmetric
(Darcy's 5-point scheme with averaged face coefficients) the adjoint solve is the PDE's own
``solve`` with ``g`` as the forcing. :class:`SolverOperator` is that map as a module, so the
solver can stand where DDIS puts a trained operator (:class:`~oplearn.inverse.guidance.DecoupledFields`):
the guidance then sees the exact discrete physics, not a learned approximation of it.
"""

from __future__ import annotations

import math

import torch

from oplearn.errors import OplearnError
from oplearn.grids import Grid
from oplearn.inverse.guidance import two_valued
from oplearn.pdes.base import PDE


class _AdjointSolve(torch.autograd.Function):
    """``u = solve(a)`` with the adjoint vector-Jacobian product (module docstring)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, a: torch.Tensor, pde: PDE, grid: Grid) -> torch.Tensor:
        a64 = a.detach().cpu().double()
        u = pde.solve(a64, grid)
        ctx.save_for_backward(a64, u)
        ctx.pde, ctx.grid, ctx.like = pde, grid, a.new_empty(())
        return u.to(a)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_u: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        a64, u = ctx.saved_tensors
        pde, grid = ctx.pde, ctx.grid
        adjoint = pde.solve(a64, grid, forcing=grad_u[:, 0].detach().cpu().double())  # A^{-1} g (A = A^T)
        interior = (slice(None), slice(None)) + (slice(1, -1),) * grid.ndim
        with torch.enable_grad():
            leaf = a64.requires_grad_(True)
            (grad_a,) = torch.autograd.grad(pde.residual(u, leaf, grid), leaf, grad_outputs=-adjoint[interior])
        return grad_a.to(ctx.like), None, None


class SolverOperator(torch.nn.Module):
    r"""The map :math:`a \mapsto u` of a PDE's reference solver, differentiable by the adjoint method.

    Needs a PDE with :attr:`~oplearn.pdes.base.PDE.self_adjoint` (a symmetric discrete operator,
    linear in the solution, and a ``solve`` that takes a ``forcing``). A two-valued coefficient
    (Darcy's ``low``/``high``) reaches the solver through :class:`TwoValuedProjection`, which
    equals the identity on the two values and keeps every other field in range; the fields
    :class:`~oplearn.inverse.guidance.DecoupledFields` returns keep the prior's coefficient, so
    observations of it are of the prior's own values. Solves run on the CPU in float64; the output
    has the input's dtype and device.

    Shapes: ``(batch, len(pde.input_names), *grid.shape) -> (batch, len(pde.output_names), *grid.shape)``.
    """

    def __init__(self, pde: PDE, grid: Grid) -> None:
        super().__init__()
        if not pde.self_adjoint:
            raise OplearnError(
                f"the {pde.name} solver is not differentiable by the adjoint method here (a symmetric "
                "linear operator is needed, e.g. darcy); use a trained forward operator instead"
            )
        self.pde, self.grid = pde, grid
        self.in_channels, self.out_channels = len(pde.input_names), len(pde.output_names)
        bounds = two_valued(pde).get(pde.input_names[0])
        self.projection = TwoValuedProjection(*bounds) if bounds is not None else None

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if self.projection is not None:
            a = self.projection(a)
        return _AdjointSolve.apply(a, self.pde, self.grid)


class TwoValuedProjection(torch.nn.Module):
    r"""A smooth map of any field onto the range of a two-valued coefficient that keeps its two values:

    .. math:: c(a) = \text{low} - \delta + (\text{high} - \text{low} + 2\delta)\,
              \operatorname{sigmoid}\big(k (a - m)\big), \qquad m = \frac{\text{low} + \text{high}}{2},
              \quad k = \frac{8}{\text{high} - \text{low}},

    with :math:`\delta` such that :math:`c(\text{low}) = \text{low}` and :math:`c(\text{high}) = \text{high}`
    (:math:`\delta = 0.0187\,(\text{high} - \text{low})`), so observed values of the coefficient are
    reached at the same values of :math:`a`. Denoised estimates of a coefficient that takes two
    values (Darcy's 3 and 12) leave that range, and a solver fed them rewards doing so: on Darcy
    with a 60-epoch coefficient prior, guided draws through the bare solver reached values from
    -15 to 35 to fit the observed solution, and still fitted it only to 6-100% with coefficient
    error rates of 0.2-0.3 per draw; through ``c`` the solver sees a coefficient within
    :math:`\delta` of its range, and only a flip of phase can fit the data (BENCHMARKS.md).
    ``c`` is monotone, positive for positive ``low``, has a nonzero gradient everywhere, and
    keeps the threshold ``m`` (the coefficient error rate is that of ``a``).

    Shapes: ``(batch, 1, *spatial) -> (batch, 1, *spatial)``.
    """

    def __init__(self, low: float, high: float) -> None:
        super().__init__()
        self.low, self.high = float(low), float(high)
        gap = self.high - self.low
        edge = 1 / (1 + math.exp(4.0))  # sigmoid(k (low - m))
        self.delta = gap * edge / (1 - 2 * edge)
        self.middle, self.slope = 0.5 * (self.low + self.high), 8 / gap

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        span = self.high - self.low + 2 * self.delta
        return self.low - self.delta + span * torch.sigmoid((a - self.middle) * self.slope)
