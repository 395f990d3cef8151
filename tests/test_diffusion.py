"""Function-space diffusion: GRF noise, exact Gaussian prior, EDM preconditioning, denoiser, training task."""

import json
import math

import h5py
import pytest
import torch
import yaml
from helpers import one_thread, run_cli  # noqa: F401 (one_thread is a fixture)

from oplearn.config import validate_config
from oplearn.diffusion.denoiser import FNODenoiser
from oplearn.diffusion.edm import EDMDenoiser, edm_loss, edm_scalings, edm_weight, training_sigmas
from oplearn.diffusion.gaussian import GaussianPrior
from oplearn.diffusion.noise import GRFNoise, WhiteNoise
from oplearn.diffusion.samplers import sample
from oplearn.diffusion.schedules import karras_sigmas
from oplearn.errors import ConfigError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("periodic", [True, False])
def test_grf_noise_spectrum_and_resolution_consistency(periodic):
    noise = GRFNoise(alpha=1.5, tau=4.0, periodic=periodic)
    g = torch.Generator().manual_seed(0)
    variances = {}
    for n in (32, 64):
        eps = noise.sample((400, 2, n), g, dtype=torch.float64)
        modes = noise.to_modes(eps)
        empirical = modes.abs().square().mean((0, 1))
        predicted = noise.mode_variances((n,))
        # every coefficient has its predicted variance (400 x 2 draws: about 5% noise per mode)
        assert ((empirical / predicted).mean() - 1).abs() < 0.03
        assert ((empirical / predicted) - 1).abs().max() < 0.25
        assert math.isclose(eps.var().item(), noise.variance((n,)), rel_tol=0.05)
        # coefficients per unit box (periodic: per DFT mode / N) of a wavenumber do not depend on the grid
        variances[n] = predicted[:8] / (n if periodic else 1)
    assert torch.allclose(variances[32], variances[64])
    v = [noise.variance((n,)) for n in (16, 64, 256)]
    assert all(abs(x - 1) < 0.2 for x in v) and abs(v[-1] - 1) < abs(v[0] - 1)
    with pytest.raises(ValueError, match="alpha"):
        GRFNoise(alpha=1.0).sample((1, 1, 8, 8))


def test_grf_noise_modes_round_trip_2d():
    noise = GRFNoise(periodic=False, lengths=(1.0, 2.0))
    x = torch.randn(3, 1, 9, 12, dtype=torch.float64)
    assert torch.allclose(noise.from_modes(noise.to_modes(x)), x, atol=1e-9)
    assert noise.sample((2, 3, 9, 12)).shape == (2, 3, 9, 12)


@pytest.mark.parametrize("periodic", [True, False])
def test_grf_noise_covariance_operator_matches_samples(periodic):
    noise = GRFNoise(periodic=periodic, lengths=(1.0, 2.0))
    eye = torch.eye(20, dtype=torch.float64).reshape(20, 1, 5, 4)
    c = noise.covariance(eye).reshape(20, 20)
    x = noise.sample((20000, 1, 5, 4), torch.Generator().manual_seed(0), dtype=torch.float64).reshape(20000, 20)
    assert torch.allclose(c, c.T, atol=1e-12)
    assert (x.T @ x / len(x) - c).abs().max() < 0.05 * c.diagonal().max()
    assert torch.equal(WhiteNoise().covariance(eye), eye)


@pytest.mark.parametrize("periodic, white", [(True, True), (False, False)])
def test_gaussian_prior_exact_flow_and_samples(periodic, white):
    field = GRFNoise(alpha=2.5, tau=5.0, periodic=periodic)
    noise = WhiteNoise() if white else GRFNoise(alpha=2.0, tau=3.0, periodic=periodic)
    prior = GaussianPrior(field, noise, scale=0.5, mean=1.0)
    g = torch.Generator().manual_seed(0)
    x = 80.0 * noise.sample((200, 1, 16, 16), g, dtype=torch.float64)
    exact = prior.flow(x, 80.0, 0.0)
    out = sample(prior, x, karras_sigmas(40), "dpmpp3m")
    assert ((out - exact).norm() / (exact - 1.0).norm()).item() < 5e-3
    # the exact flow maps the noise to prior samples: coefficient variances match the prior's
    coefficient_var = field.to_modes(exact - 1.0).abs().square().mean(0)[0]
    ratio = coefficient_var / prior.variances((16, 16))[0]
    assert (ratio.mean() - 1).abs() < 0.05
    with pytest.raises(ValueError, match="periodic"):
        GaussianPrior(GRFNoise(periodic=False), WhiteNoise())


