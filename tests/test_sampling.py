"""Density sampling: targets, samplers' importance weights, optimal controls, losses, metrics."""

import math

import pytest
import scipy.integrate
import torch

from oplearn.errors import ConfigError, DataError, TrainingDiverged
from oplearn.sampling import metrics
from oplearn.sampling.losses import LogVariance, ReverseKL, TrajectoryBalance, make_loss
from oplearn.sampling.methods import METHODS, PIS, SMC, Estimate, make_method
from oplearn.sampling.networks import ControlNet
from oplearn.sampling.resampling import systematic_resample
from oplearn.sampling.targets import (
    GMM40,
    TARGETS,
    DoubleWell,
    Funnel,
    Gaussian,
    ManyWell,
    StudentTMixture,
    make_target,
)
from oplearn.sampling.training import train_sampler
from oplearn.seeding import generator

pytestmark = pytest.mark.usefixtures("one_thread")
from helpers import one_thread  # noqa: E402,F401

# ----------------------------------------------------------------------------- targets


def _grid_log_Z(target, low, high, n=801):
    u = torch.linspace(low, high, n, dtype=torch.float64)
    xx, yy = torch.meshgrid(u, u, indexing="ij")
    logp = target.log_density(torch.stack([xx.reshape(-1), yy.reshape(-1)], -1).float()).double()
    h = float(u[1] - u[0])
    return float(torch.logsumexp(logp, 0)) + 2 * math.log(h)


def test_two_dimensional_targets_are_normalised_as_stated():
    assert _grid_log_Z(GMM40(2), -45, 45, 601) == pytest.approx(0.0, abs=2e-3)
    assert _grid_log_Z(Gaussian(2, mean=[0.5, -1], scale=[0.6, 1.5]), -10, 10) == pytest.approx(
        Gaussian(2, scale=[0.6, 1.5]).log_Z, abs=1e-4
    )
    # heavy tails: mass outside the window is O(1/R^2)
    assert _grid_log_Z(StudentTMixture(2), -100, 100, 1001) == pytest.approx(0.0, abs=2e-3)


def test_double_well_normalisers_match_quadrature():
    one = scipy.integrate.quad(lambda u: math.exp(0.5 * u + 6 * u**2 - u**4), -6, 6)[0]
    assert one == pytest.approx(11784.50927, rel=1e-8)  # the constant quoted by the benchmark
    assert ManyWell(32).log_Z == pytest.approx(16 * (math.log(one) + 0.5 * math.log(2 * math.pi)), abs=1e-8)
    dw = scipy.integrate.quad(lambda u: math.exp(-((u * u - 4) ** 2)), -8, 8)[0]
    assert DoubleWell(5, 5, 4.0).log_Z == pytest.approx(5 * math.log(dw), abs=1e-8)
    assert DoubleWell(50, 5, 2.0).log_Z == pytest.approx(
        5 * math.log(scipy.integrate.quad(lambda u: math.exp(-((u * u - 2) ** 2)), -8, 8)[0])
        + 22.5 * math.log(2 * math.pi),
        abs=1e-8,
    )


@pytest.mark.parametrize("name", ["gaussian", "gmm40", "funnel", "many_well", "double_well", "student_t_mixture"])
def test_exact_samples_follow_the_target(name):
    """Importance weights gamma(y) / pi(y) = Z are constant on exact samples only for exact
    densities; here: exact samples have the target's mode frequencies and a log-density whose
    mean matches a Monte Carlo reference from a second seed."""
    target = make_target(name)
    y = target.sample(4000, generator(0))
    assert y.shape == (4000, target.dim) and torch.isfinite(target.log_density(y)).all()
    labels = target.modes(y)
    if labels is not None:
        freq = (
            torch.stack(
                [torch.bincount(labels[:, g], minlength=target.mode_weights().shape[1]) for g in range(labels.shape[1])]
            ).double()
            / 4000
        )
        assert (freq - target.mode_weights().double()).abs().max() < 5 * math.sqrt(0.25 / 4000) + 1e-3
    y2 = target.sample(4000, generator(1))
    a, b = target.log_density(y).double(), target.log_density(y2).double()
    se = math.sqrt((a.var() + b.var()) / 4000)
    assert abs(float(a.mean() - b.mean())) < 5 * float(se)


def test_funnel_and_many_well_marginals():
    y = Funnel(10).sample(20000, generator(2))
    assert float(y[:, 0].var()) == pytest.approx(9.0, rel=0.05)
    mw = ManyWell(4)
    y = mw.sample(20000, generator(3))
    # deep well (x > 0) mass from the tabulated density
    assert float((y[:, 0] > 0).double().mean()) == pytest.approx(float(mw.mode_weights()[0, 1]), abs=0.015)


