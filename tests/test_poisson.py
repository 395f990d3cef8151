import json
import math

import pytest
import torch
from problems import PROBLEMS_BY_NAME, observed_order

from oplearn.grids import Grid, subsample
from oplearn.pdes import PDES, Helmholtz, Poisson


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


PDE_CLASSES = [Poisson, Helmholtz]


def test_registered_and_params_are_json():
    assert PDES["poisson"] is Poisson and PDES["helmholtz"] is Helmholtz
    poisson = json.loads(json.dumps(Poisson(tau=4.0, refine=2).params()))
    assert set(poisson) == {"alpha", "tau", "sigma", "modes", "refine", "solver"}
    assert poisson["tau"] == 4.0 and poisson["sigma"] == 4.0 and poisson["refine"] == 2
    helmholtz = json.loads(json.dumps(Helmholtz(k=2.5).params()))
    assert set(helmholtz) == set(poisson) | {"k"} and helmholtz["k"] == 2.5
    # the DiffusionPDE / FunDPS defaults
    assert (Poisson().alpha, Poisson().tau, Helmholtz().k) == (2.0, 3.0, 1.0)


@pytest.mark.parametrize("cls", PDE_CLASSES)
def test_sources_are_the_same_function_at_every_resolution(cls):
    pde = cls(modes=16)
    coarse = pde.grid(17)
    f_coarse = pde.sample_input(3, coarse, seeded(1))
    f_fine = pde.sample_input(3, coarse.refine(2), seeded(1))
    assert f_coarse.shape == (3, 1, 17, 17) and f_coarse.dtype == torch.float64
    assert torch.allclose(f_coarse, subsample(f_fine, 2, 2), rtol=0, atol=1e-12)
    assert f_coarse.std() > 0.01


@pytest.mark.parametrize("cls", PDE_CLASSES)
def test_residual_vanishes_at_the_solution(cls):
    pde = cls()
    grid = pde.grid(65)
    f = pde.sample_input(4, grid, seeded(2))
    u = pde.solve(f, grid)
    assert u.shape == (4, 1, 65, 65) and u.dtype == torch.float64
    assert (u[..., 0, :] == 0).all() and (u[..., -1] == 0).all() and u.abs().max() > 1e-3
    residual = pde.residual(u, f, grid)
    assert residual.shape == (4, 1, 63, 63)
    assert residual.abs().max() < 1e-9 * f.abs().max()
    # the sign convention: Lap u + k^2 u = f, so the residual of u = 0 is -f
    assert torch.allclose(pde.residual(torch.zeros_like(u), f, grid), -f[..., 1:-1, 1:-1])


def test_helmholtz_reduces_to_poisson_at_k_zero_and_differs_otherwise():
    grid = Poisson().grid(33)
    f = Poisson().sample_input(2, grid, seeded(3))
    assert torch.allclose(Helmholtz(k=0.0).solve(f, grid), Poisson().solve(f, grid), rtol=0, atol=1e-14)
    assert not torch.allclose(Helmholtz(k=3.0).solve(f, grid), Poisson().solve(f, grid), atol=1e-6)


@pytest.mark.parametrize("name, cls", [("poisson-2d", Poisson), ("helmholtz-2d", Helmholtz)])
def test_manufactured_solution_converges_at_second_order(name, cls):
    problem = PROBLEMS_BY_NAME[name]  # -Lap u + c u = g, so Lap u + k^2 u = -g with k^2 = -c
    pde = cls(k=math.sqrt(-problem.reaction)) if cls is Helmholtz else cls()
    spacings, errors = [], []
    for n in (17, 33, 65):
        grid = pde.grid(n)
        _, g, u = problem.fields(grid)
        u_h = pde.solve(-g[None, None], grid)
        spacings.append(grid.spacing[0])
        errors.append((u_h[0, 0] - u).abs().max().item())
    assert 1.8 < observed_order(spacings, errors) < 2.2, errors


def test_residual_is_differentiable():
    pde = Helmholtz(k=2.0)
    grid = pde.grid(9)
    f = pde.sample_input(1, grid, seeded(4))
    u = torch.zeros(1, 1, 9, 9, dtype=torch.float64, requires_grad=True)
    pde.residual(u, f, grid).pow(2).sum().backward()
    assert u.grad is not None and u.grad.abs().sum() > 0


def test_refined_generation_keeps_the_coarse_sources():
    a, u = Poisson(refine=2, modes=16).generate(2, 17, seeded(5))
    coarse = Poisson(modes=16)
    grid = coarse.grid(17)
    assert a.shape == u.shape == (2, 1, 17, 17)
    assert torch.allclose(a, coarse.sample_input(2, grid, seeded(5)), rtol=0, atol=1e-12)
    assert (u - coarse.solve(a, grid)).abs().max() < 0.05 * u.abs().max()


def test_resonant_wavenumber_is_refused():
    grid = Grid((9, 9))
    h = grid.spacing[0]
    lowest = 2 * (4 / h**2) * math.sin(math.pi / (2 * 8)) ** 2  # p = q = 1
    with pytest.raises(ValueError, match="resonance"):
        Helmholtz(k=math.sqrt(lowest)).solve(torch.ones(1, 1, 9, 9, dtype=torch.float64), grid)


@pytest.mark.parametrize(
    "inputs, grid, message",
    [
        (torch.ones(2, 9, 9, dtype=torch.float64), Grid((9, 9)), "inputs must have shape"),
        (torch.ones(2, 2, 9, 9, dtype=torch.float64), Grid((9, 9)), "inputs must have shape"),
        (torch.full((2, 1, 9, 9), float("inf"), dtype=torch.float64), Grid((9, 9)), "NaN or infinite"),
        (torch.ones(2, 1, 9, 9, dtype=torch.float64), Grid((9, 9), periodic=True), "bounded 2D grid"),
    ],
)
@pytest.mark.parametrize("cls", PDE_CLASSES)
def test_invalid_inputs(cls, inputs, grid, message):
    with pytest.raises(ValueError, match=message):
        cls().solve(inputs, grid)


def test_invalid_parameters():
    for cls, kwargs in (
        (Helmholtz, dict(k=-1.0)),
        (Helmholtz, dict(k=float("nan"))),
        (Poisson, dict(tau=0.0)),
        (Poisson, dict(refine=0)),
    ):
        with pytest.raises(ValueError):
            cls(**kwargs)
    with pytest.raises(ValueError, match="outputs must have shape"):
        Poisson().residual(torch.zeros(1, 9, 9), torch.zeros(1, 1, 9, 9), Grid((9, 9)))
