"""Walk-on-spheres: unbiasedness on analytic solutions, 1/sqrt(walks) error, O(epsilon) bias, seeds."""

import math

import numpy as np
import pytest
import torch
from helpers import one_thread  # noqa: F401 (the fixture must be importable here)

from oplearn.wos import Ball, Box, DirichletProblem, StarShaped, walk_on_spheres
from oplearn.wos.domains import polygon_sdf
from oplearn.wos.walk import green_radii

pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def re_z3(x):
    """Re((x + iy)^3), harmonic in 2D."""
    return x[..., 0] ** 3 - 3 * x[..., 0] * x[..., 1] ** 2


def harmonic_3d(x):
    return x[..., 0] ** 2 + x[..., 1] ** 2 - 2 * x[..., 2] ** 2 + x[..., 0] * x[..., 1] * x[..., 2]


DOMAINS_2D = {
    "disk": Ball((0.2, -0.1), 0.9),
    "box": Box((-1.0, -0.5), (1.0, 1.5)),
    "star": StarShaped((0.0, 0.0), 1.0, cos=(0.15, 0.1, 0.05), sin=(0.05, 0.0, 0.08)),
    "union": Box((-1.0, -1.0), (1.0, 1.0)) | Ball((1.0, 0.0), 0.7),
    "difference": Box((-1.0, -1.0), (1.0, 1.0)) - Ball((0.2, 0.1), 0.4),
}


def z_scores(problem, u, points, walks, seed=0):
    """(estimate - exact) / standard error at each point."""
    est = walk_on_spheres(problem, points, walks, generator=gen(seed))
    assert est.truncated == 0
    return (est.mean - u(points)) / est.stderr


@pytest.mark.parametrize("name", DOMAINS_2D)
def test_harmonic_2d_unbiased(name):
    domain = DOMAINS_2D[name]
    points = domain.sample(12, gen(1))
    z = z_scores(DirichletProblem(domain, re_z3), re_z3, points, 1000)
    assert z.abs().max() < 4.5, z


def test_harmonic_3d_ball_unbiased():
    domain = Ball((0.0, 0.0, 0.0), 1.0)
    z = z_scores(DirichletProblem(domain, harmonic_3d), harmonic_3d, domain.sample(12, gen(2)), 1000)
    assert z.abs().max() < 4.5, z


def test_poisson_2d_and_3d_unbiased():
    """Non-constant sources: u = x^4 + y^2 (f = 12 x^2 + 2) and u = x^2 y + z^3 (f = 2 y + 6 z)."""
    u2 = lambda x: x[..., 0] ** 4 + x[..., 1] ** 2
    f2 = lambda x: 12 * x[..., 0] ** 2 + 2
    star = DOMAINS_2D["star"]
    z = z_scores(DirichletProblem(star, u2, f2), u2, star.sample(12, gen(3)), 1000)
    assert z.abs().max() < 4.5, z
    u3 = lambda x: x[..., 0] ** 2 * x[..., 1] + x[..., 2] ** 3
    f3 = lambda x: 2 * x[..., 1] + 6 * x[..., 2]
    box = Box((0.0, -1.0, 0.0), (1.0, 0.5, 1.0))
    z = z_scores(DirichletProblem(box, u3, f3), u3, box.sample(12, gen(4)), 1000)
    assert z.abs().max() < 4.5, z


@pytest.mark.parametrize("d", [2, 3, 5])
def test_constant_source_in_ball_is_exact_per_step(d):
    r"""f = 1, g = 0 in the unit ball: u = (|x|^2 - 1) / (2d); the Green-sampled source term
    has no variance, so the estimate is sharp and within its (small) error bars."""
    ball = Ball((0.0,) * d, 1.0)
    u = lambda x: ((x**2).sum(-1) - 1) / (2 * d)
    problem = DirichletProblem(
        ball, lambda x: torch.zeros(x.shape[:-1], dtype=x.dtype), lambda x: torch.ones(x.shape[:-1], dtype=x.dtype)
    )
    points = ball.sample(6, gen(5))
    est = walk_on_spheres(problem, points, 500, generator=gen(6), epsilon=1e-4)
    assert (est.mean - u(points)).abs().max() < 4.5 * est.stderr.max() + 1e-4
    assert est.stderr.max() < 0.01


@pytest.mark.parametrize("d", [2, 3, 10])
def test_green_radii_mean(d):
    r"""E[s] under p(s) ~ G_1(s) s^(d-1): 4/9 in 2D, (1/3 - 1/(d+1)) 2d / (d - 2) for d >= 3."""
    s = green_radii(200_000, d, gen(7), torch.float64, "cpu")
    expected = 4 / 9 if d == 2 else (1 / 3 - 1 / (d + 1)) * 2 * d / (d - 2)
    assert abs(s.mean().item() - expected) < 4 * s.std().item() / math.sqrt(len(s))


