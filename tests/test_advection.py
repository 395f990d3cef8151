import json
import math

import h5py
import numpy as np
import pytest
import torch
from time_problems import one_thread  # noqa: F401

from oplearn.data.generate import generate_dataset
from oplearn.grids import Grid
from oplearn.pdes import PDES, Advection, BurgersPDEBench
from oplearn.pdes.random_sines import RandomSines

pytestmark = pytest.mark.usefixtures("one_thread")


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered_with_the_pdebench_frames():
    pde = Advection()
    assert PDES["advection"] is Advection and pde.beta == 0.1
    assert len(pde.times) == 201 and torch.allclose(
        pde.times[1:] - pde.times[:-1], torch.tensor(0.01, dtype=torch.float64)
    )
    params = json.loads(json.dumps(pde.params()))
    assert params["beta"] == 0.1 and params["initial"] == RandomSines().params() and "exact" in params["solver"]


def test_solution_is_the_exact_shift_of_a_smooth_initial_condition():
    sines = RandomSines(p_abs=0.0, p_window=0.0)  # smooth draws: trigonometric polynomials of degree <= 8
    draws = sines.draw(4, seeded(0))
    pde = Advection(beta=0.7, t_final=1.3, n_times=7)
    grid = pde.grid(48)
    (x,) = grid.axes(torch.float64)
    u0 = sines.evaluate(draws, x)[:, None]
    u = pde.solve(u0, grid)
    for i, t in enumerate(pde.times.tolist()):
        exact = sines.evaluate(draws, (x - pde.beta * t) % 1.0)
        assert torch.allclose(u[:, i, 0], exact, atol=1e-12), (t, (u[:, i, 0] - exact).abs().max())


def test_whole_cell_shifts_reproduce_any_nodal_data():
    n = 64
    pde = Advection(beta=-1.0, t_final=5 / n, n_times=6)  # shifts of 0..5 cells to the left
    u0 = torch.randn(3, 1, n, dtype=torch.float64, generator=seeded(1))  # white noise, Nyquist mode included
    u = pde.solve(u0, pde.grid(n))
    for i in range(6):
        assert torch.allclose(u[:, i], torch.roll(u0, -i, dims=-1), atol=1e-13)


def test_residual_vanishes_to_the_time_difference_error():
    sines = RandomSines(p_abs=0.0, p_window=0.0)
    pde = Advection(beta=1.0, t_final=0.1, n_times=41)
    grid = pde.grid(64)
    u0 = sines.sample(2, grid, seeded(2))[:, None]
    u = pde.solve(u0, grid)
    residual = pde.residual(u, u0, grid)
    assert residual.shape == u.shape
    # u_t = -beta u_x, |u_t| up to about 2 pi * 8 * 4; second-order differences with dt = 1/400
    assert residual.abs().max() < 1e-2 * (u[:, 1:] - u[:, :-1]).abs().max() / 0.0025


def test_random_sines_law():
    sines = RandomSines()
    draws = sines.draw(4000, seeded(3))
    assert draws.shape == (4000, 2 + 8 + 5)
    # the first m of n samples are the m samples from the same state, at any resolution
    assert torch.equal(sines.draw(5, seeded(3)), draws[:5])
    coarse, fine = Advection().grid(32), Advection().grid(128)
    assert torch.allclose(sines.sample(5, coarse, seeded(3)), sines.sample(5, fine, seeded(3))[:, ::4], atol=1e-14)
    (x,) = fine.axes(torch.float64)
    u = sines.evaluate(draws, x)
    windowed = (u[:, :5].abs() < 1e-6).all(1) & (u[:, -5:].abs() < 1e-6).all(1)  # zero near both ends
    assert 0.08 < windowed.double().mean() < 0.12
    # |.| with probability 0.1: it changes the samples whose sum of sines changes sign
    changed = (u != RandomSines(p_abs=0.0).evaluate(draws, x)).any(1)
    assert 0.07 < changed.double().mean() < 0.11
    assert 0.46 < (u.mean(1) > 0).double().mean() < 0.54  # sign flips with probability 1/2
    assert u.abs().max() <= 4 and u.std() > 0.3
    with pytest.raises(ValueError, match="periodic 1D grid"):
        sines.sample(2, Grid((8, 8), periodic=True), seeded(0))


def test_burgers_pdebench_uses_the_same_initial_conditions():
    grid = Advection().grid(64)
    assert torch.equal(BurgersPDEBench().sample_input(3, grid, seeded(4)), Advection().sample_input(3, grid, seeded(4)))


def test_dataset_is_reproducible(tmp_path):
    pde = Advection(n_times=11, t_final=0.1)
    paths = [
        generate_dataset(pde, 3, 64, tmp_path / f"a{i}.h5", seed=3, chunk_size=2, progress=False) for i in range(2)
    ]
    with h5py.File(paths[0]) as a, h5py.File(paths[1]) as b:
        assert a["outputs"].shape == (3, 11, 1, 64)
        assert np.array_equal(a["outputs"][:], b["outputs"][:])
        assert np.allclose(a["outputs"][:, 0], a["inputs"][:])  # the first frame is t = 0
        assert np.allclose(a["time"][:], np.linspace(0, 0.1, 11))


@pytest.mark.parametrize(
    "kwargs", [dict(beta=math.inf), dict(n_times=1), dict(t_final=-1.0), dict(k_max=0), dict(refine=1.5)]
)
def test_invalid_parameters(kwargs):
    with pytest.raises(ValueError):
        Advection(**kwargs)