def test_real_data_targets():
    lr = make_target("logistic_regression")
    assert lr.dim == 31 and lr.log_Z is None and not lr.has_samples
    w = torch.zeros(3, 31)
    assert torch.allclose(
        lr.log_density(w),
        torch.full((3,), -569 * math.log(2) - 31 * (math.log(10) + 0.5 * math.log(2 * math.pi))),
        rtol=1e-5,
    )
    lgcp = make_target("lgcp", grid=10)
    assert lgcp.dim == 100 and float(lgcp.counts.sum()) > 0
    # the posterior at the latent field the counts were drawn from beats the prior mean
    assert float(lgcp.log_density(lgcp.true_latent[None])) > float(lgcp.log_density(torch.full((1, 100), lgcp.mu0)))


def test_targets_refuse_bad_input():
    target = Gaussian(3)
    with pytest.raises(DataError, match=r"shape \(batch, 3\)"):
        target.log_density(torch.zeros(4, 2))

    class Broken(Gaussian):
        name = "broken"

        def unnormalized_log_density(self, x):
            return torch.where(x[:, 0] > 0, torch.nan, 0.0)

    with pytest.raises(DataError, match="NaN or infinite at 1 of 2 points"):
        Broken(1).log_density(torch.tensor([[1.0], [-1.0]]))
    with pytest.raises(ConfigError, match="no exact sampler"):
        make_target("logistic_regression").sample(3)
    with pytest.raises(ConfigError, match="unknown target"):
        make_target("banana")
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_target("funnel", modes=3)


# ----------------------------------------------------------------------------- importance weights


def _method(name, target, steps=10, **extra):
    params = {"steps": steps, **extra}
    if name in ("smc", "ais"):
        params.update(step_size=0.2, kernel="mala")
    return make_method(name, target, **params)


@pytest.mark.parametrize("name", [m for m in METHODS if m not in ("smc", "ais", "scld")])
def test_importance_weights_are_unbiased_in_Z(name):
    """E[w] = Z for any forward and backward kernels: an untrained sampler's weights, averaged
    over many paths, estimate Z without bias (while the mean of log w stays below log Z)."""
    torch.manual_seed(0)
    target = Gaussian(1, mean=0.3, scale=0.8)
    sampler = _method(name, target, steps=8)
    with torch.no_grad():
        log_w = sampler.estimate(12000, generator(0)).log_weights.double()
    w = torch.exp(log_w - target.log_Z)
    se = float(w.std()) / math.sqrt(len(w))
    assert abs(float(w.mean()) - 1) < 4 * se + 1e-3, (float(w.mean()), se)
    assert float(log_w.mean()) < target.log_Z


