"""Inverse problems: observation operators, guidance, DAPS, the exact linear-Gaussian posterior, calibration."""

import math

import pytest
import torch

from oplearn.diffusion.noise import GRFNoise
from oplearn.diffusion.schedules import karras_sigmas
from oplearn.errors import OplearnError
from oplearn.fields import GaussianRandomField
from oplearn.grids import Grid
from oplearn.inverse.guidance import DecoupledFields
from oplearn.inverse.linear_gaussian import GaussianDenoiser, LinearGaussianPoisson
from oplearn.inverse.observations import BoundaryObservation, Observation, PointObservation, Subsample
from oplearn.inverse.posterior import (
    calibration,
    coefficient_error_rate,
    posterior_metrics,
    sample_posterior,
    summarize,
)
from oplearn.pdes.poisson import Poisson

N = 12


@pytest.fixture(scope="module")
def problem():
    lg = LinearGaussianPoisson(Poisson(), N)
    g = torch.Generator().manual_seed(1)
    truth = lg.sample_prior(1, g)[0]
    obs = PointObservation(lg.shape, 20, channels=1, noise=1e-4, generator=g)
    y = obs.observe(truth[None], g)[0]
    mean, std = lg.posterior(obs, y)
    return lg, truth, obs, y, mean[0], std


def _sample(lg, obs, y, count, seed=2, steps=12, **kw):
    return sample_posterior(
        lg.denoiser,
        obs,
        y,
        lg.shape,
        count,
        karras_sigmas(steps, 0.002, 80.0, 7.0),
        fields=lg.fields,
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(seed),
        **kw,
    )


def test_observation_operators_select_count_and_are_adjoint():
    shape = (2, 9, 7)
    pts = PointObservation(shape, 10, channels=(0, 1), generator=torch.Generator().manual_seed(0))
    again = PointObservation(shape, 10, channels=(0, 1), generator=torch.Generator().manual_seed(0))
    assert len(pts) == 20 and torch.equal(pts.index, again.index)
    assert torch.equal(pts.mask()[0], pts.mask()[1]) and pts.mask()[0].sum() == 10
    boundary = BoundaryObservation(shape, channels=1)
    assert len(boundary) == 2 * 9 + 2 * 7 - 4 and not boundary.mask()[0].any()
    assert not boundary.mask()[1, 1:-1, 1:-1].any()
    sub = Subsample(shape, 3, channels=0)
    assert len(sub) == 3 * 3 and sub.mask()[0, ::3, ::3].all()
    x, v = torch.randn(4, *shape, dtype=torch.float64), torch.randn(4, len(pts), dtype=torch.float64)
    assert torch.allclose((pts.apply(x) * v).sum(), (x * pts.adjoint(v)).sum())
    assert torch.equal(pts.apply(x)[0], x[0][pts.mask()])
    restored = Observation.from_dict(pts.to_dict())
    assert torch.equal(restored.index, pts.index) and restored.shape == shape


def test_observation_noise_level_and_errors():
    obs = Subsample((1, 41, 41), 1, noise=0.3)
    x = torch.zeros(50, 1, 41, 41, dtype=torch.float64)
    y = obs.observe(x, torch.Generator().manual_seed(0))
    assert abs(y.std().item() - 0.3) < 0.01
    with pytest.raises(OplearnError):
        PointObservation((1, 4, 4), 17)
    with pytest.raises(OplearnError):
        PointObservation((1, 4, 4), 3, channels=1)
    with pytest.raises(OplearnError):
        obs.apply(torch.zeros(1, 1, 5, 5))


def test_grf_covariance_matches_samples():
    field = GaussianRandomField(2.0, 3.0, modes=6)
    grid = Grid((5, 4))
    c = field.covariance(grid)
    x = field.sample(20000, grid, torch.Generator().manual_seed(0)).flatten(1)
    empirical = x.T @ x / len(x)
    assert (empirical - c).abs().max() < 0.05 * c.diagonal().max()


