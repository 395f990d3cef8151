"""Every shipped config trains one epoch with every registered grid model, switched with
``--set model.name=X`` (X's defaults, then a few size keys), on tiny data."""

from __future__ import annotations

import math

import pytest
import torch

from oplearn.config import MODEL_CONFIGS, load_config, shipped_configs
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.errors import ConfigError
from oplearn.training.run import train
from oplearn.training.rundir import open_run
from oplearn.training.tasks import task_class

#: Size keys set after the switch, for the models that have them (the rest keep their defaults).
SMALL_MODEL = {
    "modes": 4,
    "width": 8,
    "n_layers": 2,
    "projection_channels": 8,
    "levels": 2,
    "n_blocks": 2,
    "branch_width": 16,
    "trunk_width": 16,
    "basis": 8,
}
#: Tiny data for each kind of config: a 16x16 Darcy file, 16 x 32 shallow-water trajectories for the
#: configs on the sphere, a 16x16 Kolmogorov-flow trajectory file for the other tasks of
#: :data:`TRAJECTORY_TASKS`, or few walk-on-spheres problems.
SMALL_DATA = {
    "data": ["data.generate=null", "data.test=[]", "data.n_train=8", "data.n_val=4", "data.batch_size=4"],
    "wos": ["wos.n_train=2", "wos.n_val=1", "wos.points=8", "data.batch_size=2"],
}

TRAJECTORY_TASKS = ("one_step", "refiner", "coarse_graining")
#: Models tied to the grid they were built for: the coarse-graining task with a PDE loss, which evaluates the
#: model on a finer grid as well, refuses them.
GRID_BOUND = ("unet", "deeponet")

GRID_MODELS = [name for name, config in MODEL_CONFIGS.items() if config.kind == "grid"]
CONFIGS = [
    name for name, path in shipped_configs().items() if "grid" in task_class(load_config(path).train.task).model_kinds
]  # configs that train grid models


@pytest.fixture(scope="module")
def darcy(tmp_path_factory):
    path = tmp_path_factory.mktemp("configs") / "darcy16.h5"
    return generate_dataset(make_pde("darcy"), 12, 16, path, seed=0, progress=False)


@pytest.fixture(scope="module")
def shallow_water(tmp_path_factory):
    """Trajectories on the sphere (16 x 32), for the configs that learn time steps on the sphere."""
    path = tmp_path_factory.mktemp("configs") / "swe16.h5"
    pde = make_pde("shallow_water", {"t_final": 6.0, "n_times": 3, "dt": 1800.0})
    return generate_dataset(pde, 12, 16, path, seed=0, progress=False)


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    path = tmp_path_factory.mktemp("configs") / "kolmogorov16.h5"
    pde = make_pde("kolmogorov_flow", {"t_final": 0.3, "n_times": 3, "burn_in": 0.5, "dt": 0.01})
    return generate_dataset(pde, 12, 16, path, seed=0, progress=False)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("model", GRID_MODELS)
def test_each_shipped_config_trains_each_grid_model(config, model, darcy, shallow_water, flow, tmp_path):
    base = load_config(config)
    on_sphere = base.data.generate is not None and base.data.generate.pde == "shallow_water"
    fields = shallow_water if on_sphere else flow if base.train.task in TRAJECTORY_TASKS else darcy
    data = SMALL_DATA["wos"] if base.train.task == "wos" else [*SMALL_DATA["data"], f"data.path={fields}"]
    sizes = [f"model.{k}={v}" for k, v in SMALL_MODEL.items() if k in MODEL_CONFIGS[model].model_fields]
    if model == "deeponet":  # its trunk reads the coordinate channels, which the KS configs leave out
        sizes.append("train.positional_features=true")
    resolved = load_config(config, [f"model.name={model}", *sizes, *data, "train.epochs=1", "train.threads=1"])
    assert resolved.model.name == model
    if base.train.task == "coarse_graining" and base.coarse_graining.pde_weight > 0 and model in GRID_BOUND:
        with pytest.raises(ConfigError, match="fine grid: choose a resolution-free model"):
            train(resolved, tmp_path / "run", progress=False)
        return
    train(resolved, tmp_path / "run", progress=False)
    run = open_run(tmp_path / "run")
    operator = run.model.denoiser if base.train.task == "refiner" else run.model
    assert type(operator.net).__name__ == type(resolved.model.build(3, 1, 2, grid_shape=(16, 16))).__name__
    assert run.epoch == 1 and all(math.isfinite(r["train_loss"]) for r in run.log())


def test_every_model_is_exported_from_oplearn_models():
    import oplearn.models

    for name, config in MODEL_CONFIGS.items():
        if config.kind != "grid":
            continue
        cls = type(config().build(3, 1, 2, grid_shape=(32, 32)))
        assert getattr(oplearn.models, cls.__name__, None) is cls, f"{name}: {cls.__name__} is not in oplearn.models"
        assert cls.__name__ in oplearn.models.__all__


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
