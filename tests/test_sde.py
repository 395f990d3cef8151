"""The SDE core: time grids, noise structures, integrators (weak order) and path likelihoods."""

import math

import numpy as np
import pytest
import scipy.linalg
import torch
from problems import observed_order
from torch.distributions import MultivariateNormal

from oplearn.errors import OplearnError
from oplearn.sde import (
    ControlledSDE,
    CosineGrid,
    DiagonalNoise,
    EulerMaruyama,
    ExponentialEuler,
    GeometricGrid,
    ItoSDE,
    MatrixNoise,
    OrnsteinUhlenbeck,
    ScalarNoise,
    Splitting,
    UnderdampedSDE,
    UniformGrid,
    backward_log_density,
    forward_log_density,
    girsanov_log_ratio,
    noise_log_density,
    solve,
    solve_backward,
)
from oplearn.seeding import generator

D64 = torch.float64


# ----------------------------------------------------------------------------- time grids


@pytest.mark.parametrize("grid", [UniformGrid(0.5, 2.0), GeometricGrid(0.5, 2.0, ratio=0.05), CosineGrid(0.5, 2.0)])
def test_time_grids_span_the_horizon_and_increase(grid):
    t = grid.times(20, dtype=D64)
    assert t.shape == (21,)
    assert float(t[0]) == 0.5 and float(t[-1]) == 2.0
    assert bool(torch.all(t[1:] > t[:-1]))


def test_time_grid_profiles():
    h = torch.diff(GeometricGrid(0, 1, ratio=0.1).times(10, dtype=D64))
    assert torch.allclose(h[-1] / h[0], torch.tensor(0.1, dtype=D64))
    assert torch.allclose(h[1:] / h[:-1], h[1] / h[0])  # constant ratio
    h = torch.diff(CosineGrid(0, 1, minimum=0.01).times(50, dtype=D64))
    assert bool(torch.all(h[1:] <= h[:-1])) and float(h[-1] / h[0]) < 0.02  # large steps first, fine at the end
    h = torch.diff(UniformGrid(0, 3).times(6, dtype=D64))
    assert torch.allclose(h, torch.full((6,), 0.5, dtype=D64))


def test_batched_time_grid_gives_one_grid_per_sample():
    t1 = torch.tensor([0.5, 1.0, 2.0])
    t = GeometricGrid(0.0, t1, ratio=0.5).times(8, dtype=D64)
    assert t.shape == (9, 3)
    assert torch.allclose(t[-1], t1.to(D64)) and torch.allclose(t[:, 2] / 2, t[:, 1])


def test_time_grid_rejects_bad_input():
    with pytest.raises(OplearnError, match="end time"):
        UniformGrid(1.0, 1.0)
    with pytest.raises(OplearnError, match="steps"):
        UniformGrid().times(0)
    with pytest.raises(OplearnError, match="ratio"):
        GeometricGrid(ratio=0.0)


# ----------------------------------------------------------------------------- noise structures


def test_noise_log_normal_matches_multivariate_normal():
    g = torch.Generator().manual_seed(0)
    batch, d, v = 5, 3, 0.3
    y = torch.randn(batch, d, generator=g, dtype=D64)
    cases = [
        (
            ScalarNoise(),
            torch.rand(batch, generator=g, dtype=D64) + 0.5,
            lambda s: torch.diag_embed(s[:, None].expand(batch, d) ** 2),
        ),
        (DiagonalNoise(), torch.rand(batch, d, generator=g, dtype=D64) + 0.5, lambda s: torch.diag_embed(s**2)),
        (
            MatrixNoise(),
            torch.randn(batch, d, d, generator=g, dtype=D64) + 2 * torch.eye(d, dtype=D64),
            lambda s: s @ s.transpose(1, 2),
        ),
        (MatrixNoise(brownian=5), torch.randn(batch, d, 5, generator=g, dtype=D64), lambda s: s @ s.transpose(1, 2)),
    ]
    for noise, sigma, cov in cases:
        expected = MultivariateNormal(torch.zeros(d, dtype=D64), covariance_matrix=v * cov(sigma)).log_prob(y)
        assert torch.allclose(noise.log_normal(y, sigma, v), expected), type(noise).__name__
    # a matrix shared by the batch broadcasts
    sigma = torch.tensor([[1.0, 0.0], [0.5, 2.0]], dtype=D64)
    y2 = y[:, :2]
    expected = MultivariateNormal(torch.zeros(2, dtype=D64), covariance_matrix=v * sigma @ sigma.T).log_prob(y2)
    assert torch.allclose(MatrixNoise().log_normal(y2, sigma, v), expected)