def test_linear_gaussian_model_is_consistent(problem):
    lg, truth, obs, y, mean, std = problem
    f = truth[:1][None]
    assert torch.allclose(lg.fields(torch.ones(1, *lg.shape, dtype=torch.float64))[0, :, 0, 0], lg.scale)
    assert torch.allclose((lg.solution_operator @ f.flatten()).reshape(N, N), truth[1], atol=1e-12)
    # With little noise the exact posterior reproduces the data and is certain there.
    assert torch.allclose(obs.apply(mean[None])[0], y, atol=5 * obs.noise)
    assert (std[obs.mask()] < 2e-4).all() and std[0].mean() > 0.05 * lg.scale[0]
    # D(x, sigma) of a Gaussian with variance v is v / (v + sigma^2) x.
    d = GaussianDenoiser(torch.diag(torch.tensor([4.0, 1.0])))
    assert torch.allclose(d(torch.ones(1, 2), torch.tensor([1.0])), torch.tensor([[0.8, 0.5]]))


def test_default_guidance_samples_the_exact_posterior(problem):
    """The default guidance, covariance (Tweedie) guidance, is the posterior denoiser of a Gaussian
    prior: the sampled mean is within Monte Carlo error of the exact mean, the spread and the 90%
    band are right, at the default steps of ``oplearn inverse``; DPS with the isotropic
    approximation is measurably biased."""
    from oplearn.inverse.command import DEFAULT_STEPS

    lg, truth, obs, y, mean, std = problem
    m = 32
    post = summarize(_sample(lg, obs, y, m, steps=DEFAULT_STEPS["covariance"]))
    free = std > 1e-6
    z = ((post.mean - mean) / std)[free].square().mean().sqrt() * math.sqrt(m)  # ~1 for Monte Carlo error
    assert z < 2.0
    ratio = post.std[free].mean() / std[free].mean()
    assert 0.85 < ratio < 1.15
    cover = calibration(post, truth)
    assert 0.8 < cover[0] < 0.97
    dps = summarize(_sample(lg, obs, y, m, guidance={"scale": "normalized"}))
    z_dps = ((dps.mean - mean) / std)[free].square().mean().sqrt() * math.sqrt(m)
    assert z_dps > 3 * z


def test_stochastic_churn_keeps_the_exact_posterior(problem):
    """Churn (re-noising before each Heun step) with the exact posterior denoiser still samples
    the exact posterior, with other draws than the ODE; multistep solvers and DAPS refuse it."""
    lg, _truth, obs, y, mean, std = problem
    m = 32
    draws = _sample(lg, obs, y, m, steps=24, sampler="heun", churn=8.0, guidance={"scale": "covariance"})
    ode = _sample(lg, obs, y, m, steps=24, sampler="heun", guidance={"scale": "covariance"})
    assert (draws - ode).abs().max() > 0.1 * std.max()
    post = summarize(draws)
    free = std > 1e-6
    z = ((post.mean - mean) / std)[free].square().mean().sqrt() * math.sqrt(m)
    assert z < 2.0
    assert 0.85 < post.std[free].mean() / std[free].mean() < 1.15
    with pytest.raises(OplearnError, match="churn"):
        _sample(lg, obs, y, 2, sampler="dpmpp2m", churn=1.0)
    with pytest.raises(OplearnError, match="churn"):
        _sample(lg, obs, y, 2, method="daps", churn=1.0)


def test_covariance_guidance_with_grf_noise_needs_the_noise_covariance(problem):
    """With GRF forward noise N, Tweedie's formula carries the likelihood score through N: covariance
    guidance that knows the prior's noise samples the exact posterior; the white-noise form does not."""
    from oplearn.diffusion.samplers import sample
    from oplearn.inverse.guidance import GuidedDenoiser

    _, _truth, obs, y, mean, std = problem
    lg = LinearGaussianPoisson(Poisson(), N, noise=GRFNoise())
    m = 32
    post = summarize(_sample(lg, obs, y, m, noise=lg.noise, guidance={"scale": "covariance"}))
    free = std > 1e-6
    z = ((post.mean - mean) / std)[free].square().mean().sqrt() * math.sqrt(m)
    assert z < 2.0
    assert 0.85 < post.std[free].mean() / std[free].mean() < 1.15
    white = GuidedDenoiser(lg.denoiser, obs, y, scale="covariance", fields=lg.fields)
    start = lg.noise.sample((m, *lg.shape), torch.Generator().manual_seed(2), dtype=torch.float64) * 80.0
    wrong = summarize(lg.fields(sample(white, start, karras_sigmas(12, 0.002, 80.0, 7.0), method="dpmpp2m")))
    z_wrong = ((wrong.mean - mean) / std)[free].square().mean().sqrt() * math.sqrt(m)
    assert z_wrong > 3 * z


