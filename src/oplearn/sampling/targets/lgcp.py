r"""Log-Gaussian Cox process on a 40 x 40 grid, with synthetic counts drawn from its prior.

The latent log-intensity :math:`f \in \mathbb R^{M}`, :math:`M = 40^2 = 1600` cells of the unit
square, has the Gaussian prior :math:`\mathcal N(\mu_0 \mathbf 1, K)`,
:math:`K_{mn} = \sigma^2 \exp\big(-\|i_m - i_n\| / (40\beta)\big)` over cell indices :math:`i`,
and the counts :math:`y_m \sim \mathrm{Poisson}(a\,e^{f_m})` with the cell area :math:`a = 1/M`:

.. math:: \log\gamma(f) = \sum_m \big(y_m f_m - a\,e^{f_m}\big) + \log\mathcal N(f; \mu_0\mathbf 1, K),

with :math:`\sigma^2 = 1.91`, :math:`\beta = 1/33`, :math:`\mu_0 = \log 126 - \sigma^2/2` (the
estimates of Møller et al. for the Finnish pines, used by Heng et al. and the benchmarks).
The benchmarks bin the pines data set; nothing is downloaded here, so the counts are drawn
once from this prior model (:math:`f \sim` prior, then Poisson counts) with the recorded
``data_seed`` (default 0): the same model and the same scale of data (about 126 points in
expectation), not the same data. ``log_Z`` is unknown.

References
----------
Møller, Syversveen, Waagepetersen, "Log Gaussian Cox processes", Scand. J. Statist. 1998.
Heng, Bishop, Deligiannidis, Doucet, "Controlled sequential Monte Carlo", Ann. Statist. 2020.
Blessing et al., "Beyond ELBOs", ICML 2024 (LGCP, :math:`d = 1600`).
"""

from __future__ import annotations

import math

import torch

from oplearn.sampling.targets.base import Target
from oplearn.seeding import generator as seeded


class LogGaussianCoxProcess(Target):
    """LGCP posterior on a ``grid x grid`` lattice with prior-drawn counts (module docstring)."""

    name = "lgcp"

    def __init__(
        self,
        grid: int = 40,
        variance: float = 1.91,
        beta: float = 1 / 33,
        mean_intensity: float = 126.0,
        data_seed: int = 0,
    ) -> None:
        m = grid * grid
        super().__init__(m)
        idx = (
            torch.stack(torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij"), -1)
            .reshape(m, 2)
            .double()
        )
        gram = variance * torch.exp(-torch.cdist(idx, idx) / (grid * beta))
        chol = torch.linalg.cholesky(gram)
        self.mu0 = math.log(mean_intensity) - 0.5 * variance
        self.area = 1.0 / m
        g = seeded(data_seed, 42)
        latent = self.mu0 + chol @ torch.randn(m, generator=g, dtype=torch.float64)
        counts = torch.poisson(self.area * torch.exp(latent), generator=g)
        self.register_buffer("cholesky", chol.float(), persistent=False)
        self.register_buffer("counts", counts.float(), persistent=False)
        self.register_buffer("true_latent", latent.float(), persistent=False)
        self.log_prior_normalizer = float(-0.5 * m * math.log(2 * math.pi) - torch.log(torch.diagonal(chol)).sum())

    def unnormalized_log_density(self, f: torch.Tensor) -> torch.Tensor:
        white = torch.linalg.solve_triangular(self.cholesky, (f - self.mu0).T, upper=False).T
        prior = -0.5 * white.square().sum(-1) + self.log_prior_normalizer
        likelihood = (self.counts * f - self.area * torch.exp(f)).sum(-1)
        return prior + likelihood
