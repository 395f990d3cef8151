r"""Distributions with exact denoisers, for testing and benchmarking samplers and guidance.

For data :math:`x_0 \sim p` and :math:`x = x_0 + \sigma\varepsilon`, the ideal denoiser is the
posterior mean :math:`D(x; \sigma) = E[x_0 \mid x]`. It is available in closed form for a
mixture of isotropic Gaussians (:class:`GaussianMixture`).
"""

from __future__ import annotations

import math

import torch


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
        w = torch.ones(k, dtype=torch.float64) if weights is None else torch.as_tensor(weights, dtype=torch.float64).reshape(k)
        if not (w >= 0).all() or not w.sum() > 0:
            raise ValueError("mixture weights must be >= 0 with a positive sum")
        self.weights = w / w.sum()

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """The exact posterior mean ``E[x0 | x0 + sigma * eps = x]`` (see the class docstring)."""
        flat = x.to(torch.float64).flatten(1)  # (batch, n)
        mu = self.means.to(flat.device).flatten(1)  # (K, n)
        var = self.stds.to(flat.device) ** 2 + sigma.to(device=flat.device, dtype=torch.float64)[:, None] ** 2  # (batch, K)
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