def test_error_decays_like_inverse_sqrt_walks():
    domain = DOMAINS_2D["disk"]
    points = domain.sample(64, gen(8))
    problem = DirichletProblem(domain, re_z3)
    walks = [4, 16, 64, 256]
    rms = [
        (walk_on_spheres(problem, points, w, generator=gen(w)).mean - re_z3(points)).pow(2).mean().sqrt().item()
        for w in walks
    ]
    slope = np.polyfit(np.log(walks), np.log(rms), 1)[0]
    assert -0.62 < slope < -0.38, (slope, rms)


def test_bias_is_order_epsilon():
    """u = x_1 in the unit disk with g read off the circle (g(x) = x_1 / |x|): stopping at
    distance eps scores g at a radius in (1 - eps, 1), a bias proportional to eps. The paths
    do not depend on g, so the same seed with the exact g = x_1 (unbiased) isolates the bias."""
    disk = Ball((0.0, 0.0), 1.0)
    projected = DirichletProblem(disk, lambda x: x[..., 0] / x.norm(dim=-1))
    exact = DirichletProblem(disk, lambda x: x[..., 0])
    points = disk.sample(100, gen(9))
    points = points[points[:, 0] > 0.2][:16]

    def bias(eps):
        a = walk_on_spheres(projected, points, 500, epsilon=eps, generator=gen(10)).mean
        b = walk_on_spheres(exact, points, 500, epsilon=eps, generator=gen(10)).mean
        return (a - b).mean().item()

    eps = [1e-3, 1e-2, 1e-1]
    biases = [bias(e) for e in eps]
    slope = np.polyfit(np.log(eps), np.log(biases), 1)[0]
    assert 0.85 < slope < 1.15, (slope, biases)


def test_seed_reproducibility():
    problem = DirichletProblem(DOMAINS_2D["union"], re_z3)
    points = DOMAINS_2D["union"].sample(5, gen(11))
    a = walk_on_spheres(problem, points, 50, generator=gen(12))
    b = walk_on_spheres(problem, points, 50, generator=gen(12))
    c = walk_on_spheres(problem, points, 50, generator=gen(13))
    assert torch.equal(a.mean, b.mean) and torch.equal(a.stderr, b.stderr)
    assert not torch.equal(a.mean, c.mean)


def test_points_outside_score_boundary_and_bad_input():
    problem = DirichletProblem(Ball((0.0, 0.0), 1.0), re_z3)
    outside = torch.tensor([[2.0, 0.5]], dtype=torch.float64)
    est = walk_on_spheres(problem, outside, 4, generator=gen(0))
    assert torch.allclose(est.mean, re_z3(outside)) and est.mean_steps == 0
    with pytest.raises(ValueError, match="points must have shape"):
        walk_on_spheres(problem, torch.zeros(3, 3, dtype=torch.float64), 4)
    with pytest.raises(ValueError, match="walks"):
        walk_on_spheres(problem, outside, 0)


def test_max_steps_truncates():
    problem = DirichletProblem(Box((0.0, 0.0), (1.0, 1.0)), re_z3)
    est = walk_on_spheres(
        problem, torch.tensor([[0.5, 0.5]], dtype=torch.float64), 100, epsilon=1e-6, max_steps=1, generator=gen(0)
    )
    assert est.mean_steps == 1 and est.truncated > 95


def test_signed_distances():
    """Exact distances of the box, ball and polygon; set operations give lower bounds."""
    x = torch.tensor([[0.5, 0.5], [2.0, 0.5], [2.0, 2.0], [0.1, 0.5]], dtype=torch.float64)
    box = Box((0.0, 0.0), (1.0, 1.0))
    assert torch.allclose(box.sdf(x), torch.tensor([-0.5, 1.0, math.sqrt(2), -0.1], dtype=torch.float64))
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
    assert torch.allclose(polygon_sdf(x, square), box.sdf(x))
    ring = Ball((0.0, 0.0), 1.0) - Ball((0.0, 0.0), 0.5)
    y = torch.tensor([[0.7, 0.0], [0.2, 0.0], [0.0, 1.5]], dtype=torch.float64)
    assert torch.allclose(ring.sdf(y), torch.tensor([-0.2, 0.3, 0.5], dtype=torch.float64))
    # every walk ball lies inside: points on a sphere of radius |sdf| are never outside the domain
    domain = DOMAINS_2D["union"] - Ball((0.0, 0.0), 0.3)
    p = domain.sample(500, gen(14))
    theta = torch.rand(500, generator=gen(15), dtype=torch.float64) * 2 * math.pi
    q = p + (-domain.sdf(p))[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], 1) * 0.999
    assert (domain.sdf(q) <= 1e-12).all()
