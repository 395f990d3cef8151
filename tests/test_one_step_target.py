"""train.target=increment and train.loss=mse of the one_step task (the fair one-step baseline of PDE-Refiner)."""

import pytest
import torch
from helpers import tiny_config

from oplearn.config import load_config
from oplearn.data.files import load_fields
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.errors import ConfigError
from oplearn.metrics import relative_l2
from oplearn.training.run import load_run, train


@pytest.fixture(scope="module")
def ks(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "ks.h5"
    pde = make_pde("kuramoto_sivashinsky", {"length": 32.0, "t_final": 8.0, "n_times": 10, "burn_in": 20.0})
    return generate_dataset(pde, 20, 32, path, seed=0, progress=False)


def test_an_increment_model_adds_its_normalised_increment_to_the_last_frame(ks, tmp_path):
    model = {"name": "fno", "modes": 12, "width": 16, "n_layers": 2, "projection_channels": 32}
    config = tiny_config(
        tmp_path / "c.yaml",
        ks,
        epochs=6,
        model=model,
        task="one_step",
        positional_features=False,
        target="increment",
        loss="mse",
    )
    train(load_config(config), tmp_path / "run", progress=False)
    run, _ = load_run(tmp_path / "run")
    trajectories = load_fields(ks).outputs[12:]  # the validation trajectories, (8, 10, 1, 32)
    x, y = trajectories[:, :-1].flatten(0, 1), trajectories[:, 1:].flatten(0, 1)
    with torch.no_grad():
        pred = run(x)
        increment = run.output_norm.decode(run.net(run.input_norm.encode(x)))
    torch.testing.assert_close(pred, x + increment)
    # the output normaliser holds the increments' moments, much smaller than the frames'
    assert float(run.output_norm.std) < 0.5 * float(run.input_norm.std)
    # trained briefly, it beats persistence (the increment 0) by far
    assert float(relative_l2(pred, y).mean()) < 0.5 * float(relative_l2(x, y).mean())


def test_the_options_belong_to_the_one_step_task(ks, tmp_path):
    for option in ("train.target=increment", "train.loss=mse"):
        with pytest.raises(ConfigError, match="options of train.task=one_step"):
            load_config(tiny_config(tmp_path / "c.yaml", ks), [option])
