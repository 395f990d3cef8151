"""Finite elements on irregular domains: meshes of SDF domains, observed second order on
manufactured solutions on curved domains, Newton for the nonlinear Poisson equation,
residual(solve) ~ 0 for every family, agreement with walk-on-spheres."""

import math

import numpy as np
import pytest
import torch
from helpers import one_thread  # noqa: F401

from oplearn.geometry.families import DomainFamily
from oplearn.geometry.mesh import mesh_domain
from oplearn.pdes import DarcyFEM, NonlinearPoissonFEM, PoissonFEM
from oplearn.solvers.fem import QUADRATIC, P1Problem
from oplearn.wos import Ball, Box, StarShaped, walk_on_spheres
from oplearn.wos.walk import DirichletProblem

pytestmark = pytest.mark.usefixtures("one_thread")

ANNULUS = Ball((0.5, 0.5), 0.4) - Ball((0.42, 0.55), 0.12)  # curved outer boundary, off-centre hole
STAR = StarShaped((0.5, 0.5), 0.35, cos=(0.1, 0.0, 0.05), sin=(0.0, 0.08, 0.0), m=64)


def exact(x):
    return torch.sin(math.pi * x[:, 0]) * torch.cos(2 * x[:, 1]) + x[:, 0] * x[:, 1]


def coefficient(x):
    return 1 + 0.5 * torch.sin(3 * x[:, 0]) * x[:, 1]


