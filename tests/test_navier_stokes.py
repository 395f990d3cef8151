import json
import math

import h5py
import numpy as np
import pytest
import torch
from helpers import run_cli
from problems import observed_order
from time_problems import FORCED_VORTICITY, navier_stokes_space_errors, navier_stokes_time_errors, one_thread  # noqa: F401

from oplearn.data.generate import generate_dataset, make_pde
from oplearn.errors import DataError
from oplearn.grids import Grid
from oplearn.pdes import PDES, NavierStokes
from oplearn.pdes.navier_stokes import velocity
from oplearn.solvers.spectral import Fourier

pytestmark = pytest.mark.usefixtures("one_thread")


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered_with_the_fno_defaults():
    pde = NavierStokes()
    assert PDES["navier_stokes"] is NavierStokes
    assert pde.nu == 1e-3 and pde.t_final == 50 and pde.times.tolist() == list(map(float, range(1, 51)))
    assert pde.dt == 1e-4 and pde.refine == 4 and pde.sigma == pytest.approx(math.sqrt(2) * 7**1.5)
    assert (
        make_pde("navier_stokes", {"nu": 1e-4}).t_final == 30 and make_pde("navier_stokes", {"nu": 1e-5}).n_times == 20
    )
    assert make_pde("navier_stokes", {"nu": "1e-4", "dt": "1e-3"}).dt == 1e-3  # --param nu=1e-4 arrives as text
    assert NavierStokes(nu=2e-3, t_final=4.0).times.tolist() == [1.0, 2.0, 3.0, 4.0]
    params = json.loads(json.dumps(pde.params()))
    assert params["forcing_amplitude"] == 0.1 and "Crank-Nicolson" in params["solver"]
    with pytest.raises(DataError, match="give t_final"):
        make_pde("navier_stokes", {"nu": 2e-3})


def test_velocity_is_divergence_free_with_curl_w():
    grid = Grid((16, 16), periodic=True)
    fourier = Fourier(grid)
    w = NavierStokes(modes=7).sample_input(2, grid, seeded(0))[:, 0]  # no Nyquist content
    u_hat, v_hat = velocity(fourier.forward(w), fourier)
    ik_x, ik_y = fourier.ik
    assert fourier.inverse(ik_x * u_hat + ik_y * v_hat).abs().max() < 1e-12
    curl = fourier.inverse(ik_x * v_hat - ik_y * u_hat)
    assert torch.allclose(curl, w - w.mean((-2, -1), keepdim=True), atol=1e-12)


def test_taylor_green_vortex_decays_exactly():
    # sin(2 pi x) sin(2 pi y) and cos(2 pi (x + y)) share |k|^2 = 8 pi^2: u . grad w = 0, w = w0 e^{-8 pi^2 nu t}
    nu = 0.01
    pde = NavierStokes(nu=nu, t_final=1.0, n_times=4, dt=1e-3, forcing_amplitude=0.0)
    grid = pde.grid(16)
    x, y = grid.coordinates(torch.float64)
    w0 = torch.sin(2 * math.pi * x) * torch.sin(2 * math.pi * y) + 0.5 * torch.cos(2 * math.pi * (x + y))
    w = pde.solve(w0[None, None], grid)
    for i, t in enumerate(pde.times.tolist()):
        assert torch.allclose(w[0, i, 0], w0 * math.exp(-8 * math.pi**2 * nu * t), atol=1e-9)


def test_fno_forcing_has_an_exact_transient():
    # the forcing lies on the same shell, so w = w_s + (w0 - w_s) e^{-8 pi^2 nu t}, w_s = f / (8 pi^2 nu)
    nu = 0.01
    pde = NavierStokes(nu=nu, t_final=2.0, n_times=2, dt=1e-3)
    grid = pde.grid(16)
    x, y = grid.coordinates(torch.float64)
    f = 0.1 * (torch.sin(2 * math.pi * (x + y)) + torch.cos(2 * math.pi * (x + y)))
    w0 = torch.sin(2 * math.pi * (x - y))
    w = pde.solve(w0[None, None], grid)
    steady = f / (8 * math.pi**2 * nu)
    for i, t in enumerate(pde.times.tolist()):
        assert torch.allclose(w[0, i, 0], steady + (w0 - steady) * math.exp(-8 * math.pi**2 * nu * t), atol=1e-8)


def test_manufactured_solution_converges_at_second_order_in_time():
    steps, errors = navier_stokes_time_errors()
    assert 1.9 < observed_order(steps, errors) < 2.1, errors


def test_manufactured_steady_solution_converges_spectrally_in_space():
    _, errors = navier_stokes_space_errors()
    assert errors[0] > 1e-3 and errors[1] < 1e-4 and errors[2] < 1e-10, errors


