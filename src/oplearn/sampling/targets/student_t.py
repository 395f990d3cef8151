r"""Mixture of product Student-t distributions ("Beyond ELBOs" MoS).

.. math:: \pi(x) = \frac1K \sum_{k=1}^K \prod_{i=1}^d t_\nu(x_i - \mu_{k,i}), \qquad \log Z = 0,

with :math:`K = 10` components, :math:`\nu = 2` degrees of freedom, unit scales and locations
uniform in :math:`[-10, 10]^d` (the reference draws them with JAX's key 0, here with
:func:`oplearn.seeding.generator` from ``seed``). Heavy tails: the variance is infinite for
:math:`\nu = 2`. Modes: the component of largest density.

References
----------
Blessing et al., "Beyond ELBOs", ICML 2024 (Student-t mixture, 10 components, df 2).
"""

from __future__ import annotations

import scipy.stats
import torch
from torch.distributions import StudentT

from oplearn.sampling.targets.base import Target
from oplearn.seeding import generator as seeded


class StudentTMixture(Target):
    """Equal-weight mixture of product Student-t components (module docstring)."""

    name = "student_t_mixture"
    log_Z = 0.0

    def __init__(
        self, dim: int = 2, components: int = 10, df: float = 2.0, loc_scaling: float = 10.0, seed: int = 0
    ) -> None:
        super().__init__(dim)
        g = seeded(seed, 41)
        self.register_buffer("locs", (2 * torch.rand(components, dim, generator=g) - 1) * loc_scaling, persistent=False)
        self.df = float(df)

    def component_log_densities(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, d) -> (batch, K)``: :math:`\\log\\frac1K\\prod_i t_\\nu(x_i - \\mu_{k,i})`."""
        k = self.locs.shape[0]
        dist = StudentT(torch.tensor(self.df, device=x.device), self.locs, torch.ones_like(self.locs))
        return dist.log_prob(x[:, None, :]).sum(-1) - torch.log(torch.tensor(float(k)))

    def unnormalized_log_density(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self.component_log_densities(x), dim=-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        k = torch.randint(self.locs.shape[0], (n,), generator=generator)
        # inverse transform of seeded uniforms (torch's StudentT.sample takes no generator)
        u = torch.rand(n, self.dim, generator=generator, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
        t = torch.from_numpy(scipy.stats.t.ppf(u.numpy(), self.df)).float()
        return self.locs[k].cpu() + t

    def modes(self, x: torch.Tensor) -> torch.Tensor:
        return self.component_log_densities(x).argmax(-1)[:, None]

    def mode_weights(self) -> torch.Tensor:
        k = self.locs.shape[0]
        return torch.full((1, k), 1.0 / k)
