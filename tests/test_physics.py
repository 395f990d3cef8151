import json
import math

import h5py
import pytest
import torch
from helpers import run_cli, tiny_config
from problems import observed_order

from oplearn.config import load_config
from oplearn.data.files import read_meta
from oplearn.data.generate import generate_dataset
from oplearn.derivatives import divergence_form
from oplearn.errors import ConfigError, DataError
from oplearn.grids import Grid, boundary_values, subsample
from oplearn.pdes import Burgers, BurgersPDEBench, Darcy, NavierStokes, Poisson
from oplearn.physics import PhysicsLoss, inverse_laplacian, pde_from_meta, redraw_inputs
from oplearn.report import make_report
from oplearn.training.run import LAST, train
from oplearn.training.tasks import MapTask


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def smooth_coefficient(grid: Grid) -> torch.Tensor:
    """A smooth positive permeability ``(1, 1, *grid.shape)`` between 0.7 and 2.1."""
    x, y = grid.coordinates(torch.float64)
    return (1.4 + 0.6 * torch.sin(2 * math.pi * x) * torch.cos(3 * math.pi * y) + 0.1 * x)[None, None]


def compatible_source(grid: Grid) -> torch.Tensor:
    """A smooth source vanishing on the boundary (so the solution is smooth up to the corners)."""
    x, y = grid.coordinates(torch.float64)
    return (torch.sin(math.pi * x) * torch.sin(2 * math.pi * y) * (1 + x * y))[None, None]