def manufactured_source(conductivity, a):
    """f = -div(a c(u) grad u) of :func:`exact`, by autograd (no hand-derived formula)."""

    def f(x):
        x = x.clone().requires_grad_(True)
        u = exact(x)
        (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        k = (a(x) if a else torch.ones_like(u)) * (conductivity.value(u) if conductivity else 1)
        flux = k[:, None] * grad
        div = sum(torch.autograd.grad(flux[:, d].sum(), x, retain_graph=True)[0][:, d] for d in range(2))
        return (-div).detach()

    return f


def l2_error(problem: P1Problem, u: torch.Tensor) -> float:
    """The L2 norm of (P1 interpolant of u) - exact, by the solve's own quadrature."""
    basis = problem.basis
    points = torch.from_numpy(np.asarray(basis.global_coordinates()).reshape(2, -1).T.copy())
    values = torch.from_numpy(np.asarray(basis.interpolate(u.numpy())).reshape(-1))
    return float(((values - exact(points)) ** 2 * torch.from_numpy(basis.dx.reshape(-1))).sum().sqrt())


@pytest.mark.parametrize(
    "domain, conductivity, a",
    [(ANNULUS, None, None), (ANNULUS, None, coefficient), (STAR, QUADRATIC, None), (ANNULUS, QUADRATIC, coefficient)],
    ids=["poisson-annulus", "variable-annulus", "nonlinear-star", "nonlinear-variable-annulus"],
)
def test_p1_second_order_on_curved_domains(domain, conductivity, a):
    """The L2 error falls like h^2 with h = N^(-1/2) (N nodes: the resolution of an
    unstructured mesh whose boundary may be finer than its interior); least-squares slope."""
    sizes, errors = [], []
    for h in (0.06, 0.03, 0.015):
        mesh = mesh_domain(domain, h)
        problem = P1Problem(mesh, manufactured_source(conductivity, a), a, exact, conductivity)
        u = problem.solve()
        assert problem.residual(u).abs().max() < 1e-10
        sizes.append(len(mesh) ** -0.5)
        errors.append(l2_error(problem, u))
    slope = float(
        torch.linalg.lstsq(
            torch.tensor([[math.log(s), 1.0] for s in sizes]), torch.tensor(errors).log()[:, None]
        ).solution[0]
    )
    assert 1.8 < slope < 2.3, (errors, sizes)


def test_newton_converges_quadratically_and_refuses_to_pretend():
    mesh = mesh_domain(ANNULUS, 0.05)
    problem = P1Problem(mesh, manufactured_source(QUADRATIC, None), None, exact, QUADRATIC)
    u = problem.solve(tol=1e-12)
    assert problem.residual(u).abs().max() < 1e-11
    with pytest.raises(Exception, match="did not converge"):
        problem.solve(tol=1e-14, max_iter=1)


def test_mesh_of_a_domain_with_holes():
    domain = Box((0.0, 0.0), (1.0, 1.0)) - Ball((0.3, 0.3), 0.1) - Ball((0.7, 0.6), 0.15)
    mesh = mesh_domain(domain, 0.03)
    area = 1 - math.pi * (0.1**2 + 0.15**2)
    assert abs(float(mesh.node_weights.sum()) - area) < 2e-3
    assert float(domain.sdf(mesh.nodes[mesh.boundary]).abs().max()) < 1e-12  # boundary nodes on the curves
    assert float(domain.sdf(mesh.nodes[~mesh.boundary]).max()) < 0
    assert mesh.size < 0.05 and float(mesh.areas.min()) > 0
    # piecewise-linear interpolation reproduces linear functions; outside points give NaN
    points = domain.sample(200, torch.Generator().manual_seed(0))
    linear = lambda x: 2 * x[:, 0] - 3 * x[:, 1] + 0.5
    assert torch.allclose(mesh.interpolate(linear(mesh.nodes), points), linear(points), atol=1e-12)
    assert mesh.interpolate(linear(mesh.nodes), torch.tensor([[0.3, 0.3]])).isnan().all()
    # the mesh's signed distance approximates the domain's (exact up to the polygonal circles)
    probe = torch.rand(300, 2, dtype=torch.float64)
    assert (mesh.signed_distance(probe) - domain.sdf(probe)).abs().max() < 2e-3


def test_crossing_boundaries_are_refused():
    with pytest.raises(ValueError, match="cross"):
        (Box((0.0, 0.0), (1.0, 1.0)) - Ball((1.0, 0.5), 0.3)).curves(0.1)


@pytest.mark.parametrize("pde", [PoissonFEM(), NonlinearPoissonFEM(), DarcyFEM()], ids=lambda p: p.name)
def test_families_solve_with_zero_residual_reproducibly(pde):
    problem = pde.sample_problem(torch.Generator().manual_seed(3))
    mesh = mesh_domain(problem.domain, 1 / 20)
    u = pde.solve(problem, mesh)
    assert u.shape == (len(mesh), 1) and u[mesh.boundary].abs().max() == 0
    assert pde.residual(u, problem, mesh).abs().max() < 1e-9 * (1 + u.abs().max())
    again = pde.generate(2, 12, torch.Generator().manual_seed(3))
    once = pde.generate(2, 12, torch.Generator().manual_seed(3))
    for a, b in zip(again, once):
        assert (
            torch.equal(a.nodes, b.nodes)
            and torch.equal(a.outputs, b.outputs)
            and torch.equal(a.triangles, b.triangles)
        )


def test_nonlinearity_matters_at_the_default_scale():
    """The default source makes |u| of order one, so 1 + u^2 changes the solution visibly."""
    problem = PoissonFEM().sample_problem(torch.Generator().manual_seed(1))
    mesh = mesh_domain(problem.domain, 1 / 20)
    linear, nonlinear = PoissonFEM().solve(problem, mesh), NonlinearPoissonFEM().solve(problem, mesh)
    assert 0.1 < float((linear - nonlinear).norm() / linear.norm()) < 0.5


def test_random_domains_fit_the_square_and_have_holes():
    family = DomainFamily(holes=2, polygon_fraction=0.5)
    g = torch.Generator().manual_seed(0)
    holes = []
    for _ in range(12):
        domain = family.sample(g)
        curves = domain.curves(0.05)
        holes.append(len(curves) - 1)
        points = torch.cat(curves)
        assert points.min() > 0 and points.max() < 1
    assert min(holes) == 0 and max(holes) == 2


def test_fem_agrees_with_walk_on_spheres():
    """-Lap u = f on a random domain with holes: the FEM solution (fine mesh) lies within the
    walks' error bars (walk-on-spheres solves Lap u = -f)."""
    pde = PoissonFEM(family={"holes": 2, "polygon_fraction": 0.0})
    g = torch.Generator().manual_seed(5)
    problem = pde.sample_problem(g)
    while len(problem.domain.curves(0.05)) < 2:  # make sure there is a hole
        problem = pde.sample_problem(g)
    mesh = mesh_domain(problem.domain, 1 / 60)
    u = pde.solve(problem, mesh)[:, 0]
    points = problem.domain.sample(6, torch.Generator().manual_seed(1))
    walks = DirichletProblem(
        problem.domain, lambda x: torch.zeros(x.shape[:-1], dtype=x.dtype), lambda x: -problem.source(x)
    )
    estimate = walk_on_spheres(walks, points, 2000, epsilon=1e-4, generator=torch.Generator().manual_seed(2))
    fem = mesh.interpolate(u, points)
    z = (fem - estimate.mean) / (estimate.stderr + 2e-3 * u.abs().max())
    assert z.abs().max() < 4, (fem, estimate.mean, estimate.stderr)
    assert float(u.abs().max()) > 10 * float(estimate.stderr.max())  # the comparison is not vacuous
