"""Local search (oplearn.sampling.local_search): the rank-prioritised buffers, MALA refinement
that leaves the target invariant, and training that alternates forward and backward paths."""

import pytest
import torch
from helpers import one_thread  # noqa: F401

from oplearn.errors import ConfigError
from oplearn.sampling.local_search import LocalSearch, SampleBuffer
from oplearn.sampling.losses import LogVariance, ReverseKL
from oplearn.sampling.methods import make_method
from oplearn.sampling.networks import ControlNet
from oplearn.sampling.targets import Gaussian
from oplearn.sampling.training import train_sampler
from oplearn.seeding import generator

pytestmark = pytest.mark.usefixtures("one_thread")


def test_buffer_is_a_ring_and_draws_by_rank():
    buffer = SampleBuffer(capacity=5, dim=1)
    buffer.add(torch.arange(3.0)[:, None], torch.arange(3.0))
    buffer.add(torch.arange(3.0, 7.0)[:, None], torch.arange(3.0, 7.0))
    assert len(buffer) == 5
    assert sorted(buffer.points[:, 0].tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0]  # 0 and 1 overwritten

    n, k = 40, 0.1
    buffer = SampleBuffer(capacity=n, dim=1)
    log_density = torch.randn(n, generator=generator(0))
    buffer.add(torch.arange(float(n))[:, None], log_density)
    draws = buffer.draw(200_000, k, generator(1))[:, 0].long()
    frequency = torch.bincount(draws, minlength=n).double() / len(draws)
    rank = torch.argsort(torch.argsort(log_density, descending=True))  # 0: the highest log-density
    expected = 1.0 / (k * n + rank.double())
    expected /= expected.sum()
    assert torch.allclose(frequency, expected, atol=4 * (expected.max() / len(draws)) ** 0.5)
    with pytest.raises(ValueError, match="empty buffer"):
        SampleBuffer(3, 1).draw(1, k)


def test_refinement_leaves_the_target_invariant_and_adapts_its_step():
    """Exact samples stay exact under MALA moves: the refined points' mean and covariance are the
    target's, and a step size far too large is brought down towards the target acceptance."""
    target = Gaussian(2, mean=[1.0, -0.5], scale=0.7)
    search = LocalSearch(2, capacity=200_000, mcmc_steps=150, burn_in=50, step_size=4.0)
    acceptance = search.refine(target, target.sample(1000, generator(2)), generator(3))
    points = search.refined.points[: len(search.refined)]
    assert len(search.refined) == 100 * 1000
    assert torch.allclose(points.mean(0), torch.tensor([1.0, -0.5]), atol=0.05)
    assert torch.allclose(torch.cov(points.T), 0.49 * torch.eye(2), atol=0.05)
    assert float(search.step_size) < 4.0 / 1.01**100  # mostly rejected at first: the step shrinks
    assert acceptance < 0.574
    search.step_size.fill_(0.3)  # accepted too often: it grows
    search.refine(target, target.sample(1000, generator(4)), generator(5))
    assert float(search.step_size) > 0.3


def test_local_search_alternates_forward_and_backward_paths_and_trains():
    target = Gaussian(2, mean=[1.0, -1.0], scale=0.5)
    torch.manual_seed(0)
    sampler = make_method("dis", target, steps=10, net=ControlNet(2, width=32))
    search = LocalSearch(2, capacity=5000, cycle=10, mcmc_steps=20, burn_in=10, step_size=0.1)
    history = train_sampler(sampler, LogVariance(0.2, search), iterations=60, batch_size=64, lr=5e-3)
    assert int(search.step) == 60
    assert len(search.samples) == 30 * 64  # the end points of the 30 forward steps
    assert len(search.refined) == 6 * 10 * 64  # refinements at steps 1, 11, ..., 51: 10 kept moves of 64 points
    first, last = (sum(h["loss"] for h in part) / 10 for part in (history[:10], history[-10:]))
    assert last < 0.5 * first, (first, last)
    with pytest.raises(ConfigError, match="local search trains on backward paths"):
        ReverseKL(local_search=search)
