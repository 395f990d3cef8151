"""Density samplers through the shared training loop (``train.task: sampler``): config checks,
exact resume, and ``oplearn train / evaluate / report`` end to end."""

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from helpers import SRC, one_thread, run_cli, train_whole_and_resumed  # noqa: F401

from oplearn.config import load_config, shipped_configs, validate_config
from oplearn.errors import ConfigError
from oplearn.sampling.task import SamplerTask, interval
from oplearn.seeding import generator
from oplearn.training.run import train

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(**sampling):
    return validate_config(
        {
            "seed": 3,
            "data": {"batch_size": 16},
            "train": {
                "task": "sampler",
                "epochs": 4,
                "lr": 5e-3,
                "weight_decay": 0.0,
                "clip_grad_norm": 1.0,
                "device": "cpu",
            },
            "sampling": {
                "target": "gaussian",
                "target_params": {"dim": 2, "mean": [1.0, -0.5], "scale": 0.7},
                "method": "cmcd",
                "method_params": {"steps": 6},
                "loss": "log_variance",
                "exploration": 0.2,
                "iterations": 3,
                "net": {"width": 16, "depth": 1},
                "validation_samples": 256,
                **sampling,
            },
        }
    )


def test_sampler_config_is_checked():
    for sampling, message in [
        ({"target": "banana"}, "sampling.target 'banana' is unknown"),
        ({"method": "smc"}, "learns nothing and is not trained"),
        ({"loss": "kl", "exploration": 0.5}, "the kl loss is on-policy"),
        ({"method_params": {"friction_coefficient": 1.0}}, "method_params: unknown parameter"),
        ({"target_params": {"modes": 3}}, "target_params: unknown parameter"),
        (
            {"method": "scld", "loss": "kl", "exploration": 0.0, "method_params": {"steps": 6, "replay_capacity": 64}},
            "the replay buffer trains the off-policy log_variance loss",
        ),
        ({"loss": "kl", "exploration": 0.0, "local_search": {}}, "local_search trains the off-policy losses"),
        ({"method": "scld", "local_search": {}}, "local_search trains the off-policy losses"),
        ({"local_search": {"burn_in": -1}}, "burn_in"),
    ]:
        with pytest.raises(ConfigError, match=message):
            tiny_config(**sampling)
    with pytest.raises(ConfigError, match="sampling section configures train.task=sampler"):
        validate_config({"data": {"path": "x.h5"}, "sampling": {}})
    assert interval([1.0, 3.0]) == pytest.approx([2.0, 12.706], rel=1e-4)  # t(0.975, 1) * s / sqrt(2), s = sqrt(2)


