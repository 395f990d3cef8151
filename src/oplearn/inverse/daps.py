r"""DAPS: decoupled annealing posterior sampling.

Along decreasing noise levels :math:`\sigma_0 > \dots > \sigma_{N-1} > \sigma_N = 0`, starting
from :math:`x_0 \sim \mathcal N(0, \sigma_0^2 I)`:

1. solve the unguided probability-flow ODE from :math:`(x_i, \sigma_i)` to :math:`\sigma = 0` with a
   few sampler steps: :math:`\hat x_0(x_i)`;
2. approximate :math:`p(x_0 \mid x_i, y) \propto \mathcal N(x_0; \hat x_0, r_i^2 I)\, p(y \mid x_0)` with
   :math:`r_i = \sigma_i` and draw from it with Langevin steps on

   .. math:: U(x_0) = \frac{\lVert y - A\,\Phi(x_0) \rVert^2}{2 \tau^2} + \frac{\lVert x_0 - \hat x_0 \rVert^2}{2 r_i^2},
             \qquad x_0 \leftarrow x_0 - \eta \nabla U + \sqrt{2 \eta}\, \xi,

   started at :math:`\hat x_0`, with step :math:`\eta = \text{lr} / (\beta \tau^{-2} + r_i^{-2})`,
   :math:`\beta` the largest eigenvalue of :math:`B^\top B`, :math:`B` the Jacobian of
   :math:`x_0 \mapsto A \Phi(x_0)` at :math:`\hat x_0` (power iteration, warm-started from
   level to level): the inverse of the largest curvature of :math:`U`, so ``lr < 1`` is stable;
3. re-noise: :math:`x_{i+1} = x_0 + \sigma_{i+1} \epsilon`.

:math:`\tau` is the observation noise level unless ``tau`` is given (it must be for noise-free data). Unlike DPS, no gradient flows through the denoiser: only through
:math:`\Phi` (the identity, the prior's de-normalisation, or DDIS's forward operator).

Shapes: ``noise (batch, C, *spatial) -> (batch, C, *spatial)``.
"""

from __future__ import annotations

from typing import Callable

import torch
from oplearn.progress import progress as progress_bar

from oplearn.errors import ConfigError
from oplearn.inverse.guidance import Denoiser, Fields
from oplearn.inverse.observations import Observation


def _curvature(observation: Observation, fields: Fields | None, x: torch.Tensor, v: torch.Tensor, steps: int):
    r"""Per sample, the largest eigenvalue of :math:`B^\top B` (:math:`B` the Jacobian of
    :math:`A \Phi` at ``x``) by ``steps`` power iterations from ``v``: ``(batch,)`` and the new ``v``."""
    if fields is None:  # B = A, a selection: B^T B is a 0/1 diagonal
        return torch.ones(len(x), dtype=x.dtype, device=x.device), v

    def observed(z: torch.Tensor) -> torch.Tensor:
        return observation.apply(fields(z))

    beta = None
    for _ in range(max(steps, 1)):
        v = v / v.flatten(1).norm(dim=1).clamp_min(1e-30).reshape(-1, *[1] * (x.ndim - 1))
        with torch.enable_grad():
            _, bv = torch.autograd.functional.jvp(observed, x.detach(), v)
            _, btbv = torch.autograd.functional.vjp(observed, x.detach(), bv)
        beta = (v * btbv).flatten(1).sum(dim=1)
        v = btbv.detach()
    return beta.detach().clamp_min(0), v


def daps(
    denoise: Denoiser,
    observation: Observation,
    y: torch.Tensor,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    ode_steps: int = 5,
    langevin_steps: int = 20,
    lr: float = 0.5,
    tau: float | None = None,
    fields: Fields | None = None,
    method: str = "euler",
    power_steps: int = 5,
    renoise: Callable[[tuple[int, ...], torch.Generator | None], torch.Tensor] | None = None,
    generator: torch.Generator | None = None,
    progress: bool = False,
) -> torch.Tensor:
    """Posterior samples by DAPS (module docstring) from ``noise``, the initial state at
    ``sigmas[0]`` (already scaled); ``sigmas`` is the decreasing annealing schedule ending in 0
    (e.g. :func:`oplearn.diffusion.schedules.karras_sigmas`). ``renoise(shape, generator)``
    draws the unit noise of the forward process (white by default; the prior's GRF noise for
    a function-space prior) for the re-noising and the Langevin steps' initial direction."""
    from oplearn.diffusion.samplers import sample
    from oplearn.diffusion.schedules import karras_sigmas

    if ode_steps < 1 or langevin_steps < 0:
        raise ConfigError(f"DAPS needs ode_steps >= 1 and langevin_steps >= 0, got {ode_steps}, {langevin_steps}")
    if not 0 < lr < 2:
        raise ConfigError(f"the DAPS Langevin step factor lr must lie in (0, 2), got {lr}")
    if float(sigmas[-1]) != 0:
        raise ConfigError("the DAPS annealing schedule must end in sigma = 0")
    tau = observation.noise if tau is None else float(tau)
    if not tau > 0:
        raise ConfigError("DAPS needs a likelihood width tau > 0: give tau for noise-free observations")
    y = y if y.ndim == 2 else y.unsqueeze(0)
    tau2 = tau**2
    sigma_min = float(sigmas[-2])

    def randn(like: torch.Tensor) -> torch.Tensor:
        device = generator.device if generator is not None else like.device
        return torch.randn(like.shape, generator=generator, dtype=like.dtype, device=device).to(like.device)

    draw = renoise or (lambda shape, gen: randn(noise.new_empty(shape)))
    x = noise
    x0 = x
    direction = randn(x)
    levels = range(len(sigmas) - 1)
    for i in progress_bar(levels, desc="daps", enabled=progress):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        if sigma <= sigma_min * (1 + 1e-9):
            x0_hat = denoise(x, torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device))
        else:
            ode = karras_sigmas(ode_steps, sigma_min, sigma).to(x.dtype)
            x0_hat = sample(denoise, x, ode, method=method)
        x0_hat = x0_hat.detach()
        r2 = sigma**2
        beta, direction = _curvature(observation, fields, x0_hat, direction, power_steps)
        eta = lr / (beta.reshape(-1, *[1] * (x.ndim - 1)) / tau2 + 1 / r2)
        x0 = x0_hat.clone()
        for _ in range(langevin_steps):
            with torch.enable_grad():
                z = x0.detach().requires_grad_(True)
                phys = z if fields is None else fields(z)
                energy = observation.misfit(phys, y.to(phys)).sum() / tau2 + 0.5 * (z - x0_hat).square().sum() / r2
                grad = torch.autograd.grad(energy, z)[0]
            x0 = x0 - eta * grad + (2 * eta) ** 0.5 * randn(x0)
        x = x0 + sigma_next * draw(tuple(x0.shape), generator).to(x0) if sigma_next > 0 else x0
    return x0.detach()
