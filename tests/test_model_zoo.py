"""Every registered model trains through the common run machinery and reloads from its checkpoint."""

import json
import math

import pytest
import torch
from helpers import tiny_config

from oplearn.config import MODEL_CONFIGS, load_config
from oplearn.data.files import load_fields
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.errors import DataError
from oplearn.evaluate import evaluate_fields
from oplearn.training.run import load_run, train

NAMES = [name for name, config in MODEL_CONFIGS.items() if config.kind == "grid"]
SMALL = {
    "fno": {"modes": 4, "width": 8},
    "tfno": {"modes": 4, "width": 8, "rank": 0.2},
    "uno": {"modes": 4, "width": 4},
    "local_fno": {"modes": 4, "width": 8, "radius": 0.15},
    "unet": {"width": 8, "levels": 2},
    "deeponet": {"branch_width": 16, "trunk_width": 16, "basis": 8},
    "dil_resnet": {"width": 8, "n_blocks": 1},
    "sfno": {"modes": 4, "width": 8},
}


@pytest.fixture(scope="module")
def darcy(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    return (
        generate_dataset(make_pde("darcy"), 24, 16, root / "d16.h5", seed=0, progress=False),
        generate_dataset(make_pde("darcy"), 4, 31, root / "d31.h5", seed=1, progress=False),
    )


@pytest.mark.parametrize("name", NAMES)
def test_model_trains_and_reloads(tmp_path, darcy, name):
    train_file, fine_file = darcy
    path = tiny_config(tmp_path / "c.yaml", train_file, epochs=3, model={"name": name, **SMALL.get(name, {})})
    config = load_config(path)
    train(config, tmp_path / "run", progress=False)
    model, saved = load_run(tmp_path / "run")
    assert saved.model.name == name
    data = load_fields(train_file, limit=4)
    metrics, pred = evaluate_fields(model, data)
    assert pred.shape == data.outputs.shape and torch.isfinite(pred).all() and math.isfinite(metrics["relative_l2"])
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["train_loss"] < log[0]["train_loss"], log
    fine = load_fields(fine_file)
    if name in ("unet", "deeponet"):
        with pytest.raises(DataError, match="16x16.*31x31"):
            evaluate_fields(model, fine)
    else:
        _, pred = evaluate_fields(model, fine)
        assert pred.shape == fine.outputs.shape
