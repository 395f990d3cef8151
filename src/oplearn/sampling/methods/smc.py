r"""Annealed importance sampling and sequential Monte Carlo with MALA or HMC kernels: the
baselines of every row group.

Along :math:`\log\pi_k = (1 - \lambda_k)\log p_0 + \lambda_k\log\gamma`, :math:`\lambda_k = k/K`,
from :math:`p_0 = \mathcal N(0, s^2 I)`: particles gain the incremental weight
:math:`(\lambda_k - \lambda_{k-1})(\log\gamma - \log p_0)`, are resampled (systematically) when the
effective sample size falls below ``resample_threshold`` :math:`\cdot\,n` (SMC; never for AIS,
threshold 0), and move by ``kernel_steps`` Metropolis-adjusted steps leaving :math:`\pi_k`
invariant (:mod:`oplearn.sampling.mcmc`): ``mala``, a Metropolis-adjusted Langevin step of size
:math:`\epsilon`, or ``hmc``, ``leapfrog`` leapfrog steps of size :math:`\epsilon` from a fresh
:math:`\mathcal N(0, I)` momentum.

The step size is interpolated geometrically from ``step_size`` at :math:`\lambda = 0` to
``step_size_end`` at :math:`\lambda = 1`. The estimate
:math:`\log\hat Z = \sum_{\text{resampling times}} \log\frac1n\sum_i w_i + \log\frac1n\sum_i w_i^{final}`
is unbiased in :math:`Z`.

References
----------
Neal, "Annealed importance sampling", Statistics and Computing 2001. Del Moral, Doucet, Jasra,
"Sequential Monte Carlo samplers", JRSS B 2006. Blessing et al., "Beyond ELBOs", ICML 2024 (SMC
with HMC kernels as the baseline, step sizes per target).
"""

from __future__ import annotations

from functools import partial

import torch
from torch import nn

from oplearn.sampling.mcmc import MetropolisKernel
from oplearn.sampling.methods.base import Estimate
from oplearn.sampling.prior import GaussianPrior
from oplearn.sampling.resampling import effective_sample_size, log_mean_exp, systematic_resample
from oplearn.sampling.targets.base import Target


class SMC(nn.Module):
    """SMC / AIS sampler (module docstring); nothing is learned."""

    name = "smc"
    learns_control = False

    def __init__(
        self,
        target: Target,
        steps: int = 100,
        scale: float = 1.0,
        kernel: str = "hmc",
        step_size: float = 0.1,
        step_size_end: float | None = None,
        kernel_steps: int = 1,
        leapfrog: int = 5,
        resample_threshold: float = 0.3,
    ) -> None:
        super().__init__()
        self.move = MetropolisKernel(kernel, leapfrog)
        self.target, self.steps, self.kernel = target, int(steps), kernel
        self.prior = GaussianPrior(target.dim, scale)
        self.step_size, self.step_size_end = float(step_size), float(step_size_end or step_size)
        self.kernel_steps, self.leapfrog, self.resample_threshold = (
            int(kernel_steps),
            int(leapfrog),
            float(resample_threshold),
        )

    def evaluate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`\\log\\gamma(x)` and :math:`\\nabla\\log\\gamma(x)` (one target evaluation)."""
        return self.target.log_density_and_score(x.detach())

    def annealed(
        self, lam: float, x: torch.Tensor, log_gamma: torch.Tensor, grad_gamma: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:math:`\\log\\pi_\\lambda(x)` and its score from the target's value and score at ``x``."""
        return (1 - lam) * self.prior.log_density(x) + lam * log_gamma, (1 - lam) * self.prior.score(
            x
        ) + lam * grad_gamma

    @torch.no_grad()
    def estimate(self, n: int, generator: torch.Generator | None = None) -> Estimate:
        """Run the sampler with ``n`` particles (the mean acceptance rate is kept in ``acceptance``)."""
        x = self.prior.sample(n, generator)
        state = self.evaluate(x)  # log-density and score of the target at the particles
        log_w = torch.zeros(n, device=x.device)
        log_Z, accepted, moves = 0.0, 0.0, 0
        for k in range(1, self.steps + 1):
            lam = k / self.steps
            log_w = log_w + (1 / self.steps) * (state[0] - self.prior.log_density(x))
            if self.resample_threshold > 0 and float(effective_sample_size(log_w)) < self.resample_threshold * n:
                log_Z += float(log_mean_exp(log_w, 0))
                ancestors = systematic_resample(log_w, generator)
                x, state = x[ancestors], tuple(v[ancestors] for v in state)
                log_w = torch.zeros_like(log_w)
            eps = self.step_size * (self.step_size_end / self.step_size) ** lam
            for _ in range(self.kernel_steps):
                x, state, rate = self.move.step(eps, x, state, self.evaluate, partial(self.annealed, lam), generator)
                accepted, moves = accepted + rate, moves + 1
        self.acceptance = accepted / max(moves, 1)
        return Estimate(x, log_w, log_Z + float(log_mean_exp(log_w, 0)), None)