def test_centred_start_removes_the_offset_of_the_posterior_mean():
    """The posterior's marginal at sigma_max is centred on its mean, not 0: observing f at 8 points
    of a 12x12 GRF-noise prior, the ODE started from N(0, sigma_max^2 N) carries the offset into
    the sampled mean of u (a gap of several Monte Carlo errors of 128 draws), the start centred
    on the covariance-guided denoiser (GuidedDenoiser.start) does not."""
    from oplearn.diffusion.samplers import sample
    from oplearn.inverse.guidance import GuidedDenoiser

    lg = LinearGaussianPoisson(Poisson(), N, noise=GRFNoise())
    g = torch.Generator().manual_seed(1)
    truth = lg.sample_prior(1, g)[0]
    obs = PointObservation(lg.shape, 8, channels=0, noise=0.01 * float(lg.scale[0]), generator=g)
    y = obs.observe(truth[None], g)[0]
    mean, std = lg.posterior(obs, y)
    m, sigmas = 128, karras_sigmas(20)
    gap = {}
    for centred in (False, True):
        guided = GuidedDenoiser(lg.denoiser, obs, y, fields=lg.fields, noise=lg.noise, schedule=sigmas)
        start = lg.noise.sample((m, *lg.shape), torch.Generator().manual_seed(3), dtype=torch.float64) * sigmas[0]
        start = guided.start(start, float(sigmas[0])) if centred else start
        x = lg.fields(sample(guided, start, sigmas, method="dpmpp2m"))
        gap[centred] = ((x.mean(0)[1] - mean[0, 1]).norm() / (std[1].square().sum() / m).sqrt()).item()
    assert gap[False] > 2.2 and gap[True] < 0.6 * gap[False], gap


