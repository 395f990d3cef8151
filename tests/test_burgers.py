import json
import math

import h5py
import numpy as np
import pytest
import torch
from problems import observed_order
from time_problems import burgers_space_errors, burgers_time_errors, cole_hopf, one_thread  # noqa: F401

from oplearn.data.generate import generate_dataset, make_pde
from oplearn.errors import DataError
from oplearn.grids import Grid, subsample
from oplearn.pdes import PDES, Burgers, BurgersPDEBench

pytestmark = pytest.mark.usefixtures("one_thread")


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered_and_params_are_json():
    assert PDES["burgers"] is Burgers and PDES["burgers_pdebench"] is BurgersPDEBench
    params = json.loads(json.dumps(Burgers(refine=8).params()))
    assert params["nu"] == 0.1 and params["refine"] == 8 and params["sigma"] == 25.0 and "ETDRK4" in params["solver"]
    assert Burgers().times.tolist() == [1.0] and Burgers(t_final=2.0, n_times=4).times.tolist() == [0.5, 1.0, 1.5, 2.0]
    bench = BurgersPDEBench()
    assert bench.viscosity == pytest.approx(0.01 / math.pi)
    assert len(bench.times) == 201 and bench.times[0] == 0 and bench.times[-1] == 2.0
    assert json.loads(json.dumps(bench.params()))["initial"]["k_max"] == 4


def test_initial_field_has_the_fno_covariance():
    # N(0, 625 (-Delta + 25)^-2) on [0, 1): point variance sum_{k != 0} 625 / (4 pi^2 k^2 + 25)^2
    pde = Burgers()
    u0 = pde.sample_input(400, pde.grid(64), seeded(0))
    assert u0.shape == (400, 1, 64) and u0.dtype == torch.float64
    k = torch.arange(1, 129, dtype=torch.float64)
    variance = 2 * (625 / (4 * math.pi**2 * k**2 + 25) ** 2).sum()
    assert u0.var().item() == pytest.approx(variance.item(), rel=0.1)
    assert abs(u0.mean((0, 2)).item()) < 0.1


def test_cole_hopf_converges_at_fourth_order_in_time():
    steps, errors = burgers_time_errors()
    assert 3.8 < observed_order(steps, errors) < 4.2, errors


def test_cole_hopf_converges_spectrally_in_space():
    _, errors = burgers_space_errors()
    assert errors[0] > 1e-3 and errors[2] < 1e-9 and errors[3] < 1e-11, errors
    assert all(e1 < 1e-3 * e0 for e0, e1 in zip(errors[:2], errors[1:3])), errors


def test_pdebench_viscosity_is_nu_over_pi():
    nu = 0.05
    bench = BurgersPDEBench(nu=math.pi * nu, t_final=0.2, n_times=3, dt=1e-3)
    grid = bench.grid(48)
    u = bench.solve(cole_hopf(grid, 0.0, nu)[None, None], grid)
    for i, t in enumerate(bench.times.tolist()):
        assert torch.allclose(u[0, i, 0], cole_hopf(grid, t, nu), atol=1e-10)


def test_solve_conserves_the_mean_and_batches_independently():
    pde = Burgers(t_final=0.5, n_times=5, dt=5e-3)
    grid = pde.grid(128)
    u0 = pde.sample_input(3, grid, seeded(1)) + torch.tensor([0.0, 0.5, -1.0], dtype=torch.float64)[:, None, None]
    u = pde.solve(u0, grid)
    assert u.shape == (3, 5, 1, 128) and u.dtype == torch.float64
    assert torch.allclose(u.mean(-1), u0.mean(-1)[:, None].expand(3, 5, 1), atol=1e-13)
    assert torch.allclose(pde.solve(u0[1:2], grid), u[1:2], atol=1e-13)
    assert (u[:, -1].std(-1) < u0.std(-1)).all()  # viscous decay


