"""Chaotic PDEs (Kuramoto-Sivashinsky, Kolmogorov flow) and the statistics of long rollouts."""

import math

import pytest
import torch

from oplearn.data.generate import make_pde
from oplearn.pdes import PDES, KolmogorovFlow, KuramotoSivashinsky
from oplearn.pdes.navier_stokes import velocity
from oplearn.rollout_stats import (
    compare_statistics,
    correlation_time,
    diagnose,
    energy,
    long_run_statistics,
    per_step_error,
)
from oplearn.solvers.spectral import Fourier


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered_and_rebuilt_from_their_parameters():
    for name, cls in (("kuramoto_sivashinsky", KuramotoSivashinsky), ("kolmogorov_flow", KolmogorovFlow)):
        assert PDES[name] is cls
        pde = make_pde(name)
        assert make_pde(name, pde.params()).params() == pde.params()
    assert KuramotoSivashinsky().grid(256).spacing == (0.25,)  # PDE-Refiner's dx on L = 64
    assert KolmogorovFlow().grid(8).lengths == (2 * math.pi, 2 * math.pi)


def test_ks_etdrk4_is_fourth_order_in_time():
    # a state on the attractor; errors at t = 1 against a 16 times finer step. (On finer
    # grids, stiffer, the order reaches 4 only at smaller steps: 3.3 -> 3.7 on 64 nodes.)
    pde = KuramotoSivashinsky(length=32.0, burn_in=10.0, dt=0.05)
    grid = pde.grid(32)
    u0 = pde.sample_input(2, grid, seeded(1))
    solve = lambda dt: KuramotoSivashinsky(length=32.0, t_final=1.0, n_times=1, dt=dt).solve(u0, grid)[:, -1]
    reference = solve(0.1 / 16)
    steps = [0.1, 0.05, 0.025]
    errors = [float((solve(dt) - reference).norm() / reference.norm()) for dt in steps]
    orders = [math.log2(a / b) for a, b in zip(errors, errors[1:])]
    assert errors[-1] < 1e-7 and min(orders) > 3.6, (errors, orders)


def test_ks_conserves_the_mean_and_stays_bounded_on_the_attractor():
    pde = KuramotoSivashinsky(t_final=40.0, n_times=50, burn_in=50.0)
    u0, u = pde.generate(2, 128, seeded(2))
    assert u0.mean(-1).abs().max() < 1e-12 and u.mean(-1).abs().max() < 1e-10
    rms = u.square().mean(-1).sqrt()
    assert 0.5 < float(rms.min()) and float(rms.max()) < 3  # chaotic, neither decaying nor growing


def test_coarse_solver_variant_is_the_same_equation_on_the_coarse_grid():
    fine = KolmogorovFlow(re=40.0, t_final=0.2, n_times=2, burn_in=0.0, refine=2)
    coarse = KolmogorovFlow(re=40.0, t_final=0.2, n_times=2, burn_in=0.0, refine=1)
    gaps = []
    for resolution in (16, 32):
        a_fine, w_fine = fine.generate(1, resolution, seeded(3))
        a_coarse, w_coarse = coarse.generate(1, resolution, seeded(3))
        # the same initial field (a resolution-independent draw), up to the mean each grid removes
        assert float((a_fine - a_coarse).std()) < 1e-12
        gaps.append(float((w_fine - w_coarse).norm() / w_fine.norm()))
    # a discretisation error of the coarse grid: it shrinks as the coarse grid is refined
    assert 0 < gaps[1] < 0.6 * gaps[0], gaps


def test_kolmogorov_flow_keeps_zero_mean_vorticity_and_its_energy_balance():
    """dE/dt = <u . F> - nu <w^2> with E = <|u|^2>/2 and F = (sin n y, 0), checked on frames 0.01 apart."""
    pde = KolmogorovFlow(re=40.0, t_final=0.2, n_times=20, dt=5e-3, burn_in=2.0)
    grid = pde.grid(32)
    w0 = pde.sample_input(1, grid, seeded(4))
    w = torch.cat([w0[:, None], pde.solve(w0, grid)], dim=1)[:, :, 0]  # (1, 21, 32, 32)
    assert w.mean(dim=(-2, -1)).abs().max() < 1e-10
    fourier = Fourier(grid, dealias=False)
    u_hat, v_hat = velocity(fourier.forward(w), fourier)
    u, v = fourier.inverse(u_hat), fourier.inverse(v_hat)
    e = 0.5 * (u.square() + v.square()).mean(dim=(-2, -1))
    f_x, _ = pde.body_force(grid)
    power = (u * f_x).mean(dim=(-2, -1))
    dissipation = w.square().mean(dim=(-2, -1)) / pde.re
    de_dt = (e[:, 2:] - e[:, :-2]) / 0.02
    balance = power[:, 1:-1] - dissipation[:, 1:-1]
    assert float((de_dt - balance).abs().max()) < 2e-3 * float(power.abs().max() + dissipation.max())
    assert float(power.abs().max()) > 1e-2  # the force does work: the check is not 0 = 0