def test_covariance_guidance_solves_indefinite_nonsymmetric_systems(monkeypatch):
    """A trained denoiser's J N need be neither symmetric nor positive definite: GMRES still fits
    the observations (conjugate gradients, the earlier solver, stopped at the first negative
    curvature and left no guidance), for J = -I (negative definite) and J = a rotation-like
    non-symmetric map, with GRF noise and with few observations solved in fewer iterations.
    With as many iterations as observations and no tolerance it solves the system to rounding
    (its Gram-Schmidt basis stays orthogonal)."""
    import oplearn.inverse.guidance
    from oplearn.inverse.guidance import GuidedDenoiser

    shape = (1, 8, 8)
    obs = PointObservation(shape, 10, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.randn(10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mix = torch.linalg.qr(torch.randn(64, 64, generator=torch.Generator().manual_seed(3), dtype=torch.float64))[0]

    def rotate(z: torch.Tensor, sigma: torch.Tensor | None) -> torch.Tensor:
        return (z.flatten(1) @ mix).reshape(z.shape)

    for denoise in (lambda z, s: -z, rotate):
        for noise in (None, GRFNoise()):
            guided = GuidedDenoiser(denoise, obs, y, scale="covariance", noise=noise, krylov=10)
            x0 = denoise(x, None)
            out = guided(x, torch.full((2,), 1.0, dtype=torch.float64))
            before, after = (y - obs.apply(x0)).norm(dim=1), (y - obs.apply(out)).norm(dim=1)
            assert torch.isfinite(out).all() and (after < 1e-3 * before).all(), after / before
    monkeypatch.setattr(oplearn.inverse.guidance, "GMRES_TOLERANCE", 0.0)
    for noise in (None, GRFNoise()):
        out = GuidedDenoiser(rotate, obs, y, scale="covariance", noise=noise, krylov=10)(
            x, torch.full((2,), 1.0, dtype=torch.float64)
        )
        after = (y - obs.apply(out)).norm(dim=1) / (y - obs.apply(rotate(x, None))).norm(dim=1)
        assert (after < 1e-8).all(), after


def test_covariance_guidance_leaves_a_draw_the_observations_cannot_see():
    """Where the observed fields do not depend on a draw (a gradient cut off, e.g. by a clamp), its
    guided denoiser is the prior's, finite, while the other draw is still guided (in float32 at
    the noise levels where the sampler starts, the forward-difference step along a zero direction
    overflowed to inf and the draw became NaN)."""
    from oplearn.inverse.guidance import GuidedDenoiser

    shape = (1, 8, 8)
    obs = PointObservation(shape, 10, generator=torch.Generator().manual_seed(0))
    y = torch.randn(10, generator=torch.Generator().manual_seed(2))
    x = 1000 * torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    x[1] = x[1].abs() + 1

    def fields(z):  # seen only while the draw's mean is negative
        return z * (z.mean(dim=(1, 2, 3), keepdim=True) < 0)

    x[0] = -x[0].abs() - 1
    guided = GuidedDenoiser(lambda z, s: 0.5 * z, obs, y, fields=fields, scale="covariance", krylov=6)
    out = guided(x, torch.full((2,), 80.0))
    assert torch.isfinite(out).all() and torch.equal(out[1], 0.5 * x[1])
    assert (y - obs.apply(fields(out[:1]))).norm() < 0.5 * (y - obs.apply(fields(0.5 * x[:1]))).norm()


def test_step_matched_guidance_relaxes_the_residual_exactly():
    """With J = I (identity denoiser, white noise) the guidance's relaxation rate is k = lambda: one
    Euler step of step-matched guidance shrinks the observed residual by exactly exp(-k h), a
    step to sigma = 0 fits the data, and tiny steps leave the guidance unchanged; the unmatched
    correction overshoots to (1 - phi k) r."""
    from oplearn.diffusion.samplers import sample
    from oplearn.inverse.guidance import GuidedDenoiser

    obs = PointObservation((1, 8, 8), 10, generator=torch.Generator().manual_seed(0))
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.randn(10, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    r = y - obs.apply(x)
    k = 10.0**2 / r.square().mean(dim=1)  # lambda of the normalized scale at sigma = 10, w = 1
    for t in (9.0, 5.0, 0.0):
        sigmas = torch.tensor([10.0, t], dtype=torch.float64)
        h = math.log(10.0 / t) if t else math.inf
        matched = GuidedDenoiser(lambda z, sigma: z, obs, y, weight=1.0, scale="normalized", schedule=sigmas)
        after = y - obs.apply(sample(matched, x, sigmas, "euler"))
        assert torch.allclose(after, torch.exp(-k * h)[:, None] * r, atol=1e-10), t
    sigmas = torch.tensor([10.0, 9.0], dtype=torch.float64)
    overshoot = y - obs.apply(
        sample(GuidedDenoiser(lambda z, sigma: z, obs, y, weight=1.0, scale="normalized"), x, sigmas, "euler")
    )
    assert torch.allclose(overshoot, (1 - 0.1 * k)[:, None] * r)
    tiny = torch.tensor([10.0, 10.0 * (1 - 1e-7)], dtype=torch.float64)
    sigma = torch.full((3,), 10.0, dtype=torch.float64)
    full = GuidedDenoiser(lambda z, s: z, obs, y, weight=1.0, scale="normalized")(x, sigma)
    assert torch.allclose(
        GuidedDenoiser(lambda z, s: z, obs, y, weight=1.0, scale="normalized", schedule=tiny)(x, sigma), full, rtol=1e-3
    )


def test_step_matched_guidance_converges_in_fewer_steps():
    """On the linear-Gaussian problem with GRF noise, normalized guidance matched to the steps
    gives at 20 steps samples far closer to its many-step limit than the unmatched guidance does
    to its own, and the two many-step limits agree."""
    lg = LinearGaussianPoisson(Poisson(), N, noise=GRFNoise())
    g = torch.Generator().manual_seed(1)
    obs = PointObservation(lg.shape, 40, channels=1, noise=1e-4, generator=g)
    y = obs.observe(lg.sample_prior(1, g), g)[0]

    def run(steps, sampler, matched):
        guidance = {"scale": "normalized", "weight": 1.0, **({} if matched else {"schedule": None})}
        return _sample(lg, obs, y, 8, steps=steps, sampler=sampler, noise=lg.noise, guidance=guidance)

    limit = {m: run(400, "euler", m) for m in (True, False)}
    assert (limit[True] - limit[False]).norm() < 0.03 * limit[False].norm()
    for sampler in ("euler", "dpmpp2m"):
        gap = {m: (run(20, sampler, m) - limit[m]).norm() / limit[m].norm() for m in (True, False)}
        assert gap[True] < 0.5 * gap[False], (sampler, gap)


def test_krylov_guidance_relaxes_every_direction_exactly(monkeypatch):
    """With J = I and GRF noise N the relaxation operator is K = lambda A N A^T, whose spectrum is
    wide: a step-matched Euler step with as many Krylov directions as observations leaves the
    residual exp(-h K) r exactly, while the one-direction step, tuned to r's Rayleigh quotient,
    overshoots the stiff directions."""
    from oplearn.diffusion.samplers import sample
    from oplearn.inverse import guidance

    monkeypatch.setattr(guidance, "KRYLOV_TOLERANCE", 0.0)
    noise, shape, m = GRFNoise(), (1, 16, 16), 10
    obs = PointObservation(shape, m, generator=torch.Generator().manual_seed(0))
    x = noise.sample((2, *shape), torch.Generator().manual_seed(1), dtype=torch.float64)
    y = torch.randn(m, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    r = y - obs.apply(x)
    ana = obs.apply(noise.covariance(obs.adjoint(torch.eye(m, dtype=torch.float64))))  # A N A^T
    spectrum = torch.linalg.eigvalsh(ana)
    assert spectrum[-1] > 100 * spectrum[0]
    lam = 10.0**2 / r.square().mean(dim=1)  # lambda / w of the normalized scale at sigma = 10
    weight = float(2.0 / (lam.min() * spectrum[0]))  # every rate k >= 2: no step factor clamps to 1
    sigmas = torch.tensor([10.0, 5.0], dtype=torch.float64)
    theta, q = torch.linalg.eigh(weight * lam[:, None, None] * ana)
    exact = (q @ (torch.exp(-math.log(2.0) * theta) * (q.transpose(1, 2) @ r[..., None])[..., 0])[..., None])[..., 0]
    for krylov, tolerance in ((m, 1e-6), (1, 1.0)):
        guided = guidance.GuidedDenoiser(
            lambda z, s: z, obs, y, weight=weight, scale="normalized", noise=noise, schedule=sigmas, krylov=krylov
        )
        gap = (y - obs.apply(sample(guided, x, sigmas, "euler")) - exact).norm(dim=1) / r.norm(dim=1)
        assert (gap < tolerance).all() if krylov > 1 else (gap > tolerance).all(), (krylov, gap)


def test_krylov_guidance_converges_in_fewer_steps():
    """On the linear-Gaussian problem with GRF noise, four Krylov directions per step bring 20
    Euler or DPM-Solver++(2M) steps more than twice as close to the many-step limit as one
    direction does; the many-step limits agree."""
    lg = LinearGaussianPoisson(Poisson(), N, noise=GRFNoise())
    g = torch.Generator().manual_seed(1)
    obs = PointObservation(lg.shape, 40, channels=1, noise=1e-4, generator=g)
    y = obs.observe(lg.sample_prior(1, g), g)[0]

    def run(steps, sampler, krylov):
        guidance = {"scale": "normalized", "weight": 0.3, "krylov": krylov}
        return _sample(lg, obs, y, 8, steps=steps, sampler=sampler, noise=lg.noise, guidance=guidance)

    limit = run(400, "euler", 1)
    assert (run(400, "euler", 4) - limit).norm() < 0.01 * limit.norm()
    for sampler in ("euler", "dpmpp2m"):
        gap = {k: (run(20, sampler, k) - limit).norm() / limit.norm() for k in (1, 4)}
        assert gap[4] < 0.5 * gap[1], (sampler, gap)


def test_krylov_guidance_rejects_what_it_cannot_do():
    from oplearn.inverse.guidance import GuidedDenoiser

    obs = PointObservation((1, 8, 8), 5, generator=torch.Generator().manual_seed(0))
    sigmas = karras_sigmas(5, 0.002, 80.0)
    with pytest.raises(OplearnError, match="krylov must be >= 1"):
        GuidedDenoiser(lambda z, s: z, obs, torch.ones(5), schedule=sigmas, krylov=0)
    with pytest.raises(OplearnError, match="step-matched guidance"):
        GuidedDenoiser(lambda z, s: z, obs, torch.ones(5), krylov=4, scale="normalized", schedule=None)
    with pytest.raises(OplearnError, match="PDE-residual"):
        GuidedDenoiser(lambda z, s: z, obs, torch.ones(5), pde_weight=1.0, pde=Poisson(), grid=Grid((8, 8)))


def test_guidance_and_daps_reduce_the_observation_misfit(problem):
    lg, _truth, obs, y, _mean, _std = problem
    unguided = _sample(lg, obs, y, 8, steps=20, guidance={"scale": "normalized", "weight": 0.0})
    misfit0 = obs.misfit(unguided, y[None]).mean()
    for kw in (
        {"guidance": {"scale": "normalized"}},
        {"method": "daps", "daps_options": {"langevin_steps": 100, "ode_steps": 3}},
        {"method": "daps", "daps_options": {"conditional": "gaussian", "ode_steps": 3}},
    ):
        guided = _sample(lg, obs, y, 8, steps=20, **kw)
        assert obs.misfit(guided, y[None]).mean() < 0.2 * misfit0


def test_daps_langevin_step_samples_its_decoupled_posterior():
    """Line 4 of DAPS: the N-preconditioned Langevin steps sample the Gaussian
    N(x0_hat, r^2 N) x N(y; A x, tau^2), whose mean and observed variance are closed-form."""
    from oplearn.inverse.daps import decoupled_langevin

    noise, shape, m, count = GRFNoise(), (1, 10, 10), 6, 4000
    obs = PointObservation(shape, m, generator=torch.Generator().manual_seed(0))
    x0_hat = noise.sample((1, *shape), torch.Generator().manual_seed(1), dtype=torch.float64).expand(count, *shape)
    y = torch.randn(m, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    r, tau = 0.5, 0.5
    ana = obs.apply(noise.covariance(obs.adjoint(torch.eye(m, dtype=torch.float64))))  # A N A^T
    gain = r**2 * ana @ torch.linalg.inv(r**2 * ana + tau**2 * torch.eye(m, dtype=torch.float64))
    mean = obs.apply(x0_hat[:1])[0] + gain @ (y - obs.apply(x0_hat[:1])[0])
    cov = r**2 * ana - gain @ (r**2 * ana)
    eta = torch.full((count,), 0.2 / (1 / r**2 + torch.linalg.eigvalsh(ana)[-1].item() / tau**2), dtype=torch.float64)
    x = decoupled_langevin(obs.apply, y, tau, x0_hat, r, eta, 300, noise, torch.Generator().manual_seed(3))
    observed = obs.apply(x)
    assert (observed.mean(0) - mean).abs().max() < 0.05 * cov.diagonal().sqrt().max()
    # Euler-Maruyama's variance error is O(eta L): up to 14% at this step
    assert (observed.var(0) / cov.diagonal() - 1).abs().max() < 0.2


def _decoupled_posterior(noise, obs, x0_hat, y, r, tau):
    """Mean ``(C, *spatial)`` and covariance ``(d, d)`` of N(x0_hat, r^2 N) x N(y; A x, tau^2) for one sample."""
    d = x0_hat[0].numel()
    n_mat = noise.covariance(torch.eye(d, dtype=torch.float64).reshape(d, *x0_hat.shape[1:])).reshape(d, d)
    a = obs.apply(torch.eye(d, dtype=torch.float64).reshape(d, *x0_hat.shape[1:])).T  # (m, d)
    prior = r**2 * n_mat
    gain = prior @ a.T @ torch.linalg.inv(a @ prior @ a.T + tau**2 * torch.eye(len(a), dtype=torch.float64))
    mean = x0_hat[0].flatten() + gain @ (y - a @ x0_hat[0].flatten())
    return mean.reshape(x0_hat.shape[1:]), prior - gain @ a @ prior, a


def test_daps_gaussian_conditional_is_exact_and_langevin_is_not_at_the_papers_steps():
    """Line 4 of DAPS on N(x0_hat, r^2 N) x N(y; A x, tau^2): the exact (Matheron) draw matches the
    closed-form mean and covariance; 100 Langevin steps at the stable step (DAPS-1K) leave the
    weakly observed directions where they started when the condition number is large (the
    account of BENCHMARKS.md)."""
    from oplearn.inverse.daps import LANGEVIN_STEPS, decoupled_gaussian, decoupled_langevin
    from oplearn.inverse.guidance import observed_noise_gram

    noise, shape, m, count = GRFNoise(), (1, 10, 10), 12, 1000
    obs = PointObservation(shape, m, generator=torch.Generator().manual_seed(0))
    x0_hat = noise.sample((1, *shape), torch.Generator().manual_seed(1), dtype=torch.float64).expand(count, *shape)
    y = torch.randn(m, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    r, tau = 0.5, 0.005
    mean, cov, a = _decoupled_posterior(noise, obs, x0_hat[:1], y, r, tau)
    gram = observed_noise_gram(obs, lambda z: z, noise.covariance, torch.zeros_like(x0_hat[:1]))
    x = decoupled_gaussian(obs.apply, y, tau, x0_hat, r, gram, noise, torch.Generator().manual_seed(3))
    flat = x.flatten(1)
    std = cov.diagonal().clamp_min(0).sqrt()
    assert ((flat.mean(0) - mean.flatten()).abs() / std).max() < 5 / math.sqrt(count)
    # the sample covariance along random directions: a chi-square with count - 1 degrees of freedom
    probes = torch.randn(5, flat.shape[1], generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    projected = flat @ probes.T
    assert ((projected.var(0) / (probes @ cov * probes).sum(1) - 1).abs() < 0.15).all()

    ana = a @ noise.covariance(a.reshape(m, *shape)).reshape(m, -1).T  # A N A^T
    values, vectors = torch.linalg.eigh(ana)
    beta = values[-1].item()
    assert 1 + r**2 * beta / tau**2 > 1e3  # stiff, as on the benchmark's problems
    eta = torch.full((count,), 1 / (1 / r**2 + beta / tau**2), dtype=torch.float64)
    x = decoupled_langevin(obs.apply, y, tau, x0_hat, r, eta, LANGEVIN_STEPS, noise, torch.Generator().manual_seed(3))
    target = vectors.T @ (a @ mean.flatten() - obs.apply(x0_hat[:1])[0])  # the pull of the data, per eigen-direction
    moved = vectors.T @ (obs.apply(x).mean(0) - obs.apply(x0_hat[:1])[0])
    assert abs(moved[-1] / target[-1] - 1) < 0.05  # the stiffest direction converges
    # the weakest relaxes at eta (g_min / tau^2 + 1 / r^2) ~ g_min / beta = 4e-4 per step: 4% in 100 steps
    assert abs(moved[0] / target[0]) < 0.2


def test_daps_with_the_exact_decoupled_conditional_samples_the_posterior(problem):
    """The annealing of DAPS (lines 1-5) is exact: with the exact decoupled conditional of the
    Gaussian prior in line 4 its mean is the exact posterior mean within Monte Carlo error."""
    lg, _truth, obs, y, mean, std = problem
    from oplearn.inverse.daps import annealing_levels

    count = 64
    x = sample_posterior(
        lg.denoiser,
        obs,
        y,
        lg.shape,
        count,
        annealing_levels(40),
        method="daps",
        fields=lg.fields,
        daps_options={"conditional": lg.decoupled_conditional(obs, y), "ode_steps": 1},
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(5),
    )
    gap = (x.mean(0) - mean).norm() / math.sqrt(std.square().sum() / count)
    assert gap < 2.5
    assert (x.std(0).mean() / std.mean() - 1).abs() < 0.15


def test_pde_residual_term_reduces_the_residual():
    """A prior that ignores the PDE (independent f and u) guided by the Poisson residual alone."""
    pde = Poisson()
    n = 8
    grid = pde.grid(n)
    c = pde.field.covariance(grid)
    c = c / c.diagonal().mean()
    k = torch.block_diag(c, c)
    denoise = GaussianDenoiser(k)
    obs = PointObservation((2, n, n), 1, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(1, dtype=torch.float64)

    def residual_norm(weight):
        x = sample_posterior(
            denoise,
            obs,
            y,
            (2, n, n),
            4,
            karras_sigmas(12),
            guidance={"scale": "normalized", "weight": 0.0, "pde_weight": weight, "pde": pde, "grid": grid},
            dtype=torch.float64,
            generator=torch.Generator().manual_seed(1),
        )
        return pde.residual(x[:, 1:], x[:, :1], grid).flatten(1).norm(dim=1).mean()

    assert residual_norm(10.0) < 0.6 * residual_norm(0.0)


def test_decoupled_prior_with_forward_operator_matches_the_joint_posterior(problem):
    """DDIS: a prior on f alone and the forward map inside the guidance give the same exact posterior."""
    lg, _truth, obs, y, mean, std = problem
    scale_f = lg.scale[0]
    prior_f = GaussianDenoiser(lg.source_covariance / scale_f**2)

    class Solve(torch.nn.Module):
        def forward(self, f):
            return (f.flatten(1) @ lg.solution_operator.T.to(f)).reshape(f.shape)

    fields = DecoupledFields(Solve(), decode=lambda z: z * scale_f)
    x = sample_posterior(
        prior_f,
        obs,
        y,
        (1, N, N),
        16,
        karras_sigmas(10),
        fields=fields,
        guidance={"scale": "covariance"},
        dtype=torch.float64,
        generator=torch.Generator().manual_seed(3),
    )
    post = summarize(x)
    free = std > 1e-6
    z = ((post.mean - mean) / std)[free].square().mean().sqrt() * math.sqrt(16)
    assert x.shape == (16, 2, N, N) and z < 2.0


def test_calibration_and_error_rate():
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(400, 1, 30, 30, generator=g, dtype=torch.float64)
    truth = torch.randn(1, 30, 30, generator=g, dtype=torch.float64)
    post = summarize(samples)
    assert abs(calibration(post, truth).item() - 0.9) < 0.03
    assert calibration(post, 5 + truth).item() == 0
    a = torch.tensor([[3.0, 12.0, 12.0, 3.0]])
    assert coefficient_error_rate(torch.tensor([[4.0, 11.0, 7.0, 3.0]]), a, 3.0, 12.0).item() == 0.25
    metrics = posterior_metrics(post, truth, ("a",), two_valued={"a": (-1.0, 1.0)})
    assert set(metrics["a"]) == {"relative_l2", "calibration_90", "mean_std", "error_rate"}


def test_interpolation_baselines():
    from oplearn.inverse.baselines import interpolate, interpolate_and_solve, regression_pairs
    from oplearn.pdes.darcy import Darcy

    grid = Grid((16, 16))
    x, yy = grid.coordinates(torch.float64)
    linear = (1 + 2 * x - 3 * yy)[None, None]
    obs = PointObservation((1, 16, 16), 60, generator=torch.Generator().manual_seed(0))
    hull = (x >= x[obs.mask()[0]].min()) & (x <= x[obs.mask()[0]].max())
    values = interpolate(obs, obs.apply(linear), grid, 0)[0]
    assert values.shape == (16, 16)
    assert torch.allclose(values[obs.mask()[0]], linear[0, 0][obs.mask()[0]])
    assert (values - linear[0, 0])[hull].abs().max() < 1.5  # nearest-neighbour fill outside the hull only
    darcy = Darcy()
    a = darcy.sample_input(2, grid, torch.Generator().manual_seed(0))
    fields = torch.cat([a, darcy.solve(a, grid)], dim=1)
    everything = Subsample((2, 16, 16), 1, channels=0)
    solved = interpolate_and_solve(darcy, everything, everything.apply(fields), grid)
    assert torch.allclose(solved, fields)
    inputs, targets = regression_pairs(
        fields, grid, 30, observed=[1], targets=[0], generator=torch.Generator().manual_seed(0)
    )
    assert inputs.shape == (2, 2, 16, 16) and targets.shape == (2, 1, 16, 16) and inputs[:, 1].sum() == 60


def test_write_fields_round_trip(tmp_path):
    from oplearn.data.files import load_fields, write_fields

    grid = Grid((5, 4))
    path = write_fields(
        tmp_path / "d.h5", torch.randn(3, 2, 5, 4), torch.randn(3, 1, 5, 4), grid, (["a", "m"], ["u"]), "darcy", {}, 0
    )
    data = load_fields(path)
    assert data.inputs.shape == (3, 2, 5, 4) and data.grid == grid and not (tmp_path / "d.h5.partial").exists()