# ----------------------------------------------------------------------------- weak order


def _scheme_moments(solver, sde, state, times):
    """Exact mean and covariance of the end state of a scheme that is affine in its normals
    (any of our solvers on a linear SDE): mean from zero noise, covariance J J^T with J the
    Jacobian of the end state with respect to all the normals."""
    state = (state,) if isinstance(state, torch.Tensor) else state
    shape = (len(times) - 1, *solver.noise_shape(sde, state))

    def end(noise):
        path = solve(sde, state, times, solver, noise=noise.reshape(shape), keep_path=False)
        return torch.cat([s[-1, 0] for s in path.states])

    zero = torch.zeros(math.prod(shape), dtype=D64)
    jac = torch.autograd.functional.jacobian(end, zero)
    return end(zero), jac @ jac.T


def _linear_sde_law(a, b, z0, t):
    """Mean and covariance of dZ = A Z dt + B dW at time t from z0 (Van Loan's block exponential)."""
    n = a.shape[0]
    block = np.zeros((2 * n, 2 * n))
    block[:n, :n], block[:n, n:], block[n:, n:] = -a, b @ b.T, a.T
    e = scipy.linalg.expm(block * t)
    phi = e[n:, n:].T
    cov = phi @ e[:n, n:]
    return torch.tensor(phi @ z0), torch.tensor(cov)


def _moment_error(mean, cov, exact_mean, exact_cov):
    return float((mean - exact_mean).abs().sum() + (cov - exact_cov).abs().sum())


OU = OrnsteinUhlenbeck(rate=1.5, mean=0.5, scale=0.8)
OU_VP = OrnsteinUhlenbeck(rate=0.2, rate_end=4.0, scale=1.0, horizon=1.0)


@pytest.mark.parametrize("sde", [OU, OU_VP], ids=["ou", "ou-linear-rate"])
@pytest.mark.parametrize(
    "grid",
    [UniformGrid(0, 1), GeometricGrid(0, 1, ratio=0.2), CosineGrid(0, 1, minimum=0.1)],
    ids=["uniform", "geometric", "cosine"],
)
def test_euler_maruyama_weak_order(sde, grid):
    """Slope of the error of the exact mean and variance of the scheme against the step."""
    solver, x0 = EulerMaruyama(), torch.tensor([[2.0]], dtype=D64)
    mean, std = sde.transition(torch.tensor(0.0), torch.tensor(1.0), x0)
    errors, steps = [], [8, 16, 32, 64]
    for n in steps:
        m, c = _scheme_moments(solver, sde, x0, grid.times(n, dtype=D64))
        errors.append(_moment_error(m, c, mean[0], std[0] ** 2))
    assert abs(observed_order([1 / n for n in steps], errors) - solver.order) < 0.15, errors


