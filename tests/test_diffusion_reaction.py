import json
import math

import pytest
import torch
from problems import REACTION_DIFFUSION_PROBLEMS, observed_order

from oplearn.grids import Grid
from oplearn.pdes import PDES, DiffusionReaction
from oplearn.pdes.diffusion_reaction import neumann_laplacian, rk4_trajectory

PROBLEM = REACTION_DIFFUSION_PROBLEMS[0]


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered_with_the_pdebench_defaults_and_json_params():
    assert PDES["diffusion-reaction"] is DiffusionReaction
    pde = DiffusionReaction()
    params = json.loads(json.dumps(pde.params()))
    assert (params["du"], params["dv"], params["k"], params["t_end"], params["frames"]) == (1e-3, 5e-3, 5e-3, 5.0, 101)
    assert torch.allclose(pde.times, torch.arange(101, dtype=torch.float64) * 0.05)
    grid = pde.grid(128)
    assert pde.output_shape(grid) == (101, 2, 128, 128)


def test_grid_nodes_are_the_cell_centres():
    grid = DiffusionReaction().grid(8)
    x = grid.axes(torch.float64)[0]
    assert torch.allclose(x, -1 + 0.25 * (torch.arange(8, dtype=torch.float64) + 0.5))
    assert grid.spacing == pytest.approx((0.25, 0.25)) and not grid.periodic


def test_initial_condition_is_standard_normal_and_prefix_stable():
    pde = DiffusionReaction()
    grid = pde.grid(32)
    y0 = pde.sample_input(4, grid, seeded(1))
    assert y0.shape == (4, 2, 32, 32) and y0.dtype == torch.float64
    assert abs(y0.mean()) < 0.05 and abs(y0.std() - 1) < 0.05
    assert torch.equal(pde.sample_input(2, grid, seeded(1)), y0[:2])


def test_standard_recipe_with_the_stability_bound_alone_stays_in_the_invariant_square():
    pde = DiffusionReaction(max_dt=None)
    grid = pde.grid(24)
    y0 = pde.sample_input(2, grid, seeded(2))
    y = pde.solve(y0, grid)
    assert y.shape == (2, 101, 2, 24, 24) and torch.isfinite(y).all()
    assert torch.equal(y[:, 0], y0)
    assert y.abs().max() <= y0.abs().max() + 1e-12
    assert y[:, -1].std() < 0.9 * y0.std()  # diffusion and the cubic have smoothed the noise
    # a sample's trajectory does not depend on the rest of the batch
    assert torch.equal(pde.solve(y0[1:], grid)[0], y[1])


def test_laplacian_conserves_mass_and_is_exact_on_quadratics_inside():
    grid = DiffusionReaction().grid(12)
    y = torch.randn(3, 2, 12, 12, dtype=torch.float64)
    lap = neumann_laplacian(y, grid)
    assert lap.sum((-1, -2)).abs().max() < 1e-11 * lap.abs().max()
    x, _ = grid.coordinates(torch.float64)
    assert torch.allclose(
        neumann_laplacian(x**2, grid)[1:-1], torch.full((10, 12), 2.0, dtype=torch.float64), atol=1e-10
    )
    with pytest.raises(ValueError, match="periodic"):
        neumann_laplacian(y, Grid((12, 12), periodic=True))


def test_pure_diffusion_conserves_mass_over_time():
    pde = DiffusionReaction(du=0.05, dv=0.2)
    grid = pde.grid(16)
    y0 = pde.sample_input(2, grid, seeded(3))
    y = rk4_trajectory(lambda t, y: pde.diffusion(y, grid), y0, torch.linspace(0, 1, 11, dtype=torch.float64), steps=20)
    mass = y.sum((-1, -2)) * grid.cell_volume  # (batch, time, species)
    assert (mass - mass[:, :1]).abs().max() < 1e-12 * y0.abs().sum() * grid.cell_volume
    assert (y[:, -1] - y0).abs().max() > 0.5  # the fields did move


