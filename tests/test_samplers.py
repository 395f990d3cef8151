"""Samplers and schedules on a Gaussian mixture with an exact denoiser."""

import math

import pytest
import torch

from oplearn.diffusion.gaussian import GaussianMixture
from oplearn.diffusion.samplers import SAMPLERS, sample
from oplearn.diffusion.schedules import SCHEDULES, karras_sigmas, logsnr_sigmas
from oplearn.errors import ConfigError


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The problems are tiny: a second thread only adds synchronisation on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _problem(batch=64):
    g = torch.Generator().manual_seed(0)
    mixture = GaussianMixture(
        torch.randn(4, 1, 8, generator=g, dtype=torch.float64), torch.tensor([0.3, 0.5, 0.4, 0.6])
    )
    noise = 80.0 * torch.randn(batch, 1, 8, generator=g, dtype=torch.float64)
    return mixture, noise


def _error(a, b):
    return (a - b).flatten(1).norm(dim=1).mean().item()


@pytest.fixture(scope="module")
def reference():
    mixture, noise = _problem()
    return mixture, noise, sample(mixture, noise, karras_sigmas(640), "dpmpp3m")


@pytest.mark.parametrize(
    "method, low, high",
    [("euler", 0.85, 1.2), ("heun", 1.8, 2.5), ("dpmpp2m", 1.8, 2.5), ("dpmpp3m", 2.7, 4.0), ("unipc", 2.7, 3.5)],
)
def test_observed_order(reference, method, low, high):
    mixture, noise, ref = reference
    steps = [20, 40, 80, 160]
    errors = [_error(sample(mixture, noise, karras_sigmas(n), method), ref) for n in steps]
    x = torch.tensor(steps, dtype=torch.float64).log()
    y = torch.tensor(errors, dtype=torch.float64).log()
    slope = -(((x - x.mean()) * (y - y.mean())).sum() / (x - x.mean()).square().sum()).item()
    assert low <= slope <= high, (method, errors, slope)


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_dpmpp2m_beats_euler_at_10_steps(reference, schedule):
    mixture, noise, _ = reference
    ref = sample(mixture, noise, SCHEDULES[schedule](640), "dpmpp3m")
    sigmas = SCHEDULES[schedule](10)
    assert _error(sample(mixture, noise, sigmas, "dpmpp2m"), ref) < _error(sample(mixture, noise, sigmas, "euler"), ref)


def test_samples_follow_the_mixture():
    """Enough steps give samples of the data law: mean and variance per coordinate match."""
    g = torch.Generator().manual_seed(1)
    mixture = GaussianMixture(
        torch.tensor([[[-1.0, 2.0]], [[1.5, 0.0]]]), torch.tensor([0.3, 0.6]), torch.tensor([1.0, 3.0])
    )
    noise = 80.0 * torch.randn(4000, 1, 2, generator=g, dtype=torch.float64)
    out = sample(mixture, noise, karras_sigmas(40), "dpmpp3m")
    data = mixture.sample(200000, generator=g)
    assert torch.allclose(out.mean(0), data.mean(0), atol=0.06)
    assert torch.allclose(out.var(0), data.var(0), rtol=0.06)


def test_evaluation_counts_are_documented():
    calls = []

    def counting(x, sigma):
        calls.append(sigma)
        assert sigma.shape == (x.shape[0],)
        return torch.zeros_like(x)

    for name, cls in SAMPLERS.items():
        calls.clear()
        sigmas = karras_sigmas(7)
        sample(counting, torch.randn(3, 2, 5), sigmas, name)
        assert len(calls) == cls().evaluations(sigmas) == (13 if name == "heun" else 7), name


def test_multistep_solvers_take_a_split_denoisers_stiff_part_at_first_order():
    """A denoiser that splits its output into (smooth, stiff): the multistep solvers extrapolate
    the smooth part only. With a zero smooth part and a stiff part that jumps from call to call,
    every solver's step is the first-order one, so all agree with Euler; a plain denoiser
    returning the same values is extrapolated and does not."""

    class Jumpy:
        def split(self, x, sigma):
            g = torch.Generator().manual_seed(int(1000 * float(sigma[0])))
            return torch.zeros_like(x), torch.randn(x.shape, generator=g, dtype=x.dtype)

        def __call__(self, x, sigma):
            smooth, stiff = self.split(x, sigma)
            return smooth + stiff

    x = torch.randn(2, 1, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    sigmas = karras_sigmas(8, 0.01, 10.0)[:-1]  # end above 0: the step to 0 would return D alone
    euler = sample(Jumpy(), x, sigmas, "euler")
    for name in ("dpmpp2m", "dpmpp3m", "unipc"):
        assert torch.allclose(sample(Jumpy(), x, sigmas, name), euler, atol=1e-12), name
        plain = sample(lambda z, sigma: Jumpy()(z, sigma), x, sigmas, name)
        assert not torch.allclose(plain, euler, atol=1e-3), name


def test_churn_euler_heun_and_refused_by_multistep():
    mixture, noise = _problem(batch=8)
    sigmas = karras_sigmas(20)
    plain = sample(mixture, noise, sigmas, "heun")
    churned = sample(mixture, noise, sigmas, "heun", churn=10.0, generator=torch.Generator().manual_seed(0))
    again = sample(mixture, noise, sigmas, "heun", churn=10.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(churned, again) and not torch.allclose(churned, plain)
    with pytest.raises(ConfigError, match="multistep"):
        sample(mixture, noise, sigmas, "dpmpp2m", churn=1.0)


def test_schedules():
    for fn in (karras_sigmas, logsnr_sigmas):
        s = fn(10, sigma_min=0.01, sigma_max=50.0)
        assert s.shape == (11,) and s[-1] == 0 and (s[:-1].diff() < 0).all()
        assert math.isclose(s[0], 50.0) and math.isclose(s[-2], 0.01)
    h = logsnr_sigmas(10)[:-1].log().diff()
    assert torch.allclose(h, h[0].expand_as(h))
    with pytest.raises(ValueError):
        karras_sigmas(0)
    with pytest.raises(ConfigError, match="unknown sampler"):
        sample(lambda x, s: x, torch.zeros(1, 1, 2), karras_sigmas(3), "rk45")
