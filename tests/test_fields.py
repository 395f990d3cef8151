import itertools
import math

import numpy as np
import pytest
import torch

from oplearn.fields import GaussianRandomField
from oplearn.grids import Grid


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_same_function_at_every_resolution(boundary, ndim):
    grf = GaussianRandomField(alpha=2.0, tau=3.0, boundary=boundary, modes=12)
    periodic = boundary == "periodic"
    coarse = Grid((16 if periodic else 17,) * ndim, domain=((-1.0, 1.5),) * ndim, periodic=periodic)
    fine = coarse.refine(2)
    u_coarse = grf.sample(2, coarse, seeded(3))
    u_fine = grf.sample(2, fine, seeded(3))
    assert u_coarse.shape == (2, *coarse.shape) and u_fine.shape == (2, *fine.shape)
    index = (Ellipsis,) + (slice(None, None, 2),) * ndim
    assert torch.allclose(u_coarse, u_fine[index], rtol=0, atol=1e-12)


@pytest.mark.parametrize("boundary", ["neumann", "periodic"])
def test_darcy_resolutions_agree_at_default_modes(boundary):
    grf = GaussianRandomField(alpha=2.0, tau=3.0, boundary=boundary)
    shape = 32 if boundary == "periodic" else 33
    coarse = Grid((shape, shape), periodic=boundary == "periodic")
    u33 = grf.sample(2, coarse, seeded(1))
    u65 = grf.sample(2, coarse.refine(2), seeded(1))
    assert (u33 - u65[:, ::2, ::2]).abs().max() < 1e-12


def neumann_covariance(grf, points_x, points_y, domain):
    """sum_k s_k^2 prod_i cos(pi k_i (x_i - lo_i)/L_i) cos(pi k_i (y_i - lo_i)/L_i), by loops."""
    total = 0.0
    for k in itertools.product(range(grf.modes + 1), repeat=len(domain)):
        if not any(k):
            continue
        lam = sum((math.pi * ki / (hi - lo)) ** 2 for ki, (lo, hi) in zip(k, domain))
        s2 = grf.sigma**2 * (lam + grf.tau**2) ** (-grf.alpha)
        phi_x = math.prod(
            math.cos(math.pi * ki * (xi - lo) / (hi - lo)) for ki, xi, (lo, hi) in zip(k, points_x, domain)
        )
        phi_y = math.prod(
            math.cos(math.pi * ki * (yi - lo) / (hi - lo)) for ki, yi, (lo, hi) in zip(k, points_y, domain)
        )
        total += s2 * phi_x * phi_y
    return total


def periodic_covariance(grf, shift, lengths):
    """sum_{|k_i| <= M, k != 0} s_k^2 cos(2 pi k . shift / L), by loops."""
    total = 0.0
    for k in itertools.product(range(-grf.modes, grf.modes + 1), repeat=len(lengths)):
        if not any(k):
            continue
        lam = sum((2 * math.pi * ki / length) ** 2 for ki, length in zip(k, lengths))
        s2 = grf.sigma**2 * (lam + grf.tau**2) ** (-grf.alpha)
        total += s2 * math.cos(2 * math.pi * sum(ki * d / length for ki, d, length in zip(k, shift, lengths)))
    return total


def assert_monte_carlo(samples: np.ndarray, i, j, exact: float, n_sigma: float = 4.5):
    """The empirical covariance of nodes i and j is within n_sigma standard errors of exact."""
    x, y = samples[(slice(None), *i)], samples[(slice(None), *j)]
    empirical = np.mean(x * y)  # the field has mean zero
    standard_error = np.std(x * y) / math.sqrt(len(x))
    assert abs(empirical - exact) < n_sigma * standard_error, (empirical, exact, standard_error)
    assert standard_error < 0.05 * abs(exact)  # the check is sharp enough to fail