def test_mean_vorticity_is_conserved_and_samples_are_independent():
    pde = NavierStokes(nu=1e-3, t_final=0.2, n_times=2, dt=1e-2)
    grid = pde.grid(32)
    w0 = pde.sample_input(3, grid, seeded(1)) + torch.tensor([0.0, 0.3, -1.0], dtype=torch.float64)[:, None, None, None]
    w = pde.solve(w0, grid)
    assert w.shape == (3, 2, 1, 32, 32) and w.dtype == torch.float64
    assert torch.allclose(w.mean((-2, -1)), w0.mean((-2, -1))[:, None].expand(3, 2, 1), atol=1e-14)
    assert torch.allclose(pde.solve(w0[2:], grid), w[2:], atol=1e-13)


def test_residual_is_small_for_a_solved_trajectory():
    grid = NavierStokes().grid(32)
    w0 = NavierStokes(modes=4).sample_input(2, grid, seeded(2))
    norms = []
    for n_times in (10, 20):
        pde = NavierStokes(nu=1e-3, t_final=0.2, n_times=n_times, dt=1e-2, modes=4)
        w = pde.solve(w0, grid)
        residual = pde.residual(w, w0, grid)
        assert residual.shape == w.shape
        norms.append(residual.abs().max().item())
    w_t = (w[:, 0] - w0).abs().max().item() / pde.times[0].item()
    assert norms[1] < 1e-3 * w_t, (norms, w_t)
    assert 3.5 < norms[0] / norms[1] < 4.5, norms
    # the manufactured forcing enters the residual too
    problem_grid = Grid((16, 16), periodic=True)
    pde = NavierStokes(nu=FORCED_VORTICITY.nu, t_final=0.2, n_times=40, dt=1e-3, refine=1)
    w0, _ = FORCED_VORTICITY.fields(problem_grid, 0.0)
    exact = torch.stack([FORCED_VORTICITY.fields(problem_grid, t)[0] for t in pde.times.tolist()])[None, :, None]
    residual = pde.residual(
        exact, w0[None, None], problem_grid, forcing=lambda t: FORCED_VORTICITY.fields(problem_grid, t)[1]
    )
    assert residual.abs().max() < 1e-3


def test_dataset_is_reproducible(tmp_path):
    pde = make_pde("navier_stokes", {"nu": 1e-3, "t_final": 0.02, "n_times": 2, "dt": 5e-3, "refine": 2})
    paths = [
        generate_dataset(pde, 3, 16, tmp_path / f"ns{i}.h5", seed=1, chunk_size=2, progress=False) for i in range(2)
    ]
    with h5py.File(paths[0]) as a, h5py.File(paths[1]) as b:
        assert a["inputs"].shape == (3, 1, 16, 16) and a["outputs"].shape == (3, 2, 1, 16, 16)
        assert np.array_equal(a["outputs"][:], b["outputs"][:])
        assert np.allclose(a["time"][:], [0.01, 0.02])


def test_command_line_generates_a_trajectory_dataset(tmp_path):
    out = tmp_path / "ns.h5"
    run_cli(
        "generate",
        "navier_stokes",
        "--n",
        2,
        "--resolution",
        8,
        "--refine",
        2,
        "--out",
        out,
        "--no-progress",
        "--param",
        "nu=1e-4",
        "--param",
        "t_final=0.02",
        "--param",
        "n_times=2",
        "--param",
        "dt=1e-2",
    )
    with h5py.File(out) as f:
        assert f["outputs"].shape == (2, 2, 1, 8, 8) and np.allclose(f["time"][:], [0.01, 0.02])
        assert json.loads(f.attrs["pde_params"])["nu"] == 1e-4


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(nu=-1.0),
        dict(dt=0.0),
        dict(t_final=math.inf),
        dict(n_times=0),
        dict(refine=0),
        dict(forcing_amplitude=math.nan),
    ],
)
def test_invalid_parameters(kwargs):
    with pytest.raises(ValueError):
        NavierStokes(**{"t_final": 1.0, **kwargs})


def test_invalid_inputs_and_forcing():
    pde = NavierStokes(t_final=0.01, n_times=1, dt=0.01)
    grid = pde.grid(8)
    with pytest.raises(ValueError, match="periodic 2D grid"):
        pde.solve(torch.zeros(1, 1, 8, dtype=torch.float64), Grid((8,), periodic=True))
    with pytest.raises(ValueError, match="forcing must have shape"):
        pde.solve(torch.zeros(1, 1, 8, 8, dtype=torch.float64), grid, forcing=torch.zeros(8, 4))