def test_exponential_euler_weak_order_and_exactness():
    """Controlled OU dX = -beta (X - mu) dt + sigma u dt + sigma dW with u = c x: a linear SDE
    (dX = (-(beta - sigma c) X + beta mu) dt + sigma dW). Exact without control for a constant rate."""
    solver, x0 = ExponentialEuler(), torch.tensor([[2.0]], dtype=D64)
    ou = OrnsteinUhlenbeck(rate=1.5, mean=0.5, scale=0.8)
    mean, std = ou.transition(torch.tensor(0.0), torch.tensor(1.0), x0)
    m, c = _scheme_moments(solver, ou, x0, GeometricGrid(0, 1, ratio=0.3).times(3, dtype=D64))
    assert _moment_error(m, c, mean[0], std[0] ** 2) < 1e-12
    c_gain = 0.4
    controlled = ControlledSDE(ou, lambda t, x: c_gain * x)
    sigma = 0.8 * math.sqrt(3.0)
    a = np.array([[-(1.5 - sigma * c_gain)]])
    # drift -(beta - sigma c) x + beta mu: shift to the fixed point to use the linear law
    fixed = 1.5 * 0.5 / (1.5 - sigma * c_gain)
    exact_mean, exact_cov = _linear_sde_law(a, np.array([[sigma]]), np.array([2.0 - fixed]), 1.0)
    errors, steps = [], [8, 16, 32, 64]
    for n in steps:
        m, c = _scheme_moments(solver, controlled, x0, UniformGrid(0, 1).times(n, dtype=D64))
        errors.append(_moment_error(m, c, exact_mean + fixed, exact_cov))
    assert abs(observed_order([1 / n for n in steps], errors) - solver.order) < 0.15, errors


def _harmonic(k=2.0, friction=0.7, mass=1.5):
    sde = UnderdampedSDE(lambda t, x: -k * x, friction=friction, mass=mass)
    a = np.array([[0.0, 1 / mass], [-k, -friction]])
    b = np.array([[0.0], [math.sqrt(2 * friction * mass)]])
    return sde, a, b


@pytest.mark.parametrize("scheme,order", [("OBAB", 1), ("BAOAB", 2), ("OBABO", 2), ("ABOBA", 2)])
def test_splitting_weak_order(scheme, order):
    """Underdamped harmonic oscillator from (x, p) = (1, 0.5): exact Gaussian law at T = 2."""
    sde, a, b = _harmonic()
    solver = Splitting(scheme)
    assert solver.order == order
    state = (torch.tensor([[1.0]], dtype=D64), torch.tensor([[0.5]], dtype=D64))
    exact_mean, exact_cov = _linear_sde_law(a, b, np.array([1.0, 0.5]), 2.0)
    errors, steps = [], [8, 16, 32, 64]
    for n in steps:
        m, c = _scheme_moments(solver, sde, state, UniformGrid(0, 2).times(n, dtype=D64))
        errors.append(_moment_error(m, c, exact_mean, exact_cov))
    assert abs(observed_order([1 / n for n in steps], errors) - order) < 0.2, errors


def test_splitting_reuses_its_last_force_evaluation():
    calls = []

    def force(t, x):
        calls.append(1)
        return -x

    sde = UnderdampedSDE(force)
    state = (torch.ones(4, 2), torch.zeros(4, 2))
    for scheme, per_step in [("BAOAB", 1), ("OBAB", 1), ("OBABO", 1), ("ABOBA", 2)]:
        calls.clear()
        solve(sde, state, UniformGrid().times(10), Splitting(scheme), generator=generator(0))
        assert len(calls) == 10 * per_step + (1 if per_step == 1 else 0), scheme
    with pytest.raises(OplearnError, match="letters"):
        Splitting("BAB")


def test_underdamped_langevin_keeps_its_invariant_law():
    """Started in pi(x) N(p; 0, M) for a Gaussian pi, BAOAB keeps the position law up to O(h^2)."""
    sde = UnderdampedSDE(lambda t, x: -x / 0.25, friction=1.0, mass=2.0)  # pi = N(0, 0.25)
    g = generator(1)
    n = 20000
    state = (
        0.5 * torch.randn(n, 1, generator=g, dtype=D64),
        math.sqrt(2.0) * torch.randn(n, 1, generator=g, dtype=D64),
    )
    path = solve(sde, state, UniformGrid(0, 3).times(60), Splitting("BAOAB"), generator=g, keep_path=False)
    var_x, var_p = float(path.final.var()), float(path.states[1][-1].var())
    se = math.sqrt(2 / n)
    assert abs(var_x / 0.25 - 1) < 5 * se + 0.01 and abs(var_p / 2.0 - 1) < 5 * se + 0.01