def elliptic_orders(pde, inputs_on):
    """Interior losses of a 257^2 solve subsampled to 17, 33, 65 (a stand-in for the exact
    solution: its own discretisation error is 1/16 of the coarsest residual's or less)."""
    fine = pde.grid(257)
    inputs = inputs_on(fine)
    u = pde.solve(inputs, fine)
    assert PhysicsLoss(pde, fine)(u, inputs) < 1e-10  # the solver's own grid: round-off
    spacings, losses = [], []
    for k in (16, 8, 4):
        grid = pde.grid(256 // k + 1)
        terms = PhysicsLoss(pde, grid).terms(subsample(u, k, 2), subsample(inputs, k, 2))
        assert terms["boundary"].abs().max() == 0
        spacings.append(grid.spacing[0])
        losses.append(terms["interior"].item())
    return observed_order(spacings, losses), losses


def test_poisson_loss_of_the_solution_is_second_order():
    order, losses = elliptic_orders(Poisson(), compatible_source)
    assert losses[-1] < 1e-3 and 1.9 < order < 2.2, (order, losses)


def test_darcy_loss_of_the_solution_converges_between_first_and_second_order():
    # Second order in the smooth interior; the constant forcing does not vanish at the corners
    # where u = 0 on both edges, so u ~ r^2 log r there and the corner points alone converge
    # at first order in the root-mean-square norm: the observed order lies between the two.
    order, losses = elliptic_orders(Darcy(), smooth_coefficient)
    assert losses[-1] < 3e-3 and 1.2 < order < 1.8, (order, losses)


def test_darcy_loss_vanishes_on_the_data_grid_for_thresholded_coefficients():
    # The residual is the solver's own scheme: zero at its solution, whatever the coefficient
    # (the thresholded one's residual does not converge under refinement: u has kinks).
    pde = Darcy()
    grid = pde.grid(33)
    a = pde.sample_input(3, grid, seeded(1))
    u = pde.solve(a, grid).float()  # stored in float32, like dataset files
    loss = PhysicsLoss(pde, grid)
    assert loss(u, a) < 1e-5
    noisy = u + 1e-2 * u.abs().max() * torch.randn(u.shape, generator=seeded(2))
    assert loss(noisy, a) > 1e3 * loss(u, a) and loss(noisy, a) > 0.1
    shifted = u + 0.1 * u.std()  # right interior residual, wrong boundary values
    terms = PhysicsLoss(pde, grid, solution_scale=u.std().item()).terms(shifted, a)
    assert (terms["interior"] < 1e-5).all() and torch.allclose(terms["boundary"], torch.tensor(0.1), rtol=1e-4)
    # relative: the same for any forcing (u scales with f)
    scaled = Darcy(forcing=7.0)
    assert torch.allclose(
        PhysicsLoss(scaled, grid).terms(7 * noisy, a)["interior"], loss.terms(noisy, a)["interior"], rtol=1e-4
    )


def time_orders(make_pde, grid, u0, frame_counts):
    spacings, losses, last = [], [], None
    for n_times in frame_counts:
        pde = make_pde(n_times)
        u = pde.solve(u0, grid)
        loss = PhysicsLoss(pde, grid)
        spacings.append(pde.t_final / n_times)
        losses.append(loss(u, u0).item())
        last = (pde, loss, u)
    return observed_order(spacings, losses), losses, last


def test_burgers_loss_of_the_solution_is_second_order_in_the_frame_spacing():
    grid = Burgers().grid(64)
    u0 = Burgers(modes=4).sample_input(2, grid, seeded(3))
    order, losses, (_pde, loss, u) = time_orders(
        lambda n: Burgers(t_final=0.05, n_times=n, dt=1e-3), grid, u0, (10, 20, 40)
    )
    assert losses[-1] < 1e-3 and 1.8 < order < 2.2, (order, losses)
    assert set(loss.terms(u, u0)) == {"interior"}  # periodic, stored from t > 0: u0 enters the residual
    folded = u.flatten(1, 2)  # time as channels, as the map task predicts it
    assert torch.equal(loss(folded, u0), loss(u, u0))
    noisy = u + 1e-3 * u.abs().max() * torch.randn(u.shape, generator=seeded(4))
    assert loss(noisy, u0) > 100 * loss(u, u0)


def test_navier_stokes_loss_of_the_solution_is_second_order_in_the_frame_spacing():
    grid = NavierStokes().grid(32)
    w0 = NavierStokes(modes=4).sample_input(2, grid, seeded(5))
    make = lambda n: NavierStokes(nu=1e-3, t_final=0.2, n_times=n, dt=1e-3, modes=4)
    # (more frames reach the floor set by the spatial truncation at 32^2, about 5e-6)
    order, losses, (_pde, loss, w) = time_orders(make, grid, w0, (5, 10, 20))
    assert losses[-1] < 1e-3 and 1.8 < order < 2.2, (order, losses)
    noisy = w + 1e-3 * w.abs().max() * torch.randn(w.shape, generator=seeded(6))
    assert loss(noisy, w0) > 100 * loss(w, w0)


def test_initial_term_for_trajectories_stored_from_time_zero():
    pde = BurgersPDEBench(t_final=0.05, n_times=11, dt=1e-3)
    grid = pde.grid(64)
    u0 = pde.sample_input(2, grid, seeded(7))
    u = pde.solve(u0, grid)
    loss = PhysicsLoss(pde, grid)
    terms = loss.terms(u, u0)
    assert set(terms) == {"interior", "initial"} and (terms["initial"] < 1e-14).all()
    moved = u.clone()
    moved[:, 0] += 0.05 * u0  # frame 0 off the initial condition by 5%
    assert torch.allclose(loss.terms(moved, u0)["initial"], torch.full((2,), 0.05, dtype=torch.float64))
    only_initial = PhysicsLoss(pde, grid, weight=0.0, initial_weight=2.0)
    assert torch.allclose(only_initial(moved, u0), torch.tensor(0.1, dtype=torch.float64))


@pytest.mark.parametrize(
    "pde, resolution",
    [(Darcy(), 9), (Poisson(), 9), (Burgers(n_times=3), 16), (NavierStokes(t_final=0.3, n_times=3), 8)],
)
def test_gradients_reach_every_output_value(pde, resolution):
    grid = pde.grid(resolution)
    inputs = pde.sample_input(2, grid, seeded(8))
    outputs = (
        0.01 * torch.randn((2, *pde.output_shape(grid)), generator=seeded(9), dtype=torch.float64)
    ).requires_grad_(True)
    PhysicsLoss(pde, grid)(outputs, inputs).backward()
    assert torch.isfinite(outputs.grad).all() and (outputs.grad != 0).float().mean() > 0.9


def test_preconditioned_poisson_loss_is_the_relative_error():
    # (-Lap_h)^{-1} R(u) = -(u - u_h) at the interior nodes when u has the exact boundary values
    pde = Poisson()
    grid = pde.grid(33)
    f = pde.sample_input(3, grid, seeded(10))
    u = pde.solve(f, grid)
    error = torch.zeros_like(u)
    error[..., 1:-1, 1:-1] = (
        1e-2 * u.std() * torch.randn(error[..., 1:-1, 1:-1].shape, generator=seeded(11), dtype=torch.float64)
    )
    terms = PhysicsLoss(pde, grid, precondition=True).terms(u + error, f)
    expected = error.flatten(1).norm(dim=1) / u[..., 1:-1, 1:-1].flatten(1).norm(dim=1)
    assert torch.allclose(terms["interior"], expected, rtol=1e-8)
    plain = PhysicsLoss(pde, grid).terms(u + error, f)["interior"]
    assert (plain > 30 * expected).all()  # the plain norm amplifies rough errors by about k^2


def test_inverse_laplacian_inverts_the_periodic_and_dirichlet_laplacians():
    grid = Grid((16, 12), domain=((0.0, 2.0), (0.0, 1.0)), periodic=True)
    x, y = grid.coordinates(torch.float64)
    wave = torch.sin(math.pi * x) * torch.cos(4 * math.pi * y)
    assert torch.allclose(inverse_laplacian((math.pi**2 + 16 * math.pi**2) * wave, grid), wave, atol=1e-12)
    assert torch.allclose(
        inverse_laplacian(torch.ones(16, 12, dtype=torch.float64), grid),
        torch.full((16, 12), 1 / math.pi**2, dtype=torch.float64),
    )
    bounded = Grid((9, 7))
    u = torch.zeros(2, 9, 7, dtype=torch.float64)
    u[:, 1:-1, 1:-1] = torch.randn(2, 7, 5, generator=seeded(12), dtype=torch.float64)
    minus_laplacian = -divergence_form(u, torch.ones(9, 7, dtype=torch.float64), bounded)
    assert torch.allclose(inverse_laplacian(minus_laplacian, bounded), u[:, 1:-1, 1:-1], atol=1e-12)


def test_boundary_values_and_shape_errors():
    grid = Grid((4, 5))
    field = torch.arange(20.0).reshape(1, 4, 5)
    assert sorted(boundary_values(field, grid)[0].tolist()) == [0, 1, 2, 3, 4, 5, 9, 10, 14, 15, 16, 17, 18, 19]
    with pytest.raises(ValueError, match="no boundary"):
        boundary_values(field, Grid((4, 5), periodic=True))
    pde = Darcy()
    with pytest.raises(ValueError, match="outputs must have shape"):
        PhysicsLoss(pde, pde.grid(9))(torch.zeros(2, 2, 9, 9), torch.ones(2, 1, 9, 9))
    with pytest.raises(ValueError, match="bounded 2D grid"):
        PhysicsLoss(pde, Grid((9, 9), periodic=True))


@pytest.fixture(scope="module")
def darcy16(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "darcy16.h5"
    return generate_dataset(Darcy(), 40, 16, path, seed=3, chunk_size=8, progress=False)


def log_of(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_inputs_are_redrawn_on_a_finer_grid(darcy16):
    meta = read_meta(darcy16)
    pde, grid = pde_from_meta(meta)
    assert isinstance(pde, Darcy) and grid == pde.grid(16)
    fine = redraw_inputs(meta, grid.refine(3), 20)  # three chunks of 8, the last one cut
    assert fine.shape == (20, 1, 46, 46)
    with h5py.File(darcy16) as f:
        stored = torch.from_numpy(f["inputs"][:20])
    assert torch.equal(subsample(fine, 3, 2).float(), stored)


def test_data_free_darcy_training_lowers_the_residual_and_the_error(tmp_path, darcy16):
    config = load_config(
        tiny_config(tmp_path / "c.yaml", darcy16, epochs=12),
        [
            "data.n_train=24",
            "train.physics.data_weight=0",
            "train.physics.output_scale=0.02",
            "train.physics.precondition=true",
        ],
    )
    train(config, tmp_path / "run", progress=False)
    log = log_of(tmp_path / "run")
    assert log[-1]["train_loss"] < 0.6 * log[0]["train_loss"], log
    assert log[-1]["val_relative_l2"] < 0.6 * log[0]["val_relative_l2"], log
    report = make_report(tmp_path / "run", [darcy16])  # a PINO run's report adds its residual terms
    (row,) = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]
    terms = row["metrics"]
    assert terms["residual_interior_reference"] < 1e-3 < terms["residual_interior"] < 1.0
    assert "residual_interior" in report.with_name("report.md").read_text()


def test_data_free_training_never_reads_the_outputs(tmp_path, darcy16):
    changed = tmp_path / "changed.h5"
    changed.write_bytes(darcy16.read_bytes())
    with h5py.File(changed, "r+") as f:
        f["outputs"][...] = 5 * f["outputs"][...] + 1
    weights = []
    for path in (darcy16, changed):
        config = load_config(tiny_config(tmp_path / "c.yaml", path, epochs=1), ["train.physics.data_weight=0"])
        train(config, tmp_path / path.stem, progress=False)
        weights.append(torch.load(tmp_path / path.stem / LAST, weights_only=True)["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_labelled_subset_with_extra_inputs_and_a_finer_residual_grid(tmp_path, darcy16):
    overrides = ["data.n_train=4", "train.physics.extra_inputs=12", "train.physics.refine=2", "data.lazy=true"]
    config = load_config(tiny_config(tmp_path / "c.yaml", darcy16, epochs=3), overrides)
    task = MapTask(config, progress=False)
    assert len(task) == 16 and task.physics.inputs.shape == (16, 1, 31, 31)
    assert torch.equal(subsample(task.physics.inputs[:4], 2, 2), task.train.read(torch.arange(4)).inputs)
    assert not torch.equal(task.physics.inputs[4:8], task.physics.inputs[:4])  # fresh draws
    train(config, tmp_path / "run", progress=False)
    log = log_of(tmp_path / "run")
    assert log[-1]["train_loss"] < log[0]["train_loss"], log


def test_inputs_that_cannot_be_redrawn_are_refused(tmp_path, darcy16):
    edited = tmp_path / "edited.h5"
    edited.write_bytes(darcy16.read_bytes())
    with h5py.File(edited, "r+") as f:
        f["inputs"][0] = 1.0  # no longer the recipe's draw
    config = load_config(tiny_config(tmp_path / "c.yaml", edited), ["train.physics.refine=2"])
    with pytest.raises(DataError, match="cannot be redrawn"):
        MapTask(config, progress=False)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.physics.refine=0"], "key 'train.physics.refine'"),
        (["train.physics.wieght=1"], "unknown key 'train.physics.wieght' (did you mean 'train.physics.weight'?)"),
        (["train.physics.weight=0", "train.physics.data_weight=0"], "nothing to train"),
        (["train.physics.refine=2", "train.task=one_step"], "train.physics needs train.task=map"),
    ],
)
def test_config_errors_are_one_line(tmp_path, darcy16, overrides, message):
    with pytest.raises(ConfigError) as err:
        load_config(tiny_config(tmp_path / "c.yaml", darcy16), overrides)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_cli_reports_a_physics_config_error(tmp_path, darcy16):
    proc = run_cli(
        "train",
        tiny_config(tmp_path / "c.yaml", darcy16),
        "--out",
        tmp_path / "run",
        "--set",
        "train.physics.extra_inputs=-1",
        check=False,
    )
    assert proc.returncode == 2 and proc.stderr.startswith("error: config: key 'train.physics.extra_inputs'"), (
        proc.stderr
    )


def test_burgers_trajectories_train_on_the_physics_loss_alone(tmp_path):
    pde = Burgers(t_final=0.1, n_times=4, modes=8)
    path = generate_dataset(pde, 24, 32, tmp_path / "burgers.h5", seed=0, progress=False)
    config = load_config(
        tiny_config(tmp_path / "c.yaml", path, epochs=20),
        [
            "train.physics.data_weight=0",
            "train.physics.output_scale=1.0",
            "train.lr=0.01",
            "train.physics.precondition=true",
        ],
    )
    task = MapTask(config, progress=False)
    assert task.physics.loss_fn.pde.params() == pde.params()  # rebuilt from the file's metadata
    train(config, tmp_path / "run", progress=False)
    log = log_of(tmp_path / "run")
    assert log[-1]["train_loss"] < 0.5 * log[0]["train_loss"], log
    assert log[-1]["val_relative_l2"] < 0.5 * log[0]["val_relative_l2"], log