def test_edm_preconditioning_identities():
    sigma = torch.logspace(-3, 2, 20, dtype=torch.float64)
    sd = 0.7
    c_skip, c_out, c_in, c_noise = edm_scalings(sigma, sd)
    assert torch.allclose(c_in**2 * (sigma**2 + sd**2), torch.ones_like(sigma))  # unit-variance input
    assert torch.allclose(edm_weight(sigma, sd) * c_out**2, torch.ones_like(sigma))  # unit loss weight on F
    # the target of F, (x0 - c_skip x) / c_out, has unit variance for x0 of variance sd^2
    assert torch.allclose(((1 - c_skip) ** 2 * sd**2 + c_skip**2 * sigma**2) / c_out**2, torch.ones_like(sigma))
    assert torch.allclose(c_noise, sigma.log() / 4)
    s = training_sigmas(20000, -1.2, 1.2, torch.Generator().manual_seed(0))
    assert abs(s.log().mean().item() + 1.2) < 0.03 and abs(s.log().std().item() - 1.2) < 0.03


def test_edm_denoiser_with_oracle_network_has_zero_loss():
    x0 = torch.randn(4, 2, 8, 8, dtype=torch.float64)
    eps = torch.randn_like(x0)
    sigma = torch.tensor([0.01, 0.3, 2.0, 40.0], dtype=torch.float64)
    sd = 0.8

    class Oracle(torch.nn.Module):
        def forward(self, scaled, c_noise):  # recovers x and sigma, returns F's target
            s = (4 * c_noise).exp().view(-1, 1, 1, 1)
            x = scaled * (s**2 + sd**2).sqrt()
            c_skip, c_out, _, _ = edm_scalings(s, sd)
            return (x0 - c_skip * x) / c_out

    denoiser = EDMDenoiser(Oracle(), sigma_data=sd, channels=2).double()
    loss = edm_loss(denoiser, x0, eps, sigma, sd)
    assert loss.shape == (4,) and loss.max().item() < 1e-8
    assert edm_loss(lambda x, s: x0 + 0.1, x0, eps, sigma, sd).min().item() > 0


def test_denoiser_runs_at_several_resolutions_and_uses_sigma():
    torch.manual_seed(0)
    net = FNODenoiser(2, modes=4, width=8, scales=(0.5,), embedding=16, projection_channels=16)
    denoiser = EDMDenoiser(net, channels=2)
    for layer in net.uno.film:  # leave the zero (identity) FiLM initialisation
        torch.nn.init.normal_(layer.weight)
    for shape in [(16, 16), (32, 32), (20, 24)]:
        x = torch.randn(3, 2, *shape)
        out = denoiser(x, torch.full((3,), 0.5))
        assert out.shape == x.shape and torch.isfinite(out).all()
    x = torch.randn(2, 2, 16, 16)
    assert not torch.allclose(net(x, torch.zeros(2)), net(x, torch.ones(2)))
    with pytest.raises(ValueError, match="expects"):
        denoiser(torch.randn(1, 3, 16, 16), torch.ones(1))


def test_denoiser_depends_smoothly_on_the_noise_level():
    """Second differences of the network's output over a fine grid of noise levels are small
    against the first ones (a rough dependence on sigma leaves higher-order samplers no better than
    Euler), and a checkpoint keeps the embedding frequencies it was trained with."""
    torch.manual_seed(0)
    net = FNODenoiser(2, modes=4, width=8, scales=(0.5,), embedding=16, projection_channels=16)
    for layer in net.uno.film:
        torch.nn.init.normal_(layer.weight)
    c = edm_scalings(torch.logspace(-2, 1.7, 401), 1.0)[3]  # c_noise for sigma in [0.01, 50], steps of 0.0053
    x = torch.randn(1, 2, 16, 16).expand(len(c), -1, -1, -1)
    with torch.no_grad():
        out = net(x, c).flatten(1)
    first, second = out.diff(dim=0).norm(dim=1), out.diff(n=2, dim=0).norm(dim=1)
    assert (second / first[1:]).mean() < 0.05  # 0.019; 0.17 with 8x the frequencies, 1.8 with the earlier 128x

    rough = FNODenoiser(2, modes=4, width=8, scales=(0.5,), embedding=16, projection_channels=16)
    rough.embedding.frequencies.mul_(128)
    net.load_state_dict(rough.state_dict())
    assert torch.equal(net.embedding.frequencies, rough.embedding.frequencies)


