r"""Posterior sampling with a diffusion prior, posterior statistics and their scores against the truth.

:func:`sample_posterior` draws ``M`` samples for one observation with guided ODE sampling
(:class:`~oplearn.inverse.guidance.GuidedDenoiser` inside :func:`oplearn.diffusion.samplers.sample`)
or with :func:`~oplearn.inverse.daps.daps`. :func:`summarize` reduces samples to the posterior
mean, standard deviation and the central 90% band, and :func:`posterior_metrics` scores them:

* relative L2 of the posterior mean per channel (:func:`oplearn.metrics.relative_l2`);
* calibration: the fraction of entries of the truth inside the band between the empirical
  5% and 95% quantiles of the samples (0.9 for a calibrated posterior; with ``M`` samples the
  expected coverage of an empirical band is somewhat below 0.9 for small ``M``);
* for a two-valued coefficient (Darcy) the coefficient error rate: the fraction of nodes whose
  posterior mean, binarised at the midpoint of the two values, differs from the truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from oplearn.diffusion.noise import GRFNoise, WhiteNoise
from oplearn.errors import ConfigError
from oplearn.inverse.daps import daps
from oplearn.inverse.guidance import Denoiser, Fields, GuidedDenoiser
from oplearn.inverse.observations import Observation
from oplearn.metrics import relative_l2

METHODS = ("dps", "daps")
BAND = 0.9


@dataclass
class Posterior:
    """Posterior samples and their statistics, all physical fields.

    Attributes
    ----------
    samples : ``(M, C, *spatial)``
    mean, std, lower, upper : ``(C, *spatial)``; ``lower``/``upper`` bound the central 90% band.
    """

    samples: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor


def summarize(samples: torch.Tensor, level: float = BAND) -> Posterior:
    """Mean, standard deviation and the central ``level`` band (empirical quantiles) of ``samples (M, C, *spatial)``."""
    if len(samples) < 2:
        raise ConfigError(f"posterior statistics need at least 2 samples, got {len(samples)}")
    s = samples.double()
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    lower, upper = torch.quantile(s.flatten(1), q, dim=0).reshape(2, *s.shape[1:])
    return Posterior(samples, s.mean(dim=0), s.std(dim=0), lower, upper)


def calibration(posterior: Posterior, truth: torch.Tensor) -> torch.Tensor:
    """Per channel, the fraction of ``truth (C, *spatial)`` inside the posterior band: ``(C,)``."""
    inside = (truth.double() >= posterior.lower) & (truth.double() <= posterior.upper)
    return inside.flatten(1).double().mean(dim=1)


def coefficient_error_rate(pred: torch.Tensor, true: torch.Tensor, low: float, high: float) -> torch.Tensor:
    r"""Fraction of nodes where :math:`[p \ge (low + high)/2] \ne [t \ge (low + high)/2]`: ``(batch, ...) -> (batch,)``."""
    threshold = 0.5 * (low + high)
    return ((pred >= threshold) != (true >= threshold)).flatten(1).double().mean(dim=1)


def posterior_metrics(
    posterior: Posterior, truth: torch.Tensor, names: tuple[str, ...], two_valued: dict | None = None
) -> dict:
    """Scores of the posterior against ``truth (C, *spatial)``: ``{channel: {metric: value}}``.

    ``two_valued`` maps a channel name to its ``(low, high)`` values (Darcy's coefficient) to add
    the coefficient error rate.
    """
    cover = calibration(posterior, truth)
    out = {}
    for c, name in enumerate(names):
        row = {
            "relative_l2": relative_l2(posterior.mean[c][None, None], truth[c].double()[None, None]).item(),
            "calibration_90": cover[c].item(),
            "mean_std": posterior.std[c].mean().item(),
        }
        if two_valued and name in two_valued:
            low, high = two_valued[name]
            row["error_rate"] = coefficient_error_rate(
                posterior.mean[c][None], truth[c][None].double(), low, high
            ).item()
        out[name] = row
    return out


def sample_posterior(
    denoise: Denoiser,
    observation: Observation,
    y: torch.Tensor,
    shape: tuple[int, ...],
    samples: int,
    sigmas: torch.Tensor,
    method: str = "dps",
    sampler: str = "dpmpp2m",
    churn: float = 0.0,
    fields: Fields | None = None,
    guidance: dict | None = None,
    daps_options: dict | None = None,
    noise: WhiteNoise | GRFNoise | None = None,
    batch_size: int | None = None,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> torch.Tensor:
    """``samples`` posterior draws for one observation ``y (m,)``, as physical fields ``(M, C', *spatial)``.

    ``shape`` is ``(C, *spatial)`` of the prior's space; ``sigmas`` the sampler's noise levels
    (ending in 0); ``noise`` is the prior's forward noise (white by default; a function-space
    prior passes its GRF noise): it draws the starting state, carries the guidance
    (:class:`GuidedDenoiser`), and re-noises in DAPS and in the
    stochastic ``churn`` of DPS with the ``euler`` or ``heun`` sampler (re-noising before each
    step lets the guidance correct what earlier steps got wrong; see BENCHMARKS.md for its
    effect on Darcy); ``guidance`` holds keyword arguments of
    :class:`GuidedDenoiser` (``method="dps"``; its ``schedule`` defaults to ``sigmas``, which
    matches the guidance to the sampler's steps, and ``None`` turns that off), ``daps_options``
    those of :func:`daps`.
    """
    from oplearn.diffusion.samplers import sample

    if method not in METHODS:
        raise ConfigError(f"posterior method must be one of {METHODS}, got {method!r}")
    if churn and method != "dps":
        raise ConfigError("churn applies to DPS sampling; DAPS re-noises at every level by itself (drop --churn)")
    batch_size = batch_size or samples
    noise = noise or WhiteNoise()

    def draw(size: Sequence[int], gen: torch.Generator | None) -> torch.Tensor:
        return noise.sample(size, gen, dtype=dtype).to(device)

    y = y.to(device=device, dtype=dtype)
    sigmas = sigmas.to(device=device, dtype=dtype)
    out = []
    for start in range(0, samples, batch_size):
        z = draw((min(batch_size, samples - start), *shape), generator) * sigmas[0]
        if method == "dps":
            guided = GuidedDenoiser(
                denoise, observation, y, fields=fields, noise=noise, **{"schedule": sigmas, **(guidance or {})}
            )
            x0 = sample(
                guided,
                guided.start(z, float(sigmas[0])),
                sigmas,
                method=sampler,
                churn=churn,
                generator=generator,
                progress=progress,
                churn_noise=draw,
            )
        else:
            x0 = daps(
                denoise,
                observation,
                y,
                z,
                sigmas,
                fields=fields,
                prior_noise=noise,
                generator=generator,
                progress=progress,
                **(daps_options or {}),
            )
        with torch.no_grad():
            out.append((x0 if fields is None else fields(x0)).detach().cpu())
    return torch.cat(out)
