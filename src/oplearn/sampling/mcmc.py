r"""Metropolis-adjusted moves leaving a density :math:`\pi` invariant: the kernels of the SMC
baseline and SCLD's correction moves between sub-trajectories.

The density is given in two parts, so that the costly one is evaluated once per point and
kept with the particles: ``evaluate(x)`` returns the target's :math:`\log\gamma(x)` and
:math:`\nabla\log\gamma(x)` (one target evaluation, the particles' *cache*), and
``anneal(x, log_gamma, grad_gamma)`` turns them into :math:`\log\pi(x)` and
:math:`\nabla\log\pi(x)` (e.g. :math:`\log\pi_\lambda = (1 - \lambda)\log p_0 + \lambda\log\gamma`).
A move proposes :math:`y` from :math:`x` and accepts it with probability
:math:`\min(1, e^{r})`:

- ``mala``: :math:`y = x + \epsilon\nabla\log\pi(x) + \sqrt{2\epsilon}\,\xi`, the Euler-Maruyama
  step of :math:`dX = \nabla\log\pi\,dt + \sqrt2\,dW`, with
  :math:`r = \log\pi(y) + \log q(x \mid y) - \log\pi(x) - \log q(y \mid x)`;
- ``hmc``: ``leapfrog`` leapfrog steps of size :math:`\epsilon` from a fresh momentum
  :math:`p \sim \mathcal N(0, I)`, with :math:`r = H(x, p) - H(y, q)`,
  :math:`H(x, p) = -\log\pi(x) + |p|^2/2` (the leapfrog map is volume-preserving and reversible).

Both satisfy detailed balance, so :math:`\pi` is invariant: exact samples of :math:`\pi` stay
exact after any number of moves, and in a sequential Monte Carlo sampler a move leaves the
importance weights unchanged.

References
----------
Roberts, Tweedie, "Exponential convergence of Langevin distributions and their discrete
approximations", Bernoulli 1996 (MALA). Neal, "MCMC using Hamiltonian dynamics", Handbook of
MCMC 2011 (HMC).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from oplearn.errors import ConfigError
from oplearn.sde import ScalarNoise

#: :math:`(\log\gamma(x), \nabla\log\gamma(x))` of a batch of points: ``(batch,), (batch, d)``.
Cache = tuple[torch.Tensor, torch.Tensor]
#: ``x -> cache``: one target evaluation.
Evaluate = Callable[[torch.Tensor], Cache]
#: ``(x, log_gamma, grad_gamma) -> (log_pi, grad_log_pi)``.
Anneal = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

KERNELS = ("mala", "hmc")


class MetropolisKernel:
    """A MALA or HMC move (module docstring) with ``leapfrog`` leapfrog steps for HMC."""

    def __init__(self, kernel: str = "hmc", leapfrog: int = 5) -> None:
        if kernel not in KERNELS:
            raise ConfigError(f"mcmc kernel must be one of {', '.join(KERNELS)}, got '{kernel}'")
        if leapfrog < 1:
            raise ConfigError(f"hmc: leapfrog steps must be >= 1, got {leapfrog}")
        self.kernel, self.leapfrog = kernel, int(leapfrog)

    def _mala(
        self,
        eps: float,
        x: torch.Tensor,
        cache: Cache,
        evaluate: Evaluate,
        anneal: Anneal,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, Cache, torch.Tensor]:
        noise, sigma = ScalarNoise(), torch.tensor(math.sqrt(2.0), device=x.device)
        log_pi, score = anneal(x, *cache)
        mean = x + eps * score
        y = mean + math.sqrt(2 * eps) * torch.randn(x.shape, generator=generator, device=x.device)
        cache_y = evaluate(y)
        log_pi_y, score_y = anneal(y, *cache_y)
        log_q_forward = noise.log_normal(y - mean, sigma, eps)
        log_q_backward = noise.log_normal(x - (y + eps * score_y), sigma, eps)
        return y, cache_y, log_pi_y + log_q_backward - log_pi - log_q_forward

    def _hmc(
        self,
        eps: float,
        x: torch.Tensor,
        cache: Cache,
        evaluate: Evaluate,
        anneal: Anneal,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, Cache, torch.Tensor]:
        log_pi, score = anneal(x, *cache)
        p = torch.randn(x.shape, generator=generator, device=x.device)
        y, q = x, p + 0.5 * eps * score
        for i in range(self.leapfrog):
            y = y + eps * q
            cache_y = evaluate(y)
            log_pi_y, score_y = anneal(y, *cache_y)
            q = q + (eps if i < self.leapfrog - 1 else 0.5 * eps) * score_y
        return y, cache_y, log_pi_y - 0.5 * q.square().sum(-1) - log_pi + 0.5 * p.square().sum(-1)

    @torch.no_grad()
    def step(
        self,
        eps: float,
        x: torch.Tensor,
        cache: Cache,
        evaluate: Evaluate,
        anneal: Anneal,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, Cache, float]:
        """One move of step size ``eps`` of the particles ``x (n, d)`` with their ``cache``: the new
        particles, their cache and the fraction of proposals accepted."""
        propose = self._hmc if self.kernel == "hmc" else self._mala
        y, cache_y, log_ratio = propose(eps, x, cache, evaluate, anneal, generator)
        u = torch.rand(x.shape[0], generator=generator, device=x.device)
        accept = torch.log(u) < torch.nan_to_num(log_ratio, nan=-math.inf)
        x = torch.where(accept[:, None], y, x)
        cache = (torch.where(accept, cache_y[0], cache[0]), torch.where(accept[:, None], cache_y[1], cache[1]))
        return x, cache, float(accept.float().mean())