def test_controlled_momentum_kernel_is_the_exact_ou_flow_for_a_constant_control():
    """dP = -gamma P dt + sigma u dt + sigma dW with constant u: mean p e^{-gh} + (1 - e^{-gh}) sigma u / g."""
    u = 0.3
    sde = UnderdampedSDE(lambda t, x: 0 * x, friction=0.5, mass=2.0, control=lambda t, x, p: torch.full_like(p, u))
    sigma = math.sqrt(2 * 0.5 * 2.0)
    p, h = torch.tensor([[1.0]], dtype=D64), torch.tensor([[0.7]], dtype=D64)
    mean, std = sde.momentum_mean(torch.zeros(1, dtype=D64), p, p, h), sde.momentum_std(h)
    stationary = sigma * u / 0.5
    assert torch.allclose(mean, stationary + (p - stationary) * math.exp(-0.35))
    assert torch.allclose(std, torch.tensor([[math.sqrt(2.0 * (1 - math.exp(-0.7)))]], dtype=D64))


# ----------------------------------------------------------------------------- paths, noise, seeds


def test_solve_is_seeded_and_returns_increments():
    sde = OU
    x0 = torch.zeros(16, 3)
    times = CosineGrid(0, 1).times(20)
    p1 = solve(sde, x0, times, generator=generator(7), keep_noise=True)
    p2 = solve(sde, x0, times, generator=generator(7), keep_noise=True)
    assert torch.equal(p1.xs, p2.xs) and p1.xs.shape == (21, 16, 3)
    dw = p1.increments()
    assert dw.shape == (20, 16, 3)
    # Euler-Maruyama identity: x_{k+1} - x_k - f(t_k, x_k) h_k = sigma(t_k) dW_k
    t = times[:-1, None].expand(20, 16).reshape(-1)
    x = p1.xs[:-1].reshape(-1, 3)
    step = (
        p1.xs[1:] - p1.xs[:-1] - (sde.drift(t, x) * p1.step_sizes().expand(20, 16, 1).reshape(-1, 1)).reshape(20, 16, 3)
    )
    sigma = sde.diffusion(t, x).reshape(20, 16, 1)
    assert torch.allclose(step, sigma * dw, atol=1e-5)
    final_only = solve(sde, x0, times, generator=generator(7), keep_path=False)
    assert final_only.xs.shape == (1, 16, 3) and torch.equal(final_only.final, p1.final)


def test_solve_rejects_bad_input():
    x0 = torch.zeros(4, 2)
    with pytest.raises(OplearnError, match="increasing"):
        solve(OU, x0, torch.tensor([0.0, 0.5, 0.4]))
    with pytest.raises(OplearnError, match="batch"):
        solve(OU, x0, torch.zeros(3, 5).cumsum(0) + torch.arange(3.0)[:, None])
    with pytest.raises(OplearnError, match="noise must have shape"):
        solve(OU, x0, UniformGrid().times(3), noise=torch.zeros(3, 4, 3))
    with pytest.raises(OplearnError, match=r"\(batch, dim\)"):
        solve(OU, torch.zeros(4), UniformGrid().times(3))
    with pytest.raises(OplearnError, match="keep_noise"):
        solve(OU, x0, UniformGrid().times(3)).increments()


