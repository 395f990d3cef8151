"""train.task=points end to end: GINO learns a mesh dataset, is evaluated zero-shot on finer
meshes and reported on the meshes; a run stopped and resumed reaches the same weights; the
mollified GNO trains from the physics loss alone; configs that cannot work are refused."""

import json

import pytest
import torch
from helpers import one_thread, run_cli  # noqa: F401

from oplearn.config import validate_config
from oplearn.data.generate import generate_dataset
from oplearn.errors import ConfigError
from oplearn.geometry.task import PointTask
from oplearn.pdes import DarcyFEM, NonlinearPoissonFEM, PoissonFEM
from oplearn.report import make_report
from oplearn.training.run import train

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = {"latent": 8, "modes": 3, "width": 8, "n_layers": 2, "kernel_width": 16, "projection_channels": 16}


@pytest.fixture(scope="module")
def poisson(tmp_path_factory):
    root = tmp_path_factory.mktemp("poisson")
    pde = PoissonFEM(family={"holes": 1})
    return (
        generate_dataset(pde, 20, 10, root / "train.h5", seed=0, progress=False),
        generate_dataset(pde, 4, 10, root / "test.h5", seed=1, progress=False),
        generate_dataset(pde, 4, 19, root / "test_fine.h5", seed=1, progress=False),
    )


def config(data, test=(), epochs=4, model=None, **points):
    return validate_config(
        {
            "seed": 0,
            "data": {
                "path": str(data),
                "n_train": 16,
                "n_val": 4,
                "batch_size": 2,
                "test": [{"path": str(t)} for t in test],
            },
            "model": {"name": "gino", **SMALL, **(model or {})},
            "train": {"task": "points", "epochs": epochs, "lr": 1e-2, "threads": 1},
            **({"points": points} if points else {}),
        }
    )


def test_gino_trains_evaluates_zero_shot_and_reports(poisson, tmp_path):
    train_file, test, fine = poisson
    train(config(train_file, [test, fine], epochs=8), tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert (
        log[-1]["train_loss"] < 0.8 * log[0]["train_loss"]
        and log[-1]["val_relative_l2"] < 0.9 * log[0]["val_relative_l2"]
    ), log
    report = make_report(tmp_path / "run").parent
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]
    assert [r["path"] for r in rows] == [str(test), str(fine)]  # coarse meshes first
    assert rows[1]["mean_nodes"] > 2.5 * rows[0]["mean_nodes"]
    assert all(r["metrics"]["relative_l2"] < 0.9 for r in rows)
    assert rows[1]["metrics"]["relative_l2"] < 1.5 * rows[0]["metrics"]["relative_l2"]  # zero-shot on 2x finer meshes
    assert len(list(report.glob("test_samples_of_*.png"))) == 2


def test_stopped_and_resumed_run_reaches_the_same_weights(poisson, tmp_path, monkeypatch):
    cfg = config(poisson[0], epochs=3)
    train(cfg, tmp_path / "whole", progress=False)
    loss = PointTask.loss
    calls = []

    def dies(self, *args):
        calls.append(1)
        if len(calls) == 20:  # in the third epoch (8 batches per epoch)
            raise KeyboardInterrupt
        return loss(self, *args)

    monkeypatch.setattr(PointTask, "loss", dies)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(PointTask, "loss", loss)
    train(cfg, tmp_path / "resumed", resume=True, progress=False)
    whole, resumed = (
        torch.load(tmp_path / r / "checkpoints" / "last.pt", weights_only=True) for r in ("whole", "resumed")
    )
    for key, value in whole["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=1e-6, msg=key)


def test_mollified_gno_trains_from_the_physics_loss_alone(tmp_path):
    """The plumbing of points.physics_weight: no stored solution enters, the loss and the
    validation error against the finite-element solutions fall (the physics loss itself is
    tested in test_point_physics)."""
    data = generate_dataset(NonlinearPoissonFEM(family={"holes": 1}), 6, 10, tmp_path / "p.h5", seed=0, progress=False)
    cfg = validate_config(
        {
            "data": {"path": str(data), "n_train": 4, "n_val": 2, "batch_size": 1},
            "model": {"name": "mgno", **SMALL, "width": 16, "kernel_width": 32, "latent": 12, "radius": 2.0},
            "points": {"data_weight": 0.0, "physics_weight": 1.0, "output_scale": 0.5},
            "train": {"task": "points", "epochs": 8, "lr": 1e-2, "threads": 1},
        }
    )
    train(cfg, tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert (
        log[-1]["train_loss"] < 0.95 * log[0]["train_loss"]
        and log[-1]["val_relative_l2"] < 0.9 * log[0]["val_relative_l2"]
    ), log


def test_configs_that_cannot_work_are_refused(poisson, tmp_path):
    with pytest.raises(ConfigError, match="use model.name=mgno"):
        config(poisson[0], physics_weight=1.0)
    with pytest.raises(ConfigError, match="does not fit train.task=points"):
        validate_config({"data": {"path": "x.h5"}, "model": {"name": "fno"}, "train": {"task": "points"}})
    with pytest.raises(ConfigError, match="nothing to learn"):
        config(poisson[0], data_weight=0.0)
    darcy = generate_dataset(DarcyFEM(), 20, 8, tmp_path / "darcy.h5", progress=False)
    with pytest.raises(ConfigError, match="pointwise residual"):
        train(config(darcy, model={"name": "mgno"}, physics_weight=1.0), tmp_path / "never", progress=False)


def test_cli_train_on_a_grid_file_says_what_is_wrong(tmp_path):
    from oplearn.pdes import Darcy

    grid = generate_dataset(Darcy(), 4, 8, tmp_path / "grid.h5", progress=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        json.dumps(
            {"data": {"path": str(grid), "n_train": 4}, "model": {"name": "gino", **SMALL}, "train": {"task": "points"}}
        )
    )
    proc = run_cli("train", cfg, "--out", tmp_path / "run", check=False)
    assert proc.returncode == 2 and "holds grid fields, not meshes" in proc.stderr and "Traceback" not in proc.stderr
