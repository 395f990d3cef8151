r"""Gaussian mixtures, and the 40-mode mixture of the "Beyond ELBOs" benchmark (GMM40).

.. math:: \pi(x) = \sum_{k=1}^K w_k\,\mathcal N\big(x; \mu_k, \mathrm{diag}(s_k^2)\big),
          \qquad \log Z = 0.

GMM40: :math:`K = 40` equally weighted components, unit scales, means drawn uniformly from
:math:`[-40, 40]^d` (``loc_scaling = 40``), in :math:`d = 2` and :math:`d = 50`. The reference
draws its means with JAX's key 0; here they are drawn with :func:`oplearn.seeding.generator`
from ``seed`` (default 0): the same distribution of mode configurations, not the same
configuration (mode overlaps, and so the task's difficulty, vary slightly between draws).

Modes: the component of largest weighted density; exact mode weights :math:`w_k`.

References
----------
Blessing, Jia, Esslinger, Vargas, Neumann, "Beyond ELBOs: A Large-Scale Evaluation of
Variational Methods for Sampling", ICML 2024 (GMM40 / "MoG", entropic mode coverage).
"""

from __future__ import annotations

import torch

from oplearn.sampling.targets.base import Target
from oplearn.seeding import generator as seeded


class GaussianMixture(Target):
    """A normalised mixture of diagonal Gaussians: ``means (K, d)``, ``scales (K, d)`` or a float, ``weights (K,)``."""

    name = "gaussian_mixture"
    log_Z = 0.0

    def __init__(
        self, means: torch.Tensor, scales: torch.Tensor | float = 1.0, weights: torch.Tensor | None = None
    ) -> None:
        k, d = means.shape
        super().__init__(d)
        weights = torch.ones(k) if weights is None else torch.as_tensor(weights, dtype=torch.float32)
        self.register_buffer("means", means.float(), persistent=False)
        self.register_buffer(
            "scales", torch.as_tensor(scales, dtype=torch.float32).expand(k, d).clone(), persistent=False
        )
        self.register_buffer("log_weights", torch.log(weights / weights.sum()), persistent=False)

    def component_log_densities(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`\\log w_k + \\log\\mathcal N(x; \\mu_k, s_k^2)`: ``(batch, d) -> (batch, K)``."""
        z = (x[:, None, :] - self.means) / self.scales
        log_norm = torch.log(self.scales).sum(-1) + 0.5 * self.dim * torch.log(torch.tensor(2 * torch.pi))
        return self.log_weights - 0.5 * z.square().sum(-1) - log_norm

    def unnormalized_log_density(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.component_log_densities(x), dim=-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        k = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, device=self.means.device)
        return self.means[k] + self.scales[k] * z

    def modes(self, x: torch.Tensor) -> torch.Tensor:
        return self.component_log_densities(x).argmax(-1)[:, None]

    def mode_weights(self) -> torch.Tensor:
        return self.log_weights.exp()[None, :]


class GMM40(GaussianMixture):
    """The 40-mode benchmark mixture (module docstring), ``dim`` 2 or 50 in the references."""

    name = "gmm40"

    def __init__(self, dim: int = 2, components: int = 40, loc_scaling: float = 40.0, seed: int = 0) -> None:
        g = seeded(seed, 40)
        means = (2 * torch.rand(components, dim, generator=g) - 1) * loc_scaling
        super().__init__(means, 1.0)
