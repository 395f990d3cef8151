"""The PDE's own solver as a differentiable forward operator (adjoint method)."""

import pytest
import torch

from oplearn.errors import OplearnError
from oplearn.grids import Grid
from oplearn.inverse.solver_operator import SolverOperator, TwoValuedProjection
from oplearn.pdes import Darcy, Poisson


def test_adjoint_gradient_matches_finite_differences_and_solves_exactly():
    pde, grid = Darcy(), Grid((8, 8))
    op = SolverOperator(pde, grid)
    g = torch.Generator().manual_seed(0)
    a = (3 + 9 * torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(op, (a,), eps=1e-6, atol=1e-8)
    u = op(a)
    seen = op.projection(a.detach())  # the coefficient the solver sees
    assert u.dtype == a.dtype and torch.allclose(u, pde.solve(seen, grid), atol=1e-12)
    assert pde.residual(u.detach(), seen, grid).abs().max() < 1e-10


def test_two_valued_projection_keeps_the_two_values_and_bounds_the_rest():
    """c(low) = low, c(high) = high, the threshold stays, c is monotone into a band just around
    [low, high], and every value keeps a gradient (a clamp would leave none outside the range)."""
    low, high = 3.0, 12.0
    c = TwoValuedProjection(low, high)
    a = torch.linspace(-30, 40, 2001, dtype=torch.float64, requires_grad=True)
    out = c(a)
    torch.testing.assert_close(
        c(torch.tensor([low, high, 7.5], dtype=torch.float64)), torch.tensor([low, high, 7.5]), check_dtype=False
    )
    assert (out.diff() >= 0).all() and out.min() > low - 0.02 * (high - low) and out.max() < high + 0.02 * (high - low)
    out.sum().backward()
    assert (a.grad > 0).all()


def test_the_solver_sees_a_two_valued_coefficient_through_the_projection():
    pde, grid = Darcy(), Grid((8, 8))
    op = SolverOperator(pde, grid)
    a = pde.sample_input(2, grid, torch.Generator().manual_seed(0)).double()
    torch.testing.assert_close(op(a), pde.solve(a, grid))  # the two values pass unchanged
    wild = torch.full((1, 1, 8, 8), -20.0, dtype=torch.float64, requires_grad=True)
    u = op(wild)  # a coefficient far below the range: solved (not rejected), with a gradient
    u.sum().backward()
    assert torch.isfinite(u).all() and (wild.grad[..., 1:-1, 1:-1] != 0).all()


def test_solver_operator_needs_a_self_adjoint_pde():
    with pytest.raises(OplearnError, match="adjoint"):
        SolverOperator(Poisson(), Grid((8, 8)))