def test_underdamped_mass_rescales_the_time_step():
    """Mass M at friction g and horizon T is unit mass at friction g sqrt(M) and horizon T / sqrt(M)
    (momenta scaled by sqrt(M)): the same noise gives the same positions and the same log-weights,
    so a learned mass is a learned time step; ``learn_mass=False`` keeps it out of the parameters."""
    target = Gaussian(2, mean=0.5, scale=0.7)
    mass, friction = 4.0, 0.8
    heavy = make_method("ula_ud", target, steps=6, mass=mass, friction=friction)
    unit = make_method("ula_ud", target, steps=6, horizon=0.5, friction=friction * 2.0, learn_mass=False)
    assert "log_mass" in dict(heavy.named_parameters()) and "log_mass" not in dict(unit.named_parameters())
    with torch.no_grad():
        a, b = heavy.simulate(64, generator(3)), unit.simulate(64, generator(3))
        torch.testing.assert_close(a.states[0], b.states[0], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(heavy.log_weights(a), unit.log_weights(b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["smc", "ais", "scld"])
def test_smc_estimates_are_unbiased_in_Z(name):
    target = Gaussian(1, mean=0.3, scale=0.8)
    sampler = _method(name, target, steps=8)
    estimates = torch.tensor([sampler.estimate(256, generator(k)).log_Z for k in range(40)], dtype=torch.float64)
    z = torch.exp(estimates - target.log_Z)
    assert abs(float(z.mean()) - 1) < 4 * float(z.std()) / math.sqrt(40) + 1e-3


# ----------------------------------------------------------------------------- optimal control


class OptimalControl(torch.nn.Module):
    """A sampler's closed-form optimal control in place of its network."""

    def __init__(self, sampler):
        super().__init__()
        self.control = sampler.optimal_control

    def forward(self, t, x, score=None):
        return self.control(t, x)


@pytest.mark.parametrize("name", ["pis", "dis", "dds"])
def test_optimal_control_gives_tight_bounds_that_tighten_with_steps(name):
    """With the closed-form optimal control on a Gaussian target, ELBO <= log Z <= EUBO and
    the gaps (time discretisation only) shrink as the grid is refined."""
    target = Gaussian(2, mean=[1.0, -0.5], scale=[0.7, 1.3])
    exact = target.sample(4000, generator(9))
    gaps = []
    for steps in (20, 80):
        sampler = make_method(name, target, steps=steps)
        sampler.net = OptimalControl(sampler)
        est = sampler.estimate(4000, generator(1))
        eubo = sampler.eubo(exact, generator(2))
        assert est.elbo < target.log_Z < eubo
        gaps.append(eubo - est.elbo)
    assert gaps[1] < 0.6 * gaps[0], gaps


def test_learned_drift_approaches_the_optimal_control():
    """PIS on a 1D Gaussian: training moves the network towards u*, and ELBO <= log Z <= EUBO
    with both gaps shrinking."""
    target = Gaussian(1, mean=1.5, scale=0.5)
    sampler = PIS(target, steps=20, diffusion=1.0, net=ControlNet(1, width=32, depth=2))
    exact = target.sample(2000, generator(5))
    t = sampler.times()[:-1].repeat_interleave(64)
    x = torch.linspace(-1.0, 3.0, 64).repeat(20)[:, None]

    def distance():
        with torch.no_grad():
            return float((sampler.net(t, x, sampler.feature(t, x)) - sampler.optimal_control(t, x)).square().mean())

    def bounds():
        return sampler.estimate(2000, generator(6)).elbo, sampler.eubo(exact, generator(7))

    d0, (elbo0, eubo0) = distance(), bounds()
    train_sampler(sampler, ReverseKL(), iterations=150, batch_size=128, lr=5e-3)
    d1, (elbo1, eubo1) = distance(), bounds()
    assert d1 < 0.2 * d0, (d0, d1)
    assert elbo0 < elbo1 < target.log_Z < eubo1 < eubo0, (elbo0, elbo1, target.log_Z, eubo1, eubo0)


# ----------------------------------------------------------------------------- losses and training


@pytest.mark.parametrize(
    "loss", [LogVariance(exploration=0.2), TrajectoryBalance(exploration=0.2), ReverseKL()], ids=["lv", "tb", "kl"]
)
def test_losses_decrease_when_training(loss):
    target = Gaussian(2, mean=[1.0, -1.0], scale=0.5)
    sampler = make_method("dis", target, steps=10, net=ControlNet(2, width=32))
    history = train_sampler(sampler, loss, iterations=60, batch_size=64, lr=5e-3)
    first, last = (sum(h["loss"] for h in part) / 10 for part in (history[:10], history[-10:]))
    assert last < first - 0.2 * abs(first), (first, last)


def test_training_is_reproducible_and_stops_on_nan():
    target = Gaussian(2)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        sampler = make_method("cmcd", target, steps=5)
        train_sampler(sampler, LogVariance(0.1), iterations=3, batch_size=16, seed=4)
        runs.append(torch.cat([p.detach().reshape(-1) for p in sampler.parameters()]))
    assert torch.equal(runs[0], runs[1])

    class Exploding(Gaussian):
        name = "exploding"

        def unnormalized_log_density(self, x):
            return -1e30 * x.square().sum(-1) ** 8

    sampler = make_method("pis", Exploding(2), steps=4, diffusion=50.0)
    with pytest.raises((TrainingDiverged, DataError)):
        train_sampler(sampler, ReverseKL(), iterations=3, batch_size=8)
    with pytest.raises(ConfigError, match="on-policy"):
        make_loss("kl", exploration=0.5)
    with pytest.raises(ConfigError, match="unknown sampling method"):
        make_method("nuts", target)
    with pytest.raises(ConfigError, match="unknown parameter"):
        make_method("pis", target, friction=1.0)


_TARGET_CACHE = {}


def _small_target(name):
    if name not in _TARGET_CACHE:
        _TARGET_CACHE[name] = make_target(name, **({"grid": 8} if name == "lgcp" else {}))
    return _TARGET_CACHE[name]


@pytest.mark.parametrize("target_name", sorted(TARGETS))
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_on_every_target(method, target_name):
    """Two optimisation steps (none for SMC/AIS) and finite metrics, with tiny settings."""
    target = _small_target(target_name)
    torch.manual_seed(0)
    params = {"steps": 4}
    if method in ("smc", "ais"):
        params.update(step_size=1e-3, kernel="mala")
    else:
        params["horizon"] = 0.05  # small steps: stiff targets (double wells) stay stable untrained
        params["net"] = ControlNet(
            target.dim,
            2 * target.dim if method.endswith("_ud") else target.dim,
            width=8,
            depth=1,
            use_score=not method.endswith("_ud") or method == "dis_ud",
        )
        if method == "scld":
            params["segments"] = 2
    sampler = make_method(method, target, **params)
    if sampler.learns_control or any(p.requires_grad for p in sampler.parameters()):
        loss = LogVariance(0.1) if method == "scld" else ReverseKL()
        history = train_sampler(sampler, loss, iterations=2, batch_size=8, lr=1e-4)
        assert all(math.isfinite(h["loss"]) for h in history)
    est = sampler.estimate(16, generator(1))
    exact = target.sample(16, generator(2)) if target.has_samples else None
    values = metrics.sample_metrics(target, est, exact)
    if exact is not None and hasattr(sampler, "eubo"):
        values["eubo"] = sampler.eubo(exact, generator(3))
    assert values and all(math.isfinite(v) for v in values.values()), values


# ----------------------------------------------------------------------------- metrics


def test_metrics_on_known_cases():
    g = generator(0)
    x, y = torch.randn(500, 2, generator=g), torch.randn(500, 2, generator=g)
    assert metrics.mmd(x, y) < metrics.mmd(x, y + 2.0)
    assert metrics.wasserstein2(x, x) == pytest.approx(0.0, abs=1e-12)
    assert metrics.wasserstein2(x, x + torch.tensor([3.0, 4.0])) == pytest.approx(
        25.0, rel=1e-6
    )  # a translation is optimal
    assert metrics.ess_fraction(torch.zeros(10)) == pytest.approx(1.0)
    assert metrics.ess_fraction(torch.tensor([0.0, -1e9, -1e9, -1e9])) == pytest.approx(0.25)
    labels = torch.arange(40).repeat(5)[:, None]
    assert metrics.mode_coverage(labels, 40) == pytest.approx(1.0)
    assert metrics.mode_coverage(torch.zeros(100, 1, dtype=torch.long), 40) == 0.0
    gmm = GMM40(2)
    assert (
        metrics.sample_metrics(gmm, Estimate(gmm.sample(2000, g), torch.zeros(2000), 0.0, 0.0))["mode_coverage"] > 0.98
    )
    counts = torch.bincount(
        systematic_resample(torch.log(torch.tensor([0.5, 0.25, 0.25])).repeat_interleave(4) - math.log(4), g),
        minlength=12,
    )
    assert int(counts[:4].sum()) == 6 and int(counts[4:8].sum()) == 3


def test_smc_baseline_estimates_log_Z():
    target = Gaussian(2, mean=[1.0, -0.5], scale=[0.7, 1.3])
    for kernel in ("mala", "hmc"):
        est = SMC(target, steps=30, kernel=kernel, step_size=0.3).estimate(1000, generator(0))
        assert est.log_Z == pytest.approx(target.log_Z, abs=0.05)


@pytest.mark.parametrize("name", ["ula", "mcd", "cmcd"])
def test_overdamped_langevin_weights_evaluate_the_target_once_per_point(name):
    """The kernels replay the target scores the simulation computed: N + 1 evaluations per path
    of N steps, and the same weights as evaluating every kernel afresh (on- and off-policy)."""
    from oplearn.sde import Path

    target = Gaussian(2, mean=[0.5, -1.0], scale=[0.7, 1.2])
    sampler = _method(name, target, steps=6)
    path = sampler.simulate(32, generator(0))
    target.evaluations = 0
    log_w = sampler.log_weights(path)
    assert target.evaluations == 32  # the end points only
    plain = Path(path.times, path.states, path.noise)
    for on_policy in (True, False):
        fresh = sampler.transition_log_ratio(plain, on_policy)[0]
        torch.testing.assert_close(sampler.transition_log_ratio(path, on_policy)[0], fresh)
    target.evaluations = 0
    sampler.estimate(50, generator(1))
    assert target.evaluations == 50 * 7
    assert torch.isfinite(log_w).all()


def test_overdamped_diffusion_is_learned_unless_fixed():
    """``learn_diffusion=False`` keeps the overdamped samplers' sigma out of the parameters and at
    its value through training steps; learned, the same loss moves it."""
    target = Gaussian(2, mean=0.5, scale=0.7)
    moved = {}
    for learn in (True, False):
        torch.manual_seed(0)
        sampler = make_method("cmcd", target, steps=4, diffusion=0.8, learn_diffusion=learn)
        assert ("log_diffusion" in dict(sampler.named_parameters())) is learn
        start = float(sampler.log_diffusion)
        optimiser = torch.optim.SGD(sampler.parameters(), lr=0.05)
        for k in range(3):
            optimiser.zero_grad()
            (-sampler.log_weights(sampler.simulate(64, generator(k))).mean()).backward()
            optimiser.step()
        moved[learn] = abs(float(sampler.log_diffusion) - start)
    assert moved[True] > 1e-4 and moved[False] == 0.0