def test_neumann_covariance_monte_carlo():
    domain = ((-1.0, 1.0), (0.0, 0.5))
    grid = Grid((9, 5), domain=domain)
    grf = GaussianRandomField(alpha=2.0, tau=2.0, sigma=1.5, modes=8)
    samples = grf.sample(20000, grid, seeded(11)).numpy()
    coords = grid.coordinates(torch.float64).numpy()
    for i, j in [((0, 0), (0, 0)), ((4, 2), (4, 2)), ((3, 1), (5, 2)), ((0, 4), (8, 0))]:
        exact = neumann_covariance(grf, coords[(slice(None), *i)], coords[(slice(None), *j)], domain)
        assert_monte_carlo(samples, i, j, exact)


def test_periodic_covariance_monte_carlo():
    lengths = (2.0, 1.0)
    grid = Grid((8, 4), domain=((0.0, 2.0), (-0.5, 0.5)), periodic=True)
    grf = GaussianRandomField(alpha=2.5, tau=3.0, sigma=4.0, boundary="periodic", modes=6)
    samples = grf.sample(20000, grid, seeded(12)).numpy()
    h = grid.spacing
    variance = periodic_covariance(grf, (0.0, 0.0), lengths)
    for i in [(0, 0), (5, 3)]:  # stationary: the same variance everywhere
        assert_monte_carlo(samples, i, i, variance)
    shift = (1, 1)
    exact = periodic_covariance(grf, (shift[0] * h[0], shift[1] * h[1]), lengths)
    assert_monte_carlo(samples, (1, 1), (1 + shift[0], 1 + shift[1]), exact)


def test_scales_match_the_formula():
    grf = GaussianRandomField(alpha=2.0, tau=3.0, modes=4)
    s = grf.scales((1.0, 1.0))
    assert grf.sigma == pytest.approx(3.0)
    assert s[0, 0] == 0.0
    assert s[1, 2].item() == pytest.approx(3.0 * (math.pi**2 * 5 + 9.0) ** -1.0, rel=1e-14)
    periodic = GaussianRandomField(alpha=2.0, tau=3.0, boundary="periodic", modes=4).scales((1.0,))
    assert periodic.shape == (9,) and periodic[4] == 0.0 and torch.equal(periodic, periodic.flip(0))


def test_seed_and_batch_reproducibility():
    grf = GaussianRandomField(alpha=2.0, tau=3.0, modes=10)
    grid = Grid((21, 21))
    first = grf.sample(5, grid, seeded(7))
    assert torch.equal(first, grf.sample(5, grid, seeded(7)))
    # the same draws; only the BLAS blocking of the synthesis may differ with the batch size
    assert torch.allclose(first[:2], grf.sample(2, grid, seeded(7)), rtol=0, atol=1e-14)
    generator = seeded(7)
    in_parts = torch.cat([grf.sample(2, grid, generator), grf.sample(3, grid, generator)])
    assert torch.allclose(first, in_parts, rtol=0, atol=1e-14)
    assert not torch.allclose(first, grf.sample(5, grid, seeded(8)))
    assert not torch.allclose(first[0], first[1])


def test_dtype_device_and_empty_batch():
    grf = GaussianRandomField(alpha=2.0, tau=3.0, boundary="periodic", modes=6)
    grid = Grid((16, 16), periodic=True)
    u64 = grf.sample(2, grid, seeded(0))
    u32 = grf.sample(2, grid, seeded(0), dtype=torch.float32, device=torch.device("cpu"))
    assert u64.dtype == torch.float64 and u32.dtype == torch.float32 and u32.device.type == "cpu"
    assert torch.allclose(u32.double(), u64, atol=1e-6)
    assert grf.sample(0, grid).shape == (0, 16, 16)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(alpha=0.0, tau=3.0),
        dict(alpha=2.0, tau=-1.0),
        dict(alpha=2.0, tau=3.0, sigma=0.0),
        dict(alpha=2.0, tau=3.0, boundary="dirichlet"),
        dict(alpha=2.0, tau=3.0, modes=0),
    ],
)
def test_invalid_parameters(kwargs):
    with pytest.raises(ValueError):
        GaussianRandomField(**kwargs)