def test_residual_is_small_and_second_order_in_the_frame_spacing():
    # a smooth field (4 modes; nu k^2 <= 63): frames 1/400 apart resolve its time scales
    # (high modes decay at the rate nu k^2, unresolved by frames 1/n_times apart)
    grid = Burgers().grid(64)
    u0 = Burgers(modes=4).sample_input(2, grid, seeded(2))
    norms, largest = [], []
    for n_times in (10, 20):
        pde = Burgers(t_final=0.05, n_times=n_times, dt=1e-3)
        u = pde.solve(u0, grid)
        residual = pde.residual(u, u0, grid)
        assert residual.shape == u.shape
        norms.append(residual[:, n_times // 2 - 1].abs().max().item())  # at t = 0.025
        largest.append(residual.abs().max().item())  # the first frame, nearest the fast start
    u_t = (u[:, 0] - u0).abs().max().item() / pde.times[0].item()
    assert norms[1] < 1e-3 * u_t and largest[1] < 1e-2 * u_t, (norms, largest, u_t)
    assert 3.6 < norms[0] / norms[1] < 4.4, norms


def test_residual_is_differentiable_and_needs_three_times():
    pde = Burgers(t_final=0.1, n_times=2)
    grid = pde.grid(16)
    u0 = pde.sample_input(1, grid, seeded(3))
    u = torch.zeros(1, 2, 1, 16, dtype=torch.float64, requires_grad=True)
    pde.residual(u, u0, grid).pow(2).sum().backward()
    assert u.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least 3"):
        Burgers().residual(torch.zeros(1, 1, 1, 16, dtype=torch.float64), u0, grid)


def test_refined_generation_keeps_the_coarse_nodes():
    fine, coarse = Burgers(refine=4, t_final=0.2), Burgers(t_final=0.2)
    u0, u = fine.generate(2, 64, seeded(4))
    assert u0.shape == (2, 1, 64) and u.shape == (2, 1, 1, 64)
    assert torch.allclose(u0, coarse.sample_input(2, coarse.grid(64), seeded(4)), atol=1e-14)
    fine_grid = coarse.grid(64).refine(4)
    assert torch.equal(u, subsample(fine.solve(fine.sample_input(2, fine_grid, seeded(4)), fine_grid), 4, 1))
    # the field has modes up to 128 > 64 / 3: the coarse solve is close, the fine one exact to ~1e-6
    assert (u - coarse.solve(u0, coarse.grid(64))).abs().max() < 1e-2 * u.abs().max()


@pytest.mark.parametrize(
    "name, params",
    [("burgers", {"t_final": 0.1, "n_times": 3}), ("burgers_pdebench", {"t_final": 0.1, "n_times": 5, "dt": 1e-3})],
)
def test_dataset_is_reproducible(tmp_path, name, params):
    pde = make_pde(name, params)
    paths = [
        generate_dataset(pde, 3, 32, tmp_path / f"{name}{i}.h5", seed=7, chunk_size=2, progress=False) for i in range(2)
    ]
    with h5py.File(paths[0]) as a, h5py.File(paths[1]) as b:
        assert a["outputs"].shape == (3, len(pde.times), 1, 32) and a["inputs"].shape == (3, 1, 32)
        assert np.array_equal(a["outputs"][:], b["outputs"][:]) and np.array_equal(a["inputs"][:], b["inputs"][:])
        assert np.allclose(a["time"][:], pde.times.numpy())
        assert np.isfinite(a["outputs"][:]).all()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(nu=0.0),
        dict(nu=float("nan")),
        dict(t_final=0.0),
        dict(n_times=0),
        dict(n_times=1.5),
        dict(dt=-1.0),
        dict(refine=0),
        dict(tau=0.0),
    ],
)
def test_invalid_parameters(kwargs):
    with pytest.raises(ValueError):
        Burgers(**kwargs)
    with pytest.raises(DataError, match="bad parameters|must be int"):  # wrong values, or a value of the wrong type
        make_pde("burgers", kwargs)


def test_invalid_inputs_and_outputs():
    pde = Burgers()
    grid = pde.grid(16)
    with pytest.raises(ValueError, match="inputs must have shape"):
        pde.solve(torch.zeros(2, 16, dtype=torch.float64), grid)
    with pytest.raises(ValueError, match="NaN"):
        pde.solve(torch.full((2, 1, 16), float("nan"), dtype=torch.float64), grid)
    with pytest.raises(ValueError, match="periodic 1D grid"):
        pde.solve(torch.zeros(2, 1, 16, dtype=torch.float64), Grid((16,)))
    with pytest.raises(ValueError, match="outputs must have shape"):
        pde.residual(torch.zeros(2, 1, 16, dtype=torch.float64), torch.zeros(2, 1, 16, dtype=torch.float64), grid)
