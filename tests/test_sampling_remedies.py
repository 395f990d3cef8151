"""SCLD's remedies for off-policy training: Metropolis-adjusted moves between sub-trajectories
and a prioritised replay buffer of sub-trajectories."""

import math

import pytest
import torch

from oplearn.errors import ConfigError
from oplearn.sampling.losses import LogVariance
from oplearn.sampling.mcmc import MetropolisKernel
from oplearn.sampling.methods import make_method
from oplearn.sampling.networks import ControlNet
from oplearn.sampling.replay import ReplayBuffer, concat_paths, select_paths
from oplearn.sampling.targets import Gaussian
from oplearn.sampling.training import train_sampler
from oplearn.sde import Path
from oplearn.seeding import generator

pytestmark = pytest.mark.usefixtures("one_thread")
from helpers import one_thread  # noqa: E402,F401


def _moved(kernel, x, target, eps, moves, seed=0):
    move, g = MetropolisKernel(kernel, leapfrog=3), generator(seed)
    cache, rates = target.log_density_and_score(x), []
    for _ in range(moves):
        x, cache, rate = move.step(eps, x, cache, target.log_density_and_score, lambda y, v, s: (v, s), g)
        rates.append(rate)
    return x, sum(rates) / len(rates)


@pytest.mark.parametrize("kernel", ["mala", "hmc"])
def test_metropolis_moves_keep_exact_samples_exact(kernel):
    """Exact samples of a Gaussian stay distributed as the Gaussian after 20 moves, at a step
    size where the unadjusted kernel would inflate the variance by a third (about 15 standard
    errors at 4000 samples); wide samples contract to the target's variance."""
    target, n = Gaussian(2, mean=[1.0, -2.0], scale=[0.5, 1.0]), 4000
    eps = 0.5 * 0.25 if kernel == "mala" else 0.4  # MALA: eps = s^2 / 2 in the narrow coordinate
    x, rate = _moved(kernel, target.sample(n, generator(1)), target, eps, 20)
    assert 0.3 < rate < 0.999
    mean_err = (x.mean(0) - target.mean) / (target.scale / math.sqrt(n))
    var_ratio = x.var(0) / target.scale.square()
    assert float(mean_err.abs().max()) < 4
    assert float((var_ratio - 1).abs().max()) < 4 * math.sqrt(2 / n) * 2  # correlated samples: twice the i.i.d. error
    wide, _ = _moved(
        kernel, target.mean + 4 * target.scale * torch.randn(n, 2, generator=generator(2)), target, eps, 60
    )
    assert float((wide.var(0) / target.scale.square()).max()) < 1.3  # started at 16x the variance


def test_metropolis_kernel_rejects_bad_settings():
    with pytest.raises(ConfigError, match="mcmc kernel must be one of mala, hmc"):
        MetropolisKernel("nuts")
    with pytest.raises(ConfigError, match="leapfrog steps must be >= 1"):
        MetropolisKernel("hmc", leapfrog=0)


@pytest.mark.parametrize("kernel", ["mala", "hmc"])
def test_scld_with_moves_estimates_Z_unbiasedly(kernel):
    target = Gaussian(1, mean=0.3, scale=0.8)
    sampler = make_method("scld", target, steps=8, segments=4, mcmc=kernel, mcmc_steps=2, mcmc_step_size=0.2)
    runs = [sampler.estimate(256, generator(k)) for k in range(40)]
    z = torch.exp(torch.tensor([r.log_Z for r in runs], dtype=torch.float64) - target.log_Z)
    assert abs(float(z.mean()) - 1) < 4 * float(z.std()) / math.sqrt(40) + 1e-3
    assert all(r.elbo <= r.log_Z for r in runs)  # Jensen, run by run
    assert 0.3 < sampler.acceptance <= 1


def _paths(values, steps=3, dim=2):
    """Paths whose every entry is the path's value, ``(steps + 1, n, dim)``."""
    v = torch.as_tensor(values, dtype=torch.float32)
    return Path(torch.linspace(0, 1, steps + 1), (v[None, :, None].expand(steps + 1, -1, dim).clone(),))


