r"""DAPS: decoupled annealing posterior sampling (Zhang et al., CVPR 2025).

DAPS anneals the noise level of the posterior's time marginals instead of following one
trajectory: for a decreasing schedule :math:`\sigma_0 > \dots > \sigma_{N_A - 1} > \sigma_{N_A} = 0`
it draws :math:`x_0 \sim p(x_0 \mid x_{\sigma_i}, y)` and re-noises it to the next level, so that
:math:`x_{\sigma_{i+1}} \sim p(x_{\sigma_{i+1}} \mid y)` whenever :math:`x_{\sigma_i} \sim p(x_{\sigma_i} \mid y)`
and the decoupled draw is exact. Algorithm 1 of the paper, line by line, with its DAPS-1K
settings (the defaults here, as the authors released them):

1. :math:`x_{\sigma_0} \sim \mathcal N(0, \sigma_0^2 N)` (``noise``); the annealing levels are
   :math:`N_A = 200` Karras levels (:math:`\rho = 7`): the grid of :math:`N_A + 1` points from
   :math:`\sigma_{max}` to :math:`\sigma_{min} = 0.1` without its last point, then 0
   (:func:`annealing_levels`; the paper anneals from 100, here from the prior's
   :math:`\sigma_{max}`, 80 for EDM priors);
2. for :math:`i = 0, \dots, N_A - 1`:

   3. :math:`\hat x_0 = \hat x_0(x_{\sigma_i})` by solving the prior's probability-flow ODE from
      :math:`\sigma_i` to 0 with :math:`N_{ODE} = 5` Euler steps on the same kind of grid (6 Karras
      points from :math:`\sigma_i` to 0.01 without the last, then 0; ``ode_steps``,
      ``ode_sigma_min``): the ODE's end point, not Tweedie's mean;
   4. approximate :math:`p(x_0 \mid x_{\sigma_i}) \approx \mathcal N(\hat x_0, r_i^2 N)` with
      :math:`r_i = \sigma_i` (the paper's choice) and draw
      :math:`x_0 \sim p(x_0 \mid x_{\sigma_i}, y) \propto \mathcal N(x_0; \hat x_0, r_i^2 N)\,
      \mathcal N(y; A\Phi(x_0), \tau^2 I)` (``conditional``):

      ``"langevin"`` (the paper, the default): :math:`N_L = 100` Langevin steps
      (``langevin_steps``) from :math:`x_0 = \hat x_0`,

      .. math:: x_0 \leftarrow x_0 + \eta_i \Big( -N B^\top \frac{A\Phi(x_0) - y}{\tau^2}
                - \frac{x_0 - \hat x_0}{r_i^2} \Big) + \sqrt{2 \eta_i}\, N^{1/2} \xi,

      :math:`B` the Jacobian of :math:`A\Phi` at :math:`x_0`; the step decays linearly over the
      annealing, :math:`\eta_i = \text{lr}\,(1 - (1 - \kappa)\, i / (N_A + 1))` with
      :math:`\text{lr} = 10^{-4}`, :math:`\kappa = 0.01` (``lr``, ``lr_min_ratio``), and :math:`\tau` is
      the likelihood width (``tau``: the paper uses 0.01 on images in [-1, 1]; here the
      observation noise unless given);

      ``"gaussian"``: the same conditional drawn exactly when :math:`A\Phi` is affine (it is
      then Gaussian), by Matheron's rule: :math:`x' = \hat x_0 + r_i N^{1/2}\xi`,
      :math:`x_0 = x' + r_i^2 N B^\top (r_i^2 B N B^\top + \tau^2 I)^{-1} (y - A\Phi(x') - \tau\epsilon)`,
      with :math:`B N B^\top` diagonalised once (:func:`oplearn.inverse.guidance.observed_noise_gram`):
      what the Langevin steps would reach if they converged (for a non-affine :math:`\Phi` it is the
      draw of the conditional linearised at :math:`x'`, not exact);

      a callable ``conditional(x_sigma, x0_hat, sigma, generator) -> x0`` draws any other
      conditional (the benchmark's exact one of a Gaussian prior);
   5. :math:`x_{\sigma_{i+1}} = x_0 + \sigma_{i+1} N^{1/2} \epsilon` (re-noise; nothing at the last level);

6. return :math:`x_0` of the last level.

Two adaptations, both of which reduce to the paper's algorithm for white noise and a
well-scaled step: :math:`N` is the covariance of the prior's forward noise (:math:`N = I` for
white noise, the paper's setting; with a GRF-noise prior :math:`x_\sigma - x_0` has covariance
:math:`\sigma^2 N`, so :math:`r_i^2 N` is the matching approximation and the Langevin dynamics
is preconditioned by :math:`N`; the white metric with GRF re-noising diverged on the
benchmark's linear-Gaussian problem), and :math:`\eta_i` is capped at :math:`1/L_i`,
:math:`L_i = r_i^{-2} + \beta / \tau^2` with :math:`\beta` the largest eigenvalue of :math:`B N B^\top`
(power iteration), the stability limit of the Langevin step. The paper's step is absolute,
tuned for images (its likelihood term :math:`\lVert A x - y \rVert^2 / \tau^2` has curvature
:math:`2 / \tau^2`, so :math:`\text{lr} = 10^{-4}` sits at the stability limit 2 of a pixel mask); with
GRF noise :math:`\beta` grows with the number of correlated observations (376 for 500 points of
a 32x32 grid), and the uncapped step diverges. The paper's likelihood is
:math:`\mathcal N(A\Phi(x_0), \tau^2 I)` (its released loss omits the 1/2, i.e. uses the width
:math:`\tau / \sqrt 2`); here the width is :math:`\tau`, the Bayesian one for :math:`\tau = s`.

Where DAPS stands against the exact posterior of the linear-Gaussian problems (BENCHMARKS.md,
32x32, 31/123/500 points, both directions; gap of the mean of 16 draws in Monte Carlo errors,
DPS's 3.2-5.4), term by term:

* the annealing (lines 1, 2, 5) is exact: with the exact decoupled conditional (Tweedie's mean
  and covariance :math:`\sigma^2 J N`) in line 4 the gap is 0.9-1.6 in every cell;
* the Langevin steps of line 4 do not converge: along an eigen-direction of :math:`B N B^\top`
  with eigenvalue :math:`g` the mean relaxes by :math:`\eta_i (g / \tau^2 + 1 / r_i^2) \le
  (g + \tau^2 / r_i^2) / (\beta + \tau^2 / r_i^2)` per step, and :math:`g / \beta` falls to
  :math:`3 \cdot 10^{-7}` at 500 points (91% of the directions below :math:`10^{-4}`), so only the
  stiffest observed combinations reach the data. Drawn exactly (``conditional="gaussian"``), the
  gap falls from 18-23 to 3.2-3.7 where u is observed at 123 and 500 points, at or below DPS;
* :math:`r_i = \sigma_i` is the rest: :math:`\sigma_i^2 N` has no cross-covariance between
  fields and gives every mode the variance :math:`\sigma_i^2` instead of
  :math:`\sigma_i^2 \lambda / (\lambda + \sigma_i^2)`, so observations of one field move only that
  field in line 4, the next level's ODE passes little to the others before re-noising undoes
  it, and the last level leaves :math:`0.1 N^{1/2}` of noise on every sample: where f is observed
  and u recovered the gap is 22-325 even with line 4 drawn exactly, and 5.3 (DPS 3.9) where u is
  observed at 31 points.

Unlike DPS, no gradient flows through the denoiser: only through :math:`\Phi` (the identity,
the prior's de-normalisation, or DDIS's forward operator).

Shapes: ``noise (batch, C, *spatial) -> (batch, C, *spatial)``.

References: B. Zhang, W. Chu, J. Berner, C. Meng, A. Anandkumar, Y. Song, "Improving Diffusion
Inverse Problem Solving with Decoupled Noise Annealing", CVPR 2025 (arXiv:2407.01521),
Algorithm 1 and Section 3.3; DAPS-1K: 200 annealing levels x 5 ODE steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from oplearn.diffusion.noise import GRFNoise, WhiteNoise
from oplearn.errors import ConfigError
from oplearn.inverse.guidance import DIFFERENCE_STEP, Denoiser, Fields, observed_noise_gram
from oplearn.inverse.observations import Observation
from oplearn.progress import progress as progress_bar

#: The paper's annealing range (its ``sigma_min``; ``sigma_max`` comes from the prior).
SIGMA_MIN = 0.1
#: The paper's inner ODE end level.
ODE_SIGMA_MIN = 0.01
#: Ways to draw line 4's decoupled conditional (module docstring).
CONDITIONALS = ("langevin", "gaussian")
#: The paper's DAPS-1K settings.
LEVELS, ODE_STEPS, LANGEVIN_STEPS, LR, LR_MIN_RATIO = 200, 5, 100, 1e-4, 0.01


def daps_levels(steps: int, sigma_max: float, sigma_min: float) -> torch.Tensor:
    """DAPS's grids: the ``steps + 1`` Karras points (rho 7) from ``sigma_max`` to ``sigma_min`` without
    the last, then 0: ``steps`` levels, ``(steps + 1,)``."""
    from oplearn.diffusion.schedules import karras_sigmas

    levels = karras_sigmas(steps + 1, sigma_min, sigma_max, 7.0)
    return torch.cat([levels[:steps], levels[-1:]])


def annealing_levels(levels: int = LEVELS, sigma_max: float = 80.0, sigma_min: float = SIGMA_MIN) -> torch.Tensor:
    """DAPS's annealing schedule (module docstring, line 1): ``levels`` levels from ``sigma_max`` towards
    ``sigma_min``, then 0."""
    return daps_levels(levels, sigma_max, sigma_min)


def _largest_eigenvalue(
    observed: Fields, x: torch.Tensor, covariance: Fields, v: torch.Tensor, steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Per sample, the largest eigenvalue of :math:`B N B^\top` (:math:`B` the Jacobian of
    ``observed`` at ``x``) by ``steps`` power iterations from ``v (batch, m)``: ``(batch,)`` and the new ``v``."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        out = observed(x)
    base = out.detach()
    value = None
    for _ in range(max(steps, 1)):
        v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-30)
        u = covariance(torch.autograd.grad(out, x, grad_outputs=v, retain_graph=True)[0])
        eps = (
            DIFFERENCE_STEP
            * x.detach().flatten(1).norm(dim=1).clamp_min(1.0)
            / u.flatten(1).norm(dim=1).clamp_min(1e-30)
        )
        with torch.no_grad():
            w = (observed(x.detach() + eps.reshape(-1, *[1] * (x.ndim - 1)) * u) - base) / eps[:, None]
        value = (v * w).sum(dim=1)
        v = w
    return value.clamp_min(0), v


def daps(
    denoise: Denoiser,
    observation: Observation,
    y: torch.Tensor,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    ode_steps: int = ODE_STEPS,
    langevin_steps: int = LANGEVIN_STEPS,
    lr: float = LR,
    lr_min_ratio: float = LR_MIN_RATIO,
    tau: float | None = None,
    fields: Fields | None = None,
    prior_noise: WhiteNoise | GRFNoise | None = None,
    ode_sigma_min: float = ODE_SIGMA_MIN,
    power_steps: int = 5,
    conditional: str | Callable = "langevin",
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Posterior samples by DAPS (module docstring) from ``noise``, the initial state at
    ``sigmas[0]`` (already scaled); ``sigmas`` is the decreasing annealing schedule ending in 0
    (:func:`annealing_levels`); ``prior_noise`` is the prior's forward noise (white by default),
    whose covariance is :math:`N` and whose draws re-noise; ``conditional`` how line 4 draws
    (:data:`CONDITIONALS` or a callable, module docstring)."""
    from oplearn.diffusion.samplers import sample

    if not callable(conditional) and conditional not in CONDITIONALS:
        raise ConfigError(f"the DAPS conditional must be one of {CONDITIONALS}, got {conditional!r}")
    if ode_steps < 1 or langevin_steps < 0:
        raise ConfigError(f"DAPS needs ode_steps >= 1 and langevin_steps >= 0, got {ode_steps}, {langevin_steps}")
    if not lr > 0 or not 0 < lr_min_ratio <= 1:
        raise ConfigError(f"DAPS needs lr > 0 and 0 < lr_min_ratio <= 1, got {lr}, {lr_min_ratio}")
    if float(sigmas[-1]) != 0:
        raise ConfigError("the DAPS annealing schedule must end in sigma = 0")
    tau = observation.noise if tau is None else float(tau)
    if not tau > 0:
        raise ConfigError("DAPS needs a likelihood width tau > 0: give tau for noise-free observations")
    prior_noise = prior_noise or WhiteNoise()
    y = y if y.ndim == 2 else y.unsqueeze(0)
    tau2 = tau**2

    def observed(z: torch.Tensor) -> torch.Tensor:
        return observation.apply(z if fields is None else fields(z))

    def draw(like: torch.Tensor) -> torch.Tensor:
        return prior_noise.sample(tuple(like.shape), generator, dtype=like.dtype).to(like.device)

    x = noise
    x0 = x
    direction = torch.randn(
        (len(x), len(observation)),
        generator=generator,
        dtype=x.dtype,
        device=generator.device if generator is not None else x.device,
    ).to(x.device)
    gram = None
    if conditional == "gaussian":
        gram = observed_noise_gram(
            observation, fields or (lambda z: z), prior_noise.covariance, torch.zeros_like(x[:1])
        )
    levels = len(sigmas) - 1
    for i in progress_bar(range(levels), desc="daps", enabled=progress):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        ode = daps_levels(ode_steps, sigma, min(ode_sigma_min, 0.5 * sigma)).to(x.dtype)  # line 3
        with torch.no_grad():
            x0_hat = sample(denoise, x, ode, method="euler")
        if callable(conditional):  # line 4
            x0 = conditional(x, x0_hat, sigma, generator)
        elif conditional == "gaussian":
            x0 = decoupled_gaussian(observed, y, tau, x0_hat, sigma, gram, prior_noise, generator)
        else:
            beta, direction = _largest_eigenvalue(observed, x0_hat, prior_noise.covariance, direction, power_steps)
            eta = torch.minimum(
                torch.full_like(beta, lr * (1 - (1 - lr_min_ratio) * i / (levels + 1))),
                1 / (1 / sigma**2 + beta / tau2),
            )
            x0 = decoupled_langevin(observed, y, tau, x0_hat, sigma, eta, langevin_steps, prior_noise, generator)
        x = x0 + sigma_next * draw(x0) if sigma_next > 0 else x0  # line 5
    return x0.detach()