def test_observed_second_order_in_space():
    pde = DiffusionReaction(du=0.05, dv=0.1, t_end=0.25, frames=2)
    spacings, errors = [], []
    for n in (16, 32, 64):
        grid = pde.grid(n)
        y = pde.solve(PROBLEM.values(grid, 0.0), grid, source=PROBLEM.source(pde, grid))
        spacings.append(grid.spacing[0])
        errors.append((y[0, -1] - PROBLEM.values(grid, pde.t_end)[0]).abs().max().item())
    assert 1.8 < observed_order(spacings, errors) < 2.2, errors


def test_observed_fourth_order_in_time():
    steps, errors = [], []
    for max_dt in (0.2, 0.1, 0.05):
        pde = DiffusionReaction(t_end=0.6, frames=2, max_dt=max_dt)
        grid = pde.grid(16)
        y0 = PROBLEM.values(grid, 0.0)
        assert pde.stable_dt(y0, grid).item() == max_dt  # the accuracy cap, not stability, sets the step
        y = pde.solve(y0, grid, source=PROBLEM.discrete_source(pde, grid))
        steps.append(pde.t_end / math.ceil(pde.t_end / max_dt - 1e-9))
        errors.append((y[0, -1] - PROBLEM.values(grid, pde.t_end)[0]).abs().max().item())
    assert 3.7 < observed_order(steps, errors) < 4.3, errors


def test_residual_is_second_order_in_the_frame_spacing_and_differentiable():
    maxima = []
    for frames in (11, 21, 41):
        pde = DiffusionReaction(du=0.02, dv=0.05, t_end=0.5, frames=frames)
        grid = pde.grid(16)
        y0 = PROBLEM.values(grid, 0.0)
        residual = pde.residual(pde.solve(y0, grid), y0, grid)
        assert residual.shape == (1, frames - 1, 2, 16, 16)
        maxima.append(residual.abs().max().item())
    assert 1.8 < observed_order([0.05, 0.025, 0.0125], maxima) < 2.2, maxima
    y = pde.solve(y0, grid).requires_grad_(True)
    pde.residual(y, y0, grid).pow(2).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0


def test_stable_step_shrinks_with_the_cell_width_and_the_amplitude():
    pde = DiffusionReaction(max_dt=None)
    y = torch.zeros(2, 2, 32, 32, dtype=torch.float64)
    y[1] = 4.0
    dt = pde.stable_dt(y, pde.grid(32))
    assert dt[1] < dt[0]
    assert pde.stable_dt(torch.zeros(1, 2, 64, 64, dtype=torch.float64), pde.grid(64))[0] < dt[0]
    assert (DiffusionReaction().stable_dt(y, pde.grid(32)) == 0.0025).all()  # the default accuracy cap


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(du=0.0),
        dict(dv=-1.0),
        dict(k=float("nan")),
        dict(t_end=0.0),
        dict(frames=1),
        dict(frames=2.5),
        dict(max_dt=0.0),
        dict(refine=2),
    ],
)
def test_invalid_parameters(kwargs):
    with pytest.raises(ValueError):
        DiffusionReaction(**kwargs)


def test_invalid_inputs_and_outputs():
    pde = DiffusionReaction(frames=3)
    grid = pde.grid(8)
    with pytest.raises(ValueError, match="inputs must have shape"):
        pde.solve(torch.zeros(1, 1, 8, 8), grid)
    with pytest.raises(ValueError, match="NaN"):
        pde.solve(torch.full((1, 2, 8, 8), float("nan")), grid)
    with pytest.raises(ValueError, match="bounded 2D grid"):
        pde.solve(torch.zeros(1, 2, 8, 8), Grid((8, 8), periodic=True))
    with pytest.raises(ValueError, match="outputs must have shape"):
        pde.residual(torch.zeros(1, 2, 2, 8, 8), torch.zeros(1, 2, 8, 8), grid)