def _tiny_prior_config(tmp_path, data, epochs=8, **diffusion):
    config = {
        "seed": 0,
        "data": {"path": str(data), "n_train": 32, "n_val": 8, "batch_size": 4},
        "train": {
            "task": "diffusion",
            "epochs": epochs,
            "lr": 1e-2,
            "weight_decay": 0.0,
            "scheduler": "constant",
            "threads": 1,
        },
        "diffusion": {
            "fields": "joint",
            "noise": {"kind": "grf"},
            "net": {"modes": 4, "width": 8, "scales": [0.5], "embedding": 16, "projection_channels": 16},
            **diffusion,
        },
    }
    path = tmp_path / "prior.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def darcy16(tmp_path_factory):
    from oplearn.data.generate import generate_dataset
    from oplearn.pdes import Darcy

    path = tmp_path_factory.mktemp("data") / "darcy16.h5"
    generate_dataset(Darcy(), n=40, resolution=16, out=path, seed=0, progress=False)
    return path


def test_diffusion_task_trains_and_loads_as_prior(tmp_path, darcy16):
    from oplearn.diffusion.task import load_prior

    config = _tiny_prior_config(tmp_path, darcy16, epochs=12)
    run_cli("train", config, "--out", tmp_path / "run")
    log = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first, last = log[0]["val_relative_l2"], min(r["val_relative_l2"] for r in log[-3:])
    assert last < 0.92 * first, log
    prior, meta = load_prior(tmp_path / "run")
    assert meta["channels"] == 2 and meta["fields"] == "joint" and meta["grid"].shape == (16, 16)
    assert isinstance(meta["noise"], GRFNoise) and not meta["noise"].periodic
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # sample at a resolution the prior never saw
        x = meta["noise"].sample((2, 2, 24, 24), g) * 80.0
        z = sample(prior, x, karras_sigmas(6), "dpmpp2m")
    fields = prior.decode(z)
    assert fields.shape == (2, 2, 24, 24) and torch.isfinite(fields).all()
    out = tmp_path / "s" / "samples.h5"
    run_cli("sample", tmp_path / "run", "--n", 3, "--steps", 4, "--sampler", "heun", "--resolution", 24, "--out", out)
    with h5py.File(out) as f:
        assert f["samples"].shape == (3, 2, 24, 24) and json.loads(f.attrs["sampler"]) == "heun"
    assert out.with_suffix(".png").stat().st_size > 0
    proc = run_cli("sample", tmp_path / "run", "--resolution", 4, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: cannot sample at resolution (4, 4)")
    proc = run_cli("sample", tmp_path / "nothing", check=False)
    assert proc.returncode == 2 and "does not exist" in proc.stderr
    run_cli("evaluate", tmp_path / "run", "--samples", 8)  # statistics of prior samples against the validation data
    (row,) = json.loads((tmp_path / "run" / "metrics.json").read_text())["results"]
    assert row["n_samples"] == 8 and (row["data"]["start"], row["data"]["stop"]) == (32, 40)
    stats = row["metrics"]
    assert set(stats) >= {
        f"{k}[{c}]"
        for k in ("mean_error", "std_error", "spectrum_error", "value_w1")
        for c in ("inputs[0]", "outputs[0]")
    }
    assert all(math.isfinite(v) and v >= 0 for v in stats.values())
    run_cli("report", tmp_path / "run")
    for name in ("samples.png", "statistics.png", "loss_curves.png"):
        assert (tmp_path / "run" / "report" / name).stat().st_size > 1000, name
    assert "| task | `diffusion` |" in (tmp_path / "run" / "report" / "report.md").read_text()


def test_diffusion_config_errors(tmp_path, darcy16):
    base = {"data": {"path": "x.h5"}, "train": {"task": "diffusion"}}
    with pytest.raises(ConfigError, match="unknown key 'diffusion.nosie' \\(did you mean 'diffusion.noise'"):
        validate_config({**base, "diffusion": {"nosie": {}}})
    with pytest.raises(ConfigError, match="diffusion.noise.kind"):
        validate_config({**base, "diffusion": {"noise": {"kind": "pink"}}})
    assert validate_config(base).diffusion is None  # defaults apply
    with pytest.raises(ConfigError, match="the diffusion section configures train.task=diffusion"):
        validate_config({"data": {"path": "x.h5"}, "diffusion": {}})
    with pytest.raises(ConfigError, match="remove data.test"):
        validate_config({**base, "data": {"path": "x.h5", "test": [{"path": "y.h5"}]}})
    config = _tiny_prior_config(tmp_path, darcy16, net={"modes": 12})
    proc = run_cli("train", config, "--out", tmp_path / "bad", check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        "error: config: diffusion.net.modes=12"
    )
