import pytest
import torch
from problems import ELLIPTIC_PROBLEMS, PROBLEMS_BY_NAME, observed_order

from oplearn.derivatives import divergence_form
from oplearn.grids import Grid
from oplearn.solvers.elliptic import solve_dirichlet

RESOLUTIONS = {1: (33, 65, 129, 257), 2: (17, 33, 65), 3: (9, 13, 17, 21)}


def interior(t: torch.Tensor, ndim: int) -> torch.Tensor:
    return t[(Ellipsis,) + (slice(1, -1),) * ndim]


def assert_second_order(problem, max_error):
    """``max_error(grid, a, f, u)`` decays like h^2 over the problem's resolutions."""
    spacings, errors = [], []
    for n in RESOLUTIONS[problem.ndim]:
        grid = problem.grid(n)
        spacings.append(max(grid.spacing))
        errors.append(max_error(grid, *problem.fields(grid)))
    assert errors[-1] < errors[0]
    assert 1.8 < observed_order(spacings, errors) < 2.2, errors


@pytest.mark.parametrize("problem", ELLIPTIC_PROBLEMS, ids=lambda p: p.name)
def test_solver_converges_at_second_order_in_max_norm(problem):
    def max_error(grid, a, f, u):
        u_h = solve_dirichlet(a[None], f[None], grid, reaction=problem.reaction)[0]
        return (u_h - u).abs().max().item()

    assert_second_order(problem, max_error)


@pytest.mark.parametrize("problem", ELLIPTIC_PROBLEMS, ids=lambda p: p.name)
def test_divergence_form_is_consistent_at_second_order(problem):
    def max_truncation(grid, a, f, u):
        truncation = -divergence_form(u, a, grid) + problem.reaction * interior(u, grid.ndim) - interior(f, grid.ndim)
        return truncation.abs().max().item()

    assert_second_order(problem, max_truncation)


def test_divergence_form_is_exact_for_quadratic_u_and_linear_a():
    grid = Grid((13, 9), ((0.0, 2.0), (-1.0, 0.0)))
    x, y = grid.coordinates(torch.float64)
    u, a = x**2 * y + y**2, 1 + x - 0.5 * y
    # div(a grad u) = a_x u_x + a_y u_y + a Lap u
    exact = 2 * x * y - 0.5 * (x**2 + 2 * y) + a * (2 * y + 2)
    assert torch.allclose(divergence_form(u, a, grid), interior(exact, 2), rtol=0, atol=1e-12)


def test_divergence_form_broadcasts_and_is_differentiable():
    grid = Grid((6, 5, 4))
    u = torch.randn(2, 3, *grid.shape, dtype=torch.float64, requires_grad=True)
    a = (1 + torch.rand(3, *grid.shape, dtype=torch.float64)).requires_grad_(True)
    assert divergence_form(u, a, grid).shape == (2, 3, 4, 3, 2)
    assert torch.autograd.gradcheck(lambda u, a: divergence_form(u, a, grid), (u, a))
    with pytest.raises(ValueError, match="periodic"):
        divergence_form(u, a, Grid((6, 5, 4), periodic=True))
    with pytest.raises(ValueError, match="grid shape"):
        divergence_form(u[..., :3], a, grid)


@pytest.mark.parametrize("shape", [(40,), (17, 23), (7, 6, 5)])
def test_solution_satisfies_the_discrete_equation(shape):
    grid = Grid(shape, tuple((0.0, 1.0 + d) for d in range(len(shape))))
    a = torch.exp(torch.randn(3, *shape, dtype=torch.float64))
    f = torch.randn(3, *shape, dtype=torch.float64)
    reaction = 0.7
    u = solve_dirichlet(a, f, grid, reaction=reaction)
    assert u.shape == (3, *shape) and u.dtype == torch.float64
    boundary = torch.ones(shape, dtype=torch.bool)
    boundary[(slice(1, -1),) * len(shape)] = False
    assert (u[:, boundary] == 0).all()
    ndim = len(shape)
    residual = -divergence_form(u, a, grid) + reaction * interior(u, ndim) - interior(f, ndim)
    assert residual.abs().max() < 1e-10 * f.abs().max()


def test_shared_coefficient_and_threads_agree_with_single_solves():
    grid = Grid((21, 21))
    a = 1 + torch.rand(4, *grid.shape, dtype=torch.float64)
    f = torch.randn(4, *grid.shape, dtype=torch.float64)
    single = torch.cat([solve_dirichlet(a[i : i + 1], f[i : i + 1], grid) for i in range(4)])
    assert torch.allclose(solve_dirichlet(a, f, grid, workers=2), single, rtol=0, atol=1e-14)
    shared = solve_dirichlet(a[:1], f, grid)
    each = torch.cat([solve_dirichlet(a[:1], f[i : i + 1], grid) for i in range(4)])
    assert torch.allclose(shared, each, rtol=0, atol=1e-13)


def test_helmholtz_sign_convention():
    # -Lap u - k^2 u = f for u = sin(pi x) sin(pi y): f = (2 pi^2 - k^2) u
    problem = PROBLEMS_BY_NAME["helmholtz-2d"]
    assert problem.reaction < 0
    grid = Grid((33, 33))
    x, y = grid.coordinates(torch.float64)
    u = torch.sin(torch.pi * x) * torch.sin(torch.pi * y)
    k2 = 10.0
    u_h = solve_dirichlet(
        torch.ones(1, 33, 33, dtype=torch.float64), ((2 * torch.pi**2 - k2) * u)[None], grid, reaction=-k2
    )
    assert (u_h[0] - u).abs().max() < 2e-3


@pytest.mark.parametrize(
    "a, f, grid, message",
    [
        (torch.ones(2, 8, 8), torch.ones(2, 8, 8), Grid((8, 8), periodic=True), "periodic"),
        (torch.ones(2, 8, 7), torch.ones(2, 8, 8), Grid((8, 8)), "a must have shape"),
        (torch.ones(8, 8), torch.ones(8, 8), Grid((8, 8)), "a must have shape"),
        (torch.ones(3, 8, 8), torch.ones(2, 8, 8), Grid((8, 8)), "batch size"),
        (-torch.ones(2, 8, 8), torch.ones(2, 8, 8), Grid((8, 8)), "positive"),
        (torch.ones(2, 8, 8), torch.full((2, 8, 8), float("nan")), Grid((8, 8)), "f contains NaN"),
        (torch.ones(1, 2, 8), torch.ones(1, 2, 8), Grid((2, 8)), "no interior"),
    ],
)
def test_invalid_inputs_raise_one_clear_error(a, f, grid, message):
    with pytest.raises(ValueError, match=message):
        solve_dirichlet(a, f, grid)
