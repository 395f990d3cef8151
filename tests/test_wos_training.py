"""The WoS Poisson family, its finite-difference reference, WoS-supervised operator training and neural WoS."""

import json

import pytest
import torch
import yaml
from helpers import one_thread, train_whole_and_resumed  # noqa: F401 (the fixture must be importable here)

from oplearn.config import validate_config
from oplearn.errors import ConfigError
from oplearn.grids import Grid
from oplearn.report import make_report
from oplearn.training.run import train
from oplearn.training.tasks import EvaluateOptions
from oplearn.wos import Box, DirichletProblem, walk_on_spheres
from oplearn.wos.neural import MLP, NeuralWoSConfig, train_neural_wos
from oplearn.wos.problems import SQUARE, PoissonFamily
from oplearn.wos.training import WoSTask, interpolate

pytestmark = pytest.mark.usefixtures("one_thread")


def gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def problems():
    return PoissonFamily().sample(3, gen(0))


def test_reference_agrees_with_walk_on_spheres(problems):
    """The Shortley-Weller solution at interior nodes is within the WoS error bars (plus its O(h^2))."""
    grid = Grid((33, 33), SQUARE)
    u, inside = problems.reference(grid)
    nodes = inside[1].nonzero()[::60][:8]
    points = grid.coordinates(torch.float64)[:, nodes[:, 0], nodes[:, 1]].T
    est = walk_on_spheres(
        problems, points, 1000, group=torch.ones(len(points), dtype=torch.long), epsilon=1e-4, generator=gen(1)
    )
    diff = (est.mean - u[1][nodes[:, 0], nodes[:, 1]]).abs()
    assert (diff < 4.5 * est.stderr + 2e-3).all(), (diff, est.stderr)


def test_reference_converges_second_order(problems):
    fine, _ = problems[:1].reference(Grid((129, 129), SQUARE))
    errors = []
    for n, r in ((17, 8), (33, 4)):
        u, inside = problems[:1].reference(Grid((n, n), SQUARE))
        errors.append((u - fine[:, ::r, ::r])[inside].abs().max().item())
    assert errors[0] / errors[1] > 2.5, errors


def test_interpolate_is_exact_for_bilinear_fields():
    grid = Grid((9, 9), SQUARE)
    x = grid.coordinates(torch.float64)
    u = (1 + 2 * x[0] - 3 * x[1] + 0.5 * x[0] * x[1])[None, None]
    points = torch.rand((1, 20, 2), generator=gen(2), dtype=torch.float64)
    exact = 1 + 2 * points[..., 0] - 3 * points[..., 1] + 0.5 * points[..., 0] * points[..., 1]
    assert torch.allclose(interpolate(u, points), exact)


def tiny_wos_config(**wos):
    return validate_config(
        {
            "seed": 0,
            "data": {"batch_size": 4},
            "wos": {"n_train": 12, "n_val": 4, "resolution": 17, "points": 32, "walks": 4, **wos},
            "model": {"name": "fno", "modes": 6, "width": 16, "n_layers": 2, "projection_channels": 32},
            "train": {"task": "wos", "epochs": 6, "lr": 5e-3, "threads": 1, "device": "cpu", "scheduler": "constant"},
        }
    )


def test_running_mean_targets_converge():
    """The cached targets average every epoch's walks: their error falls like 1 / sqrt(epochs)."""
    task = WoSTask(tiny_wos_config(n_train=2, n_val=0, points=16, walks=2), progress=False)
    idx = torch.arange(2)
    truth = walk_on_spheres(
        task.problems, task.points.flatten(0, 1), 400, group=idx.repeat_interleave(16), epsilon=1e-3, generator=gen(3)
    ).mean.view(2, 16)
    errors = []
    for epoch in range(9):
        task.start_epoch(epoch)
        if epoch in (0, 8):
            errors.append((task.targets(idx) - truth).pow(2).mean().sqrt().item())
    assert int(task.walks[0]) == 18
    assert 1.8 < errors[0] / errors[1] < 5, errors  # sqrt(9) = 3


def test_wos_task_trains_and_saves_cache(tmp_path):
    config = tiny_wos_config()
    train(config, tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < 0.6 * log[0]["train_loss"]
    assert log[-1]["val_relative_l2"] < 0.6 * log[0]["val_relative_l2"]
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert (state["task"]["walks"] == 6 * 4).all()
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["train"]["task"] == "wos" and saved["data"]["path"] is None
    # evaluated on held-out problems against the finite-difference reference, and reported
    report = make_report(tmp_path / "run", options=EvaluateOptions(samples=4)).parent
    (row,) = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]
    assert row["n"] == 4 and row["metrics"]["relative_l2"] < 0.6
    assert row["metrics"]["relative_l2"] == pytest.approx(log[-1]["val_relative_l2"], rel=0.5)
    assert (report / "held_out.png").stat().st_size > 1000


def test_wos_config_validation():
    with pytest.raises(ConfigError, match="wos section configures train.task=wos"):
        validate_config({"data": {"path": "x.h5"}, "wos": {}})
    with pytest.raises(ConfigError, match="missing required key 'data.path'"):
        validate_config({"train": {"task": "map"}})
    with pytest.raises(ConfigError, match="fit in the unit square"):
        validate_config({"train": {"task": "wos"}, "wos": {"family": {"radius": 0.45}}})


def test_neural_wos_10d():
    r"""u = mean_i sin(x_i) + x_1 x_2 on [-1, 1]^10 (f = -mean_i sin(x_i)): the bootstrapped loss
    alone (no solver, no derivatives) brings the relative L2 error from ~1 below 0.25 in 300 small steps."""
    d = 10
    u = lambda x: torch.sin(x).mean(-1) + x[..., 0] * x[..., 1]
    box = Box((-1.0,) * d, (1.0,) * d)
    problem = DirichletProblem(box, u, lambda x: -torch.sin(x).mean(-1))
    torch.manual_seed(0)
    net = MLP(d)
    test = box.sample(1000, gen(4), dtype=torch.float32)
    error = lambda: ((net(test) - u(test)).norm() / u(test).norm()).item()
    before = error()
    losses = train_neural_wos(net, problem, NeuralWoSConfig(steps=300, batch=64, lr=3e-3))
    assert error() < 0.25 and error() < 0.25 * before, (before, error())
    assert sum(losses[-10:]) < 0.2 * sum(losses[:10])


def test_wos_run_stopped_and_resumed_reaches_the_same_weights(tmp_path, monkeypatch):
    """The cache is in the checkpoint and the walks are seeded by epoch: a resumed run
    reproduces the uninterrupted one."""
    config = tiny_wos_config(n_train=8, n_val=0)
    config.train.epochs = 4
    whole, resumed = train_whole_and_resumed(config, tmp_path, WoSTask, monkeypatch)
    assert torch.equal(whole["task"]["sums"], resumed["task"]["sums"])
    for key, value in whole["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=1e-6, msg=key)