def decoupled_langevin(
    observed: Fields,
    y: torch.Tensor,
    tau: float,
    x0_hat: torch.Tensor,
    r: float,
    eta: torch.Tensor,
    steps: int,
    prior_noise: WhiteNoise | GRFNoise,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Line 4 of DAPS: ``steps`` Langevin steps of size ``eta (batch,)`` from :math:`\hat x_0` on
    :math:`p(x_0 \mid x_\sigma, y) \propto \mathcal N(x_0; \hat x_0, r^2 N)\, \mathcal N(y; A\Phi(x_0), \tau^2 I)`,
    preconditioned by :math:`N` (module docstring); ``observed(x) = A Phi(x)``. Shapes: ``(batch, C, *spatial)``."""
    eta = eta.reshape(-1, *[1] * (x0_hat.ndim - 1))
    x0 = x0_hat.clone()
    for _ in range(steps):
        with torch.enable_grad():
            z = x0.detach().requires_grad_(True)
            grad = torch.autograd.grad(0.5 * (observed(z) - y.to(z)).square().sum() / tau**2, z)[0]
        kick = prior_noise.sample(tuple(x0.shape), generator, dtype=x0.dtype).to(x0.device)
        x0 = x0 - eta * (prior_noise.covariance(grad) + (x0 - x0_hat) / r**2) + (2 * eta).sqrt() * kick
    return x0.detach()


def decoupled_gaussian(
    observed: Callable[[torch.Tensor], torch.Tensor],
    y: torch.Tensor,
    tau: float,
    x0_hat: torch.Tensor,
    r: float,
    gram: tuple[torch.Tensor, torch.Tensor],
    prior_noise: WhiteNoise | GRFNoise,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""Line 4 of DAPS drawn exactly for an affine ``observed(x) = A Phi(x)``: one draw per sample of
    :math:`\mathcal N(x_0; \hat x_0, r^2 N)\, \mathcal N(y; A\Phi(x_0), \tau^2 I)` by Matheron's rule
    (module docstring), ``gram`` the eigenvalues and eigenvectors of :math:`B N B^\top`
    (:func:`oplearn.inverse.guidance.observed_noise_gram`). Shapes: ``(batch, C, *spatial)``."""
    eigenvalues, vectors = (t.to(x0_hat) for t in gram)
    prior = x0_hat + r * prior_noise.sample(tuple(x0_hat.shape), generator, dtype=x0_hat.dtype).to(x0_hat.device)
    with torch.enable_grad():
        z = prior.detach().requires_grad_(True)
        predicted = observed(z)
    kick = tau * torch.randn(
        predicted.shape,
        generator=generator,
        dtype=predicted.dtype,
        device=generator.device if generator is not None else predicted.device,
    ).to(predicted.device)
    misfit = y.to(predicted) - predicted.detach() - kick
    weights = ((misfit @ vectors) / (r**2 * eigenvalues + tau**2)) @ vectors.T  # (r^2 B N B^T + tau^2)^-1 misfit
    pull = torch.autograd.grad(predicted, z, grad_outputs=weights)[0]  # B^T weights
    return (prior + r**2 * prior_noise.covariance(pull)).detach()