def test_per_sample_time_grids_and_matrix_noise_black_scholes():
    """dX_i = mu X_i dt + X_i sum_j sigma_ij dW_j with per-sample correlated volatilities and end
    times. Euler-Maruyama's exact second moment is x0_i x0_j ((1 + mu h)^2 + h (sigma sigma^T)_ij)^N."""
    n, mu, steps = 40000, 0.05, 10
    vol = torch.tensor([[[0.2, 0.0], [0.15, 0.25]], [[0.4, 0.1], [0.0, 0.3]]], dtype=D64)
    group = torch.arange(n) % 2
    params = vol[group]  # (n, 2, 2): one volatility matrix per sample
    t1 = torch.where(group == 0, 1.0, 2.0).to(D64)
    sde = ItoSDE(lambda t, x: mu * x, lambda t, x: x[:, :, None] * params, MatrixNoise())
    x0 = torch.tensor([[1.0, 2.0]], dtype=D64).expand(n, 2)
    path = solve(sde, x0, UniformGrid(0.0, t1).times(steps, dtype=D64), generator=generator(3), keep_path=False)
    for k in range(2):
        h = float(t1[k]) / steps
        c = params[k] @ params[k].T
        exact = x0[0][:, None] * x0[0][None, :] * ((1 + mu * h) ** 2 + h * c) ** steps
        xs = path.final[group == k]
        second = (xs[:, :, None] * xs[:, None, :]).mean(0)
        se = (xs[:, :, None] * xs[:, None, :]).std(0) / math.sqrt(len(xs))
        assert bool(torch.all((second - exact).abs() < 5 * se)), (second, exact)


# ----------------------------------------------------------------------------- likelihoods


def _gaussian_chain_log_prob(xs, x_start, a, c, s):
    """log N of the chain y_{k+1} = a_k y_k + c_k + s_k xi_k (scalar state) from y_0 = x_start,
    evaluated at xs = (y_1, ..., y_N) via the joint Gaussian of (y_1..y_N)."""
    n = len(a)
    mean, lower = [], torch.zeros(n, n, dtype=D64)
    m = x_start
    for k in range(n):
        m = a[k] * m + c[k]
        mean.append(m)
        for j in range(k + 1):
            lower[k, j] = s[j] * math.prod(a[j + 1 : k + 1])
    return MultivariateNormal(torch.tensor(mean, dtype=D64), scale_tril=lower).log_prob(xs)


def test_forward_log_density_is_the_joint_gaussian_of_a_linear_chain():
    sde = OrnsteinUhlenbeck(rate=0.5, rate_end=2.0, mean=0.3, scale=1.2)
    times = GeometricGrid(0, 1, ratio=0.3).times(5, dtype=D64)
    xs = torch.randn(6, 4, 1, generator=torch.Generator().manual_seed(0), dtype=D64)  # any points, not only samples
    path = solve(sde, xs[0], times)
    path.states = (xs,)
    got = forward_log_density(sde, path)
    for i in range(4):
        a, c, s = [], [], []
        for k in range(5):
            t, h = float(times[k]), float(times[k + 1] - times[k])
            beta = float(sde.beta(torch.tensor(t)))
            a.append(1 - beta * h)
            c.append(beta * h * sde.mean)
            s.append(sde.scale * math.sqrt(2 * beta * h))
        assert torch.allclose(got[i], _gaussian_chain_log_prob(xs[1:, i, 0], float(xs[0, i, 0]), a, c, s))


def test_backward_log_density_is_the_reversed_chain():
    """A backward OU kernel x_k ~ N(x_{k+1} - theta x_{k+1} h_k, s^2 h_k): the same chain read from x_N."""
    theta, s = 0.8, 0.6
    backward = ItoSDE(lambda t, x: -theta * x, s)
    times = UniformGrid(0, 1).times(4, dtype=D64)
    xs = torch.randn(5, 3, 1, generator=torch.Generator().manual_seed(1), dtype=D64)
    path = solve(backward, xs[0], times)
    path.states = (xs,)
    got = backward_log_density(backward, path)
    h = 0.25
    for i in range(3):
        expected = _gaussian_chain_log_prob(
            xs[:-1, i, 0].flip(0), float(xs[-1, i, 0]), [1 - theta * h] * 4, [0.0] * 4, [s * math.sqrt(h)] * 4
        )
        assert torch.allclose(got[i], expected)


