"""train.ema_decay: the moving average of the weights, its formula and an exact resume."""

import pytest
import torch
from helpers import tiny_config, train_whole_and_resumed
from torch import nn

from oplearn.config import load_config
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.training.averaging import WeightAverage
from oplearn.training.run import load_run
from oplearn.training.tasks import MapTask


def test_the_average_follows_the_warmed_up_exponential_weights():
    """theta_bar_3 = b3 b2 b1 theta_0 + b3 b2 (1 - b1) theta_1 + b3 (1 - b2) theta_2 + (1 - b3) theta_3
    with b_t = min(decay, (1 + t) / (10 + t)); buffers follow the model."""
    model = nn.BatchNorm1d(1)  # one weight, one bias, running statistics (buffers)
    thetas = [torch.tensor([1.0]), torch.tensor([5.0]), torch.tensor([-2.0]), torch.tensor([7.0])]
    model.weight.data.copy_(thetas[0])
    average = WeightAverage(model, decay=0.3)
    for theta in thetas[1:]:
        model.weight.data.copy_(theta)
        model.running_mean.add_(1.0)
        average.update(model)
    b1, b2, b3 = 2 / 11, 3 / 12, 0.3  # the warm-up, then the decay caps it: 4 / 13 > 0.3
    expected = b3 * b2 * b1 * 1.0 + b3 * b2 * (1 - b1) * 5.0 + b3 * (1 - b2) * -2.0 + (1 - b3) * 7.0
    assert float(average.model.weight) == pytest.approx(expected, rel=1e-6)
    assert float(average.model.running_mean) == 3.0 and average.updates == 3
    assert not average.model.weight.requires_grad


@pytest.fixture(scope="module")
def darcy(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "darcy12.h5"
    return generate_dataset(make_pde("darcy"), 24, 12, path, seed=0, progress=False)


def test_averaged_run_saves_the_average_and_resumes_exactly(tmp_path, darcy, monkeypatch):
    config = load_config(tiny_config(tmp_path / "c.yaml", darcy, epochs=3, ema_decay=0.9))
    whole, resumed = train_whole_and_resumed(config, tmp_path, MapTask, monkeypatch)
    assert whole["average_updates"] == resumed["average_updates"] == 3 * 2  # 16 training samples, batches of 8
    for key in ("model", "trained_model"):
        for name, value in whole[key].items():
            torch.testing.assert_close(resumed[key][name], value, rtol=0, atol=0, msg=f"{key}.{name}")
    # the run's model is the average, which differs from the optimiser's last weights
    model, _ = load_run(tmp_path / "whole", "last")
    weights = dict(model.named_parameters())
    assert any(
        not torch.equal(weights[name], value) for name, value in whole["trained_model"].items() if name in weights
    )
    for name, value in whole["model"].items():
        torch.testing.assert_close(model.state_dict()[name], value, rtol=0, atol=0)
