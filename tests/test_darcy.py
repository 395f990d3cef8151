import json

import pytest
import torch
from problems import PROBLEMS_BY_NAME, observed_order

from oplearn.grids import Grid, subsample
from oplearn.pdes import PDES, Darcy


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered_and_params_are_json():
    pde = Darcy(low=4.0, refine=2)
    assert PDES["darcy"] is Darcy
    params = json.loads(json.dumps(pde.params()))
    assert params["low"] == 4.0 and params["refine"] == 2 and "5-point" in params["solver"]
    assert set(params) == {"alpha", "tau", "high", "low", "threshold", "forcing", "modes", "refine", "solver"}


def test_sample_input_takes_the_two_values():
    pde = Darcy()
    grid = pde.grid(33)
    a = pde.sample_input(6, grid, seeded(0))
    assert a.shape == (6, 1, 33, 33) and a.dtype == torch.float64
    assert set(a.unique().tolist()) == {3.0, 12.0}
    assert all(set(sample.unique().tolist()) == {3.0, 12.0} for sample in a)  # both values in every sample
    high_fraction = (a == 12.0).double().mean()
    assert 0.2 < high_fraction < 0.8
    assert (Darcy(threshold=0.2).sample_input(6, grid, seeded(0)) == 12.0).double().mean() < high_fraction


def test_same_seed_same_data():
    pde = Darcy()
    a1, u1 = pde.generate(2, 17, seeded(5))
    a2, u2 = pde.generate(2, 17, seeded(5))
    assert torch.equal(a1, a2) and torch.equal(u1, u2)
    assert not torch.equal(a1, pde.generate(2, 17, seeded(6))[0])


def test_residual_vanishes_at_the_solution():
    pde = Darcy(high=10.0, low=1.0, forcing=2.5)
    grid = pde.grid(65)
    a = pde.sample_input(3, grid, seeded(1))
    u = pde.solve(a, grid)
    assert u.shape == (3, 1, 65, 65)
    assert (u[..., 0, :] == 0).all() and (u[..., :, -1] == 0).all() and (u > 0).any()
    residual = pde.residual(u, a, grid)
    assert residual.shape == (3, 1, 63, 63)
    assert residual.abs().max() < 1e-9 * pde.forcing
    assert pde.residual(torch.zeros_like(u), a, grid).abs().min() == pytest.approx(2.5)


def test_residual_is_differentiable_in_the_solution():
    pde = Darcy()
    grid = pde.grid(9)
    a = pde.sample_input(1, grid, seeded(2))
    u = torch.zeros(1, 1, 9, 9, dtype=torch.float64, requires_grad=True)
    pde.residual(u, a, grid).pow(2).sum().backward()
    assert u.grad is not None and u.grad.abs().sum() > 0


def test_manufactured_solution_converges_at_second_order():
    problem = PROBLEMS_BY_NAME["variable-2d"]
    pde = Darcy()
    spacings, errors = [], []
    for n in (17, 33, 65):
        grid = pde.grid(n)
        a, f, u = problem.fields(grid)
        u_h = pde.solve(a[None, None], grid, forcing=f[None])
        assert pde.residual(u_h, a[None, None], grid, forcing=f[None]).abs().max() < 1e-9 * f.abs().max()
        spacings.append(grid.spacing[0])
        errors.append((u_h[0, 0] - u).abs().max().item())
    assert 1.8 < observed_order(spacings, errors) < 2.2, errors


def test_refined_generation_keeps_the_coarse_nodes():
    fine_pde, coarse_pde = Darcy(refine=2), Darcy()
    a, u = fine_pde.generate(2, 17, seeded(4))
    coarse_grid = coarse_pde.grid(17)
    assert a.shape == u.shape == (2, 1, 17, 17)
    # the same underlying field, evaluated at the coarse nodes
    assert torch.equal(a, coarse_pde.sample_input(2, coarse_grid, seeded(4)))
    fine_grid = coarse_grid.refine(2)
    a_fine = fine_pde.sample_input(2, fine_grid, seeded(4))
    assert torch.equal(u, subsample(fine_pde.solve(a_fine, fine_grid), 2, 2))
    # a finer solve of the same problem, so close to the coarse one
    u_coarse = coarse_pde.solve(a, coarse_grid)
    assert (u - u_coarse).abs().max() < 0.2 * u.abs().max()


@pytest.mark.parametrize(
    "inputs, grid, message",
    [
        (torch.full((2, 9, 9), 3.0, dtype=torch.float64), Grid((9, 9)), "inputs must have shape"),
        (torch.full((2, 2, 9, 9), 3.0, dtype=torch.float64), Grid((9, 9)), "inputs must have shape"),
        (torch.full((2, 1, 9, 8), 3.0, dtype=torch.float64), Grid((9, 9)), "inputs must have shape"),
        (torch.full((2, 1, 9, 9), -3.0, dtype=torch.float64), Grid((9, 9)), "positive"),
        (torch.full((2, 1, 9, 9), float("nan"), dtype=torch.float64), Grid((9, 9)), "NaN"),
        (torch.full((2, 1, 9, 9), 3.0, dtype=torch.float64), Grid((9, 9), periodic=True), "bounded 2D grid"),
        (torch.full((2, 1, 9, 9, 9), 3.0, dtype=torch.float64), Grid((9, 9, 9)), "bounded 2D grid"),
    ],
)
def test_invalid_inputs(inputs, grid, message):
    with pytest.raises(ValueError, match=message):
        Darcy().solve(inputs, grid)


def test_invalid_forcing_outputs_and_parameters():
    pde = Darcy()
    grid = pde.grid(9)
    a = torch.full((2, 1, 9, 9), 3.0, dtype=torch.float64)
    with pytest.raises(ValueError, match="forcing must have shape"):
        pde.solve(a, grid, forcing=torch.ones(2, 1, 9, 9))
    with pytest.raises(ValueError, match="outputs must have shape"):
        pde.residual(torch.zeros(2, 9, 9), a, grid)
    for kwargs in (dict(low=0.0), dict(high=-1.0), dict(refine=0), dict(tau=0.0), dict(threshold=float("nan"))):
        with pytest.raises(ValueError):
            Darcy(**kwargs)
