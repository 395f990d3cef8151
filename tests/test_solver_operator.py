"""The PDE's own solver as a differentiable forward operator (adjoint method)."""

import pytest
import torch

from oplearn.errors import OplearnError
from oplearn.grids import Grid
from oplearn.inverse.solver_operator import SolverOperator
from oplearn.pdes import Darcy, Poisson


def test_adjoint_gradient_matches_finite_differences_and_solves_exactly():
    pde, grid = Darcy(), Grid((8, 8))
    op = SolverOperator(pde, grid)
    g = torch.Generator().manual_seed(0)
    a = (3 + 9 * torch.rand(2, 1, 8, 8, generator=g, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(op, (a,), eps=1e-6, atol=1e-8)
    u = op(a)
    assert u.dtype == a.dtype and torch.allclose(u, pde.solve(a.detach(), grid), atol=1e-12)
    assert pde.residual(u.detach(), a.detach(), grid).abs().max() < 1e-10


def test_coefficient_below_its_range_is_continued_positive_with_a_gradient():
    """Below Darcy's low value the coefficient is continued by low * exp((a - low) / low): positive,
    continuously differentiable at low, and every node keeps a gradient (a clamp would leave none
    for a draw lying wholly below the range)."""
    pde, grid = Darcy(), Grid((8, 8))
    op = SolverOperator(pde, grid)
    low = torch.full((1, 1, 8, 8), pde.low, dtype=torch.float64)
    for shift in (-1e-6, 1e-6):  # one-sided difference quotients agree at a = low
        a = (low + shift).requires_grad_(True)
        op(a).sum().backward()
        if shift < 0:
            below = a.grad.clone()
        else:
            assert torch.allclose(below, a.grad, rtol=1e-4)
    a = torch.full((1, 1, 8, 8), -5.0, dtype=torch.float64, requires_grad=True)
    u = op(a)
    u.sum().backward()
    assert torch.isfinite(u).all() and u.max() > 0
    interior = a.grad[..., 1:-1, 1:-1]
    assert (interior != 0).all() and torch.isfinite(interior).all()


def test_solver_operator_needs_a_self_adjoint_pde():
    with pytest.raises(OplearnError, match="adjoint"):
        SolverOperator(Poisson(), Grid((8, 8)))
