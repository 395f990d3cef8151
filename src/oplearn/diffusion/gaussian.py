r"""Distributions with exact denoisers, for testing and benchmarking samplers and guidance.

For data :math:`x_0 \sim p` and :math:`x = x_0 + \sigma\varepsilon`, the ideal denoiser is the
posterior mean :math:`D(x; \sigma) = E[x_0 \mid x]`. It is available in closed form for a
mixture of isotropic Gaussians (:class:`GaussianMixture`) and for a Gaussian-random-field
prior (:class:`GaussianPrior`, linear and diagonal in the field's eigenbasis, with the exact
probability-flow map).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from oplearn.diffusion.noise import GRFNoise, WhiteNoise


class GaussianMixture:
    r"""A mixture of isotropic Gaussians :math:`\sum_k w_k \mathcal N(\mu_k, s_k^2 I)` on fields.

    With white noise, :math:`x \mid k \sim \mathcal N(\mu_k, (s_k^2 + \sigma^2) I)`, so

    .. math::

        D(x; \sigma) = \sum_k \gamma_k(x) \Big(\mu_k + \frac{s_k^2}{s_k^2 + \sigma^2}(x - \mu_k)\Big),
        \qquad
        \gamma_k \propto w_k (s_k^2 + \sigma^2)^{-n/2} \exp\Big(-\frac{\|x - \mu_k\|^2}{2(s_k^2 + \sigma^2)}\Big),

    with :math:`n` the number of entries of a field; computed in float64 with a log-sum-exp.

    Parameters
    ----------
    means : Tensor
        ``(K, C, *spatial)``: the component means.
    stds : Tensor
        ``(K,)``: the component standard deviations :math:`s_k > 0`.
    weights : Tensor, optional
        ``(K,)``: mixture weights (normalised here); equal by default.

    Shapes
    ------
    ``denoise(x: (batch, C, *spatial), sigma: (batch,)) -> (batch, C, *spatial)``;
    ``sample(n) -> (n, C, *spatial)``.
    """

    def __init__(self, means: torch.Tensor, stds: torch.Tensor, weights: torch.Tensor | None = None) -> None:
        self.means = torch.as_tensor(means, dtype=torch.float64)
        k = self.means.shape[0]
        self.stds = torch.as_tensor(stds, dtype=torch.float64).reshape(k)
        if not (self.stds > 0).all():
            raise ValueError("component standard deviations must be > 0")
        w = (
            torch.ones(k, dtype=torch.float64)
            if weights is None
            else torch.as_tensor(weights, dtype=torch.float64).reshape(k)
        )
        if not (w >= 0).all() or not w.sum() > 0:
            raise ValueError("mixture weights must be >= 0 with a positive sum")
        self.weights = w / w.sum()

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The exact posterior mean ``E[x0 | x0 + sigma * eps = x]`` (see the class docstring)."""
        flat = x.to(torch.float64).flatten(1)  # (batch, n)
        mu = self.means.to(flat.device).flatten(1)  # (K, n)
        var = (
            self.stds.to(flat.device) ** 2 + sigma.to(device=flat.device, dtype=torch.float64)[:, None] ** 2
        )  # (batch, K)
        dist2 = (flat[:, None, :] - mu).square().sum(-1)  # (batch, K)
        n = flat.shape[1]
        logits = self.weights.to(flat.device).log() - 0.5 * n * var.log() - dist2 / (2 * var)
        gamma = torch.softmax(logits, dim=1)
        shrink = self.stds.to(flat.device) ** 2 / var  # (batch, K)
        # sum_k gamma_k (mu_k + shrink_k (x - mu_k)) = (sum_k gamma_k shrink_k) x + sum_k gamma_k (1 - shrink_k) mu_k
        out = (gamma * shrink).sum(1, keepdim=True) * flat + (gamma * (1 - shrink)) @ mu
        return out.view_as(x).to(x.dtype)

    __call__ = denoise

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws from the mixture, float64: ``(n, C, *spatial)``."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn((n, *self.means.shape[1:]), generator=generator, dtype=torch.float64)
        return self.means[k] + self.stds[k].view(-1, *[1] * (self.means.ndim - 1)) * eps