@pytest.mark.parametrize(
    "sde",
    [
        OU,
        ItoSDE(lambda t, x: torch.sin(x), lambda t, x: 0.5 + x.square(), DiagonalNoise()),
        ItoSDE(lambda t, x: -x, torch.tensor([[1.0, 0.0], [0.7, 0.4]], dtype=D64), MatrixNoise()),
    ],
    ids=["scalar", "diagonal-state-dependent", "matrix"],
)
def test_noise_log_density_equals_forward_log_density_on_sampled_paths(sde):
    path = solve(
        sde, torch.ones(8, 2, dtype=D64), UniformGrid().times(12, dtype=D64), generator=generator(2), keep_noise=True
    )
    assert torch.allclose(noise_log_density(sde, path), forward_log_density(sde, path))


@pytest.mark.parametrize("solver", [ExponentialEuler(), Splitting("BAOAB"), Splitting("OBAB")], ids=repr)
def test_noise_log_density_equals_forward_log_density_for_every_solver(solver):
    torch.manual_seed(0)
    if isinstance(solver, Splitting):
        sde = UnderdampedSDE(
            lambda t, x: -x,
            friction=0.7,
            mass=torch.tensor([1.0, 2.0], dtype=D64),
            control=lambda t, x, p: torch.tanh(x + p),
        )
        state = (torch.ones(8, 2, dtype=D64), torch.zeros(8, 2, dtype=D64))
    else:
        sde = ControlledSDE(OU_VP, lambda t, x: torch.sin(x))
        state = torch.ones(8, 2, dtype=D64)
    path = solve(sde, state, CosineGrid().times(12, dtype=D64), solver, generator=generator(2), keep_noise=True)
    assert torch.allclose(noise_log_density(sde, path, solver), forward_log_density(sde, path, solver))


def test_uncontrolled_momentum_kernels_are_reversible():
    """Without control every O kernel is reversible for N(0, M): for each O sub-step
    log N_F(p_out | p_in) - log N_B(p_in | p_out) = log N(p_out; 0, M) - log N(p_in; 0, M)."""
    mass = torch.tensor([0.5, 2.0], dtype=D64)
    sde = UnderdampedSDE(lambda t, x: -(x**3), friction=1.3, mass=mass)
    solver = Splitting("OBABO")
    path = solve(
        sde,
        (torch.randn(16, 2, dtype=D64), torch.randn(16, 2, dtype=D64)),
        UniformGrid(0, 1).times(7, dtype=D64),
        solver,
        generator=generator(3),
    )
    ratio = forward_log_density(sde, path, solver) - backward_log_density(sde, path, solver)
    gauss = MultivariateNormal(torch.zeros(2, dtype=D64), covariance_matrix=torch.diag(mass))
    p_in, p_out = path.records[:, :, 1], path.records[:, :, 2]
    expected = (gauss.log_prob(p_out) - gauss.log_prob(p_in)).sum((0, 1))
    assert path.records.shape == (7, 2, 3, 16, 2)
    assert torch.allclose(ratio, expected)


def test_girsanov_sum_equals_the_discrete_ratio_on_euler_paths():
    base = ItoSDE(lambda t, x: -0.5 * x, torch.tensor([1.3, 0.7], dtype=D64), DiagonalNoise())
    control = lambda t, x: torch.tanh(x) + t[:, None]
    controlled = ControlledSDE(base, control)
    times = CosineGrid(0, 1).times(30, dtype=D64)
    path = solve(controlled, torch.zeros(64, 2, dtype=D64), times, generator=generator(4), keep_noise=True)
    t = times[:-1, None].expand(30, 64)
    us = control(t.reshape(-1), path.xs[:-1].reshape(-1, 2)).reshape(30, 64, 2)
    continuous = girsanov_log_ratio(us, path.increments(), path.step_sizes())
    discrete = forward_log_density(controlled, path) - forward_log_density(base, path)
    assert torch.allclose(continuous, discrete)


