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

import torch

from oplearn.errors import OplearnError
from oplearn.grids import Grid
from oplearn.pdes.base import PDE


class _AdjointSolve(torch.autograd.Function):
    """``u = solve(a)`` with the adjoint vector-Jacobian product (module docstring)."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, a: torch.Tensor, pde: PDE, grid: Grid) -> torch.Tensor:
        u = pde.solve(a.detach().cpu().double(), grid)
        ctx.save_for_backward(a, u)
        ctx.pde, ctx.grid = pde, grid
        return u.to(a)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad_u: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        a, u = ctx.saved_tensors
        pde, grid = ctx.pde, ctx.grid
        a64 = a.detach().cpu().double()
        adjoint = pde.solve(a64, grid, forcing=grad_u[:, 0].detach().cpu().double())  # A^{-1} g (A = A^T)
        interior = (slice(None), slice(None)) + (slice(1, -1),) * grid.ndim
        with torch.enable_grad():
            leaf = a64.requires_grad_(True)
            (grad_a,) = torch.autograd.grad(pde.residual(u, leaf, grid), leaf, grad_outputs=-adjoint[interior])
        return grad_a.to(a), None, None


class SolverOperator(torch.nn.Module):
    r"""The map :math:`a \mapsto u` of a PDE's reference solver, differentiable by the adjoint method.

    Needs a PDE with :attr:`~oplearn.pdes.base.PDE.self_adjoint` (a symmetric discrete operator,
    linear in the solution, and a ``solve`` that takes a ``forcing``). Denoised estimates of a
    coefficient leave its range, and the solver needs it positive: below the PDE's ``low`` value
    (Darcy's smaller permeability) the coefficient is continued as
    :math:`\text{low}\, e^{(a - \text{low}) / \text{low}}`, positive, continuously
    differentiable, and the identity on :math:`a \ge \text{low}`. A hard clamp would cut the
    gradient where it binds (at large noise a whole draw can lie outside the range, and the
    guidance would then see no gradient at all). Solves run on the CPU in float64; the output has
    the input's dtype and device.

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
        self.low = float(pde.low) if hasattr(pde, "low") else None

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if self.low is not None:
            a = torch.where(a >= self.low, a, self.low * torch.exp((a.clamp(max=self.low) - self.low) / self.low))
        return _AdjointSolve.apply(a, self.pde, self.grid)