@pytest.fixture(scope="module")
def ks_runs():
    """Two independent long runs of the KS solver (different seeds) and their grid."""
    # (L = 100: on L = 64 an occasional trajectory settles on a steady cellular state)
    pde = KuramotoSivashinsky(length=100.0, t_final=300.0, n_times=300, burn_in=50.0, dt=0.2)
    grid = pde.grid(128)
    return grid, pde.generate(3, 128, seeded(5))[1], pde.generate(3, 128, seeded(6))[1]


def test_statistics_of_two_runs_of_the_same_solver_agree_within_sampling_error(ks_runs):
    grid, a, b = ks_runs
    sa, sb = long_run_statistics(a, grid), long_run_statistics(b, grid)
    for name in ("energy", "tke", "dissipation"):
        gap = abs(sa[name] - sb[name])
        assert gap < 3 * math.hypot(sa[f"{name}_error"], sb[f"{name}_error"]), (name, sa[name], sb[name])
        assert sa[f"{name}_error"] < 0.1 * sa[name]  # and the estimate is informative
    errors = compare_statistics(sa, sb)
    assert (
        errors["spectrum_log_error"] < 0.1 and errors["pdf_distance"] < 0.05 and errors["autocorrelation_error"] < 0.05
    )
    assert diagnose(b, sa, grid) == "ok"
    # pointwise, the two runs are unrelated: the correlation time is 0 and the error O(1)
    assert correlation_time(b, a)[0.8] == 0 and per_step_error(b, a).mean() > 1.0
    assert correlation_time(a, a) == {0.8: 300, 0.9: 300, 0.95: 300}


def test_statistics_flag_damped_and_exploding_runs(ks_runs):
    grid, a, b = ks_runs
    reference = long_run_statistics(a, grid)
    decay = torch.exp(-0.02 * torch.arange(b.shape[1], dtype=b.dtype))[None, :, None, None]
    damped, exploding = b * decay, b / decay
    assert diagnose(damped, reference, grid) == "damped"
    assert diagnose(exploding, reference, grid) == "exploding"
    assert diagnose(2 * b, reference, grid) == "inflated"  # four times the energy, bounded
    blown = b.clone()
    blown[0, 200:] = math.nan
    assert diagnose(blown, reference, grid) == "exploding"
    errors = compare_statistics(long_run_statistics(damped, grid), reference)
    assert errors["energy_relative_error"] > 0.5 and errors["spectrum_log_error"] > 1.0
    assert energy(b, grid).shape == b.shape[:2]


def test_smagorinsky_closure_removes_enstrophy_in_proportion_to_the_constant_squared():
    from oplearn.pdes.kolmogorov_flow import smagorinsky

    grid = KolmogorovFlow().grid(32)
    fourier = Fourier(grid)
    w = KolmogorovFlow(burn_in=0.0).sample_input(2, grid, seeded(7))[:, 0]
    w_hat = fourier.forward(w)
    rates = [float((w * fourier.inverse(smagorinsky(fourier, c)(w_hat))).mean()) for c in (0.1, 0.2)]
    assert rates[0] < 0 and rates[1] / rates[0] == pytest.approx(4.0, rel=1e-6)
    les = KolmogorovFlow(smagorinsky=0.17, t_final=0.2, n_times=1, dt=0.01, burn_in=0.0)
    plain = KolmogorovFlow(t_final=0.2, n_times=1, dt=0.01, burn_in=0.0)
    w0 = w[:, None]
    assert float(les.solve(w0, grid).square().mean()) < float(plain.solve(w0, grid).square().mean())