class GaussianPrior:
    r"""A Gaussian random field prior :math:`x_0 = m + a\,\eta`, :math:`\eta \sim` ``field``, with its exact denoiser.

    ``field`` (a :class:`~oplearn.diffusion.noise.GRFNoise`) and the forward-process noise
    share one basis (:meth:`~oplearn.diffusion.noise.GRFNoise.to_modes`), in which both are diagonal with
    coefficient variances :math:`a^2 c^0_k` and :math:`c^n_k` (:meth:`~oplearn.diffusion.noise.GRFNoise.mode_variances`;
    white noise has :math:`c^n_k = 1` in the orthonormal Fourier basis of periodic grids).
    The posterior mean is linear and diagonal there:

    .. math::

        D(x; \sigma) = m + \mathcal B\Big(\frac{a^2 c^0_k}{a^2 c^0_k + \sigma^2 c^n_k}\,
        \mathcal B^{-1}(x - m)\Big)_k,

    and the probability-flow ODE is solved exactly by
    :math:`\mathcal B^{-1}(x_t - m)_k = \sqrt{(a^2 c^0_k + t^2 c^n_k)/(a^2 c^0_k + s^2 c^n_k)}\,\mathcal B^{-1}(x_s - m)_k`
    (:meth:`flow`): the linear-Gaussian test case for samplers and guidance.

    Parameters
    ----------
    field : GRFNoise
        The prior's covariance (unit pointwise variance in the fine-grid limit).
    noise : GRFNoise or WhiteNoise
        The forward-process noise: a GRF with the same ``periodic`` and ``lengths``, or white
        noise on periodic grids.
    scale : float
        :math:`a`, the prior's pointwise standard deviation.
    mean : float or Tensor
        :math:`m`, broadcastable to ``(C, *spatial)``.

    Shapes
    ------
    ``denoise(x: (batch, C, *spatial), sigma: (batch,)) -> (batch, C, *spatial)``;
    ``sample((n, C, *spatial)) -> (n, C, *spatial)``.
    """

    def __init__(
        self, field: GRFNoise, noise: GRFNoise | WhiteNoise, scale: float = 1.0, mean: float | torch.Tensor = 0.0
    ) -> None:
        from oplearn.diffusion.noise import GRFNoise, WhiteNoise

        if not isinstance(field, GRFNoise):
            raise ValueError("GaussianPrior needs a GRFNoise field")
        if isinstance(noise, WhiteNoise):
            if not field.periodic:
                raise ValueError("white noise is diagonal in the prior's basis only on periodic grids; use GRF noise")
        elif not isinstance(noise, GRFNoise) or noise.periodic != field.periodic or noise.lengths != field.lengths:
            raise ValueError(
                "GaussianPrior needs white noise or GRF noise on the same box and grid convention as the field"
            )
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        self.field, self.noise, self.scale = field, noise, float(scale)
        self.mean = torch.as_tensor(mean, dtype=torch.float64)

    def variances(self, spatial: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """Coefficient variances of the prior :math:`a^2 c^0` and of the noise :math:`c^n`, float64 ``spatial``."""
        prior = self.scale**2 * self.field.mode_variances(spatial)
        if hasattr(self.noise, "mode_variances"):
            return prior, self.noise.mode_variances(spatial)
        return prior, torch.ones_like(prior)

    def _map(self, x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
        """``m + B(factor * B^-1 (x - m))`` in float64, ``factor: (batch, *spatial)``."""
        mean = self.mean.to(x.device)
        d = x.ndim - 2
        a = self.field.to_modes(x.to(torch.float64) - mean, d)
        return (mean + self.field.from_modes(factor[:, None].to(a.device) * a, d)).to(x.dtype)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The exact posterior mean (see the class docstring)."""
        prior, noise = self.variances(tuple(x.shape[2:]))
        s2 = sigma.to(torch.float64).cpu().view(-1, *[1] * prior.ndim) ** 2
        return self._map(x, prior / (prior + s2 * noise))

    __call__ = denoise

    def flow(self, x: torch.Tensor, s: float, t: float) -> torch.Tensor:
        """The exact probability-flow ODE solution from level ``s`` to ``t``."""
        prior, noise = self.variances(tuple(x.shape[2:]))
        factor = ((prior + t**2 * noise) / (prior + s**2 * noise)).sqrt()
        return self._map(x, factor.expand(x.shape[0], *factor.shape))

    def sample(self, shape: Sequence[int], generator: torch.Generator | None = None) -> torch.Tensor:
        """Prior draws of ``shape = (n, C, *spatial)``, float64."""
        return self.mean + self.scale * self.field.sample(shape, generator, dtype=torch.float64)