def test_girsanov_kl_of_ou_against_brownian_motion():
    """KL(OU || BM) from X_0 = 0: E[1/2 int theta^2 X_t^2 dt] = theta/4 (T - (1 - e^{-2 theta T}) / (2 theta))."""
    theta, T, n, steps = 1.0, 2.0, 8000, 100
    base = ItoSDE(lambda t, x: torch.zeros_like(x), 1.0)
    control = lambda t, x: -theta * x
    path = solve(
        ControlledSDE(base, control),
        torch.zeros(n, 1, dtype=D64),
        UniformGrid(0, T).times(steps, dtype=D64),
        generator=generator(5),
        keep_noise=True,
    )
    us = -theta * path.xs[:-1]
    log_ratio = girsanov_log_ratio(us, path.increments(), path.step_sizes())
    exact = theta / 4 * (T - (1 - math.exp(-2 * theta * T)) / (2 * theta))
    se = float(log_ratio.std()) / math.sqrt(n)
    assert abs(float(log_ratio.mean()) - exact) < 4 * se + 0.01 * exact


@pytest.mark.parametrize("scheme", ["BAOAB", "OBAB", "OBABO"])
def test_splitting_step_back_inverts_the_step(scheme):
    """With the backward normals that map each O sub-step's output back to its input, the
    backward step returns the initial state and the same O records."""
    solver = Splitting(scheme)
    forward = UnderdampedSDE(
        lambda t, x: -(x**3) + t[:, None], friction=0.8, mass=1.7, control=lambda t, x, p: torch.sin(x * p)
    )
    backward = UnderdampedSDE(forward.force, friction=0.8, mass=1.7, control=lambda t, x, p: torch.cos(x + p))
    x, p = torch.randn(5, 3, dtype=D64), torch.randn(5, 3, dtype=D64)
    t, dt = torch.full((5,), 0.3, dtype=D64), torch.full((5,), 0.2, dtype=D64)
    xi = torch.randn(solver.counts["O"], 5, 3, dtype=D64)
    (x1, p1), _, record = solver.step(forward, t, dt, (x, p), solver.init(forward, t, (x, p)), xi)
    h = dt[:, None] / solver.counts["O"]
    xi_back = torch.stack(
        [
            (record[o, 1] - backward.momentum_mean(t + dt * frac, record[o, 0], record[o, 2], h))
            / backward.momentum_std(h)
            for o, frac in enumerate(solver.o_fractions)
        ]
    )
    (x0, p0), record_back = solver.step_back(backward, t, dt, (x1, p1), xi_back)
    assert torch.allclose(x0, x) and torch.allclose(p0, p) and torch.allclose(record_back, record)


def test_solve_backward_runs_the_backward_kernels_from_the_end():
    """Zero noise: x_k = x_{k+1} + f_B(t_{k+1}, x_{k+1}) h_k, the path ordered forwards."""
    backward = ItoSDE(lambda t, x: -t[:, None] * x, 0.5)
    times = GeometricGrid(0, 1, ratio=0.5).times(4, dtype=D64)
    end = torch.tensor([[1.0, -2.0]], dtype=D64)
    path = solve_backward(backward, end, times, noise=torch.zeros(4, 1, 2, dtype=D64))
    x = end
    for k in reversed(range(4)):
        x = x - float(times[k + 1]) * x * float(times[k + 1] - times[k])
        assert torch.allclose(path.xs[k], x)
    assert torch.equal(path.final, end)
    under = UnderdampedSDE(lambda t, x: -x)
    path = solve_backward(under, (end, end), times, Splitting("BAOAB"), generator=generator(0))
    assert path.records.shape == (4, 1, 3, 1, 2) and torch.equal(path.states[1][-1], end)