def test_sampler_run_stopped_and_resumed_reaches_the_same_weights(tmp_path, monkeypatch):
    """Paths are seeded by (seed, epoch, step), the evaluation count is in the checkpoint: a run
    killed after two epochs and resumed ends with the uninterrupted run's weights; training
    raises the validation ELBO."""
    config = tiny_config()
    whole, resumed = train_whole_and_resumed(config, tmp_path, SamplerTask, monkeypatch)
    assert whole["task"]["evaluations"] == resumed["task"]["evaluations"] == 4 * 3 * 16 * 7
    for key, value in whole["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=0, msg=key)
    log = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["val_elbo"] > log[0]["val_elbo"]


def test_scld_run_with_replay_and_moves_resumes_exactly(tmp_path, monkeypatch):
    """The replay buffers are part of the checkpoint: an SCLD run with replay and HMC moves killed
    after one epoch and resumed ends with the uninterrupted run's weights and buffers."""
    config = tiny_config(
        method="scld",
        method_params={"steps": 6, "segments": 2, "mcmc": "hmc", "mcmc_step_size": 0.1, "replay_capacity": 40},
        iterations=2,
        validation_samples=64,
    )
    config.train.epochs = 2
    whole, resumed = train_whole_and_resumed(config, tmp_path, SamplerTask, monkeypatch, stop_epoch=1)
    assert int(whole["model"]["sampler.replay.0.size"]) == 40  # 4 steps of 16 fresh paths, capped
    assert whole["model"].keys() == resumed["model"].keys()
    for key, value in whole["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=0, msg=key)


def test_local_search_run_resumes_exactly(tmp_path, monkeypatch):
    """The local-search buffers, step counter and adapted MALA step are part of the checkpoint."""
    config = tiny_config(local_search={"capacity": 500, "cycle": 4, "mcmc_steps": 6, "burn_in": 2})
    whole, resumed = train_whole_and_resumed(config, tmp_path, SamplerTask, monkeypatch)
    assert int(whole["model"]["loss.local_search.step"]) == 4 * 3
    assert int(whole["model"]["loss.local_search.refined.size"]) == 3 * 4 * 16  # steps 1, 5, 9
    assert float(whole["model"]["loss.local_search.step_size"]) != 0.1
    for key, value in whole["model"].items():
        torch.testing.assert_close(resumed["model"][key], value, rtol=0, atol=0, msg=key)


def test_trajectory_balance_log_Z_starts_at_the_elbo_with_its_own_learning_rate(tmp_path):
    config = tiny_config(loss="trajectory_balance", log_z_lr=0.3)
    task = SamplerTask(config, progress=False)
    torch.manual_seed(config.seed)
    model = task.build_model()
    elbo = model.sampler.estimate(256, generator(config.seed, 22)).elbo
    assert float(model.loss.log_Z.detach()) == pytest.approx(elbo) and abs(elbo) > 0.1
    assert task.evaluations == 256 * 7  # the initial paths count as training's
    network, log_Z = task.parameter_groups(model)
    assert log_Z == {"params": [model.loss.log_Z], "lr": 0.3, "weight_decay": 0.0}
    assert len(network["params"]) == len(list(model.sampler.parameters()))
    train(config, tmp_path / "run", progress=False)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["optimizer"]["param_groups"][1]["initial_lr"] == 0.3


def test_sampler_train_evaluate_report_end_to_end(tmp_path):
    config = Path(SRC).parent / "configs" / "sample_gmm40_dis.yaml"
    assert yaml.safe_load(config.read_text())["train"]["task"] == "sampler"
    small = [
        "--set",
        "sampling.method_params.steps=8",
        "--set",
        "data.batch_size=16",
        "--set",
        "sampling.iterations=2",
        "--set",
        "train.epochs=2",
        "--set",
        "sampling.validation_samples=64",
        "--set",
        "sampling.net.width=16",
        "--set",
        "sampling.eval_samples=100",
        "--set",
        "sampling.eval_seeds=2",
    ]
    run_cli("train", config, "--out", tmp_path / "run", *small)
    proc = run_cli("evaluate", tmp_path / "run", "--samples", "200", "--seeds", "2")
    assert "log_Z_error" in proc.stdout
    (row,) = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]
    for key in ("log_Z_error", "elbo", "eubo", "ess", "w2", "mmd", "mode_coverage"):
        estimate, half_width = row["metrics"][key]
        assert math.isfinite(estimate) and half_width >= 0, key
    assert row["seeds"] == 2 and row["n_samples"] == 200
    assert row["metrics"]["elbo"][0] < 0 < row["metrics"]["eubo"][0]  # log Z = 0 lies between the bounds
    run_cli("report", tmp_path / "run")
    report = tmp_path / "run" / "report"
    for figure in ("marginals.png", "modes.png", "training_metrics.png"):
        assert (report / figure).stat().st_size > 1000, figure
    proc = run_cli("train", config, "--out", tmp_path / "bad", "--set", "sampling.method=nuts", check=False)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "sampling.method 'nuts' is unknown" in proc.stderr


SAMPLER_CONFIGS = [
    name
    for name, path in shipped_configs().items()
    if yaml.safe_load(path.read_text())["train"].get("task") == "sampler"
]


@pytest.mark.parametrize("name", SAMPLER_CONFIGS)
def test_each_shipped_sampler_config_trains_and_validates(name, tmp_path):
    """Every shipped sampler config, shrunk (8 steps, 2 optimiser steps, a narrow net), trains
    through the task and ends with a finite validation ELBO."""
    config = load_config(
        name,
        [
            "sampling.method_params.steps=8",  # a multiple of SCLD's 4 segments
            "sampling.iterations=2",
            "sampling.net.width=8",
            "sampling.validation_samples=32",
            "data.batch_size=8",
            "train.epochs=1",
        ],
    )
    train(config, tmp_path / name, progress=False)
    (record,) = [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]
    assert math.isfinite(record["val_elbo"]), record