def test_replay_buffer_overwrites_the_oldest_and_draws_by_priority_without_replacement():
    buffer = ReplayBuffer(capacity=6, temperature=2.0)
    template = _paths([0.0])
    assert len(buffer) == 0 and len(buffer.sample(3, template)[1]) == 0
    buffer.add(_paths([0, 1, 2, 3]), torch.tensor([0.0, 1.0, 2.0, -math.inf]))  # the non-finite one is skipped
    buffer.add(_paths([4, 5, 6, 7]), torch.log(torch.tensor([1.0, 2.0, 3.0, 4.0])))
    assert len(buffer) == 6
    stored = buffer.states_0[0, :, 0].tolist()
    assert stored == [7.0, 1.0, 2.0, 4.0, 5.0, 6.0]  # the oldest (0) overwritten
    paths, slots = buffer.sample(6, template, generator(0))
    assert sorted(paths.xs[0, :, 0].tolist()) == sorted(stored) and len(set(slots.tolist())) == 6
    # one draw at a time is the categorical distribution w^(1/T) / sum w^(1/T)
    probs = torch.softmax(buffer.log_w / 2.0, 0)
    counts = torch.zeros(6)
    for k in range(3000):
        counts[buffer.sample(1, template, generator(k))[1]] += 1
    assert torch.allclose(counts / 3000, probs, atol=4 * math.sqrt(0.25 / 3000))
    buffer.update(slots[:1], torch.tensor([float("nan")]))
    assert buffer.log_w[slots[0]] == -math.inf
    fresh = ReplayBuffer(capacity=6, temperature=2.0)
    fresh.load_state_dict(buffer.state_dict())  # a resumed run continues with the same buffer
    assert len(fresh) == 6 and torch.equal(fresh.states_0, buffer.states_0)
    with pytest.raises(ConfigError, match="capacity must be >= 1"):
        ReplayBuffer(0)


@pytest.mark.parametrize("integrator", ["EM", "OBABO"])
def test_replayed_sub_trajectories_keep_their_weights(integrator):
    """Selecting and concatenating stored sub-trajectories (states, the splitting scheme's records,
    the recorded target scores) gives each path the weight it had in its own batch."""
    target = Gaussian(2, mean=[0.5, -0.5], scale=0.8)
    net = ControlNet(2, 4 if integrator == "OBABO" else 2, width=8, depth=1, use_score=integrator == "EM")
    sampler = make_method("scld", target, steps=6, segments=2, integrator=integrator, net=net)
    paths = []
    with torch.no_grad():
        log_w = sampler.run(10, generator(0), off_policy=True, exploration=0.3, paths=paths)[0]
        a, b = torch.tensor([7, 2, 5]), torch.tensor([0, 9])
        batch = concat_paths(select_paths(paths[1], a), select_paths(paths[1], b))
        torch.testing.assert_close(sampler._segment_log_weight(batch, on_policy=False), log_w[1][torch.cat([a, b])])


def test_scld_trains_on_a_replay_buffer():
    """Log-variance training with replay: each step stores the fresh sub-trajectories of every
    block, the buffer fills to its capacity, and the trained sampler's ELBO rises."""
    target = Gaussian(2, mean=[1.5, -1.0], scale=0.6)
    sampler = make_method(
        "scld",
        target,
        steps=8,
        segments=2,
        scale=2.0,
        mcmc="mala",
        mcmc_step_size=0.05,
        replay_capacity=80,
        net={"width": 16, "depth": 1},
    )

    def elbo():
        return sampler.estimate(512, generator(5)).elbo

    before = elbo()
    history = train_sampler(sampler, LogVariance(0.5), iterations=30, batch_size=32, lr=5e-3)
    assert [len(b) for b in sampler.replay] == [80, 80]
    assert all(math.isfinite(h["loss"]) for h in history)
    assert elbo() > before + 0.2, (before, elbo())
    with pytest.raises(ConfigError, match="replay_capacity must be >= 0"):
        make_method("scld", target, steps=4, replay_capacity=-1)


def test_learned_annealing_schedule_is_monotone_from_zero_to_one():
    from oplearn.sampling.annealing import AnnealingSchedule

    t = torch.linspace(0, 2.0, 41)
    schedule = AnnealingSchedule(2.0, knots=8)
    torch.testing.assert_close(schedule(t), t / 2.0)  # zero logits: the fixed schedule
    with torch.no_grad():
        schedule.logits.copy_(torch.randn(8, generator=generator(0)) * 2)
    lam = schedule(t).detach()
    assert float(lam[0]) == 0 and float(lam[-1]) == pytest.approx(1.0) and bool((lam.diff() > 0).all())


@pytest.mark.parametrize("method", ["cmcd", "scld"])
def test_learned_annealing_keeps_the_weights_exact_and_is_trained(method):
    """With any schedule the estimate stays unbiased in Z; the loss's gradient reaches the schedule."""
    target = Gaussian(1, mean=0.3, scale=0.8)
    params = {"steps": 8, "learn_annealing": True, "net": {"width": 8, "depth": 1}}
    sampler = make_method(method, target, **params, **({"segments": 2} if method == "scld" else {}))
    schedule = sampler.cmcd.annealing if method == "scld" else sampler.annealing
    with torch.no_grad():
        schedule.logits.copy_(torch.randn(8, generator=generator(1)) * 2)
    runs = [sampler.estimate(256, generator(k)) for k in range(40)]
    z = torch.exp(torch.tensor([r.log_Z for r in runs], dtype=torch.float64) - target.log_Z)
    assert abs(float(z.mean()) - 1) < 4 * float(z.std()) / math.sqrt(40) + 1e-3
    LogVariance(0.1)(sampler, 32, generator(2))[0].backward()
    assert float(schedule.logits.grad.abs().sum()) > 0
