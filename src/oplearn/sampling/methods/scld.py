r"""Sequential Controlled Langevin Diffusions (SCLD): CMCD cut into sub-trajectories with
resampling in between.

The time grid is split into ``segments`` consecutive blocks :math:`[t_{k_s}, t_{k_{s+1}}]`. On
block :math:`s` the CMCD kernels move the particles from :math:`\pi_{t_{k_s}}` towards
:math:`\pi_{t_{k_{s+1}}}` with the incremental weight

.. math:: \log w_s = \log\pi_{t_{k_{s+1}}}(X_{k_{s+1}}) - \log\pi_{t_{k_s}}(X_{k_s})
          + \log p_B(X_{k_s:k_{s+1}-1} \mid X_{k_{s+1}}) - \log p_F(X_{k_s+1:k_{s+1}} \mid X_{k_s})

(unnormalised annealed densities, momenta's Gaussians included for underdamped kernels); the
increments of one lineage add up to CMCD's weight. Between blocks the particles are
resampled (systematically) when the effective sample size of their accumulated weights
falls below ``resample_threshold`` :math:`\cdot\,n`, and :math:`\log\hat Z` is the SMC product of
the mean weights at each resampling and at the end. Its ELBO is
:math:`\sum_s \frac1n\sum_i \log w_s^i` over the particles of each block: between two
resamplings the particles start with equal weights, so by Jensen's inequality it is at most
:math:`\log\hat Z` on every run, and :math:`E\log\hat Z \le \log Z` (without resampling it is
CMCD's ELBO). With ``mcmc`` (``mala`` or ``hmc``,
:mod:`oplearn.sampling.mcmc`) the particles then make ``mcmc_steps`` Metropolis-adjusted moves of
step size ``mcmc_step_size`` leaving :math:`\pi_{t_{k_{s+1}}}` invariant (at every block's end,
the last included): a move's own incremental weight is 1 (its backward kernel is its reversal),
so the weights are unchanged while the particles spread over the annealed density's modes.

Training losses act on each block's weights separately (the paths are detached at block
boundaries): the log-variance of sub-trajectories, or the reverse KL summed over blocks. With
``replay_capacity`` > 0 the log-variance loss trains off-policy on a replay buffer
(:mod:`oplearn.sampling.replay`) per block: each step simulates ``n`` fresh detached
sub-trajectories (with resampling and moves), and block :math:`s`'s loss is the log-variance
over ``n/2`` sub-trajectories drawn from its buffer by priority (their weights under the current
sampler) and ``n/2`` of the fresh ones chosen at random; the drawn ones get their recomputed
weights as new priorities, then the fresh ones join the buffer with theirs.

References
----------
Chen, Richter, Berner, Blessing, Neumann, Anandkumar, "Sequential Controlled Langevin
Diffusions", ICLR 2025.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from oplearn.errors import ConfigError
from oplearn.sampling.mcmc import MetropolisKernel
from oplearn.sampling.methods.base import Estimate, gaussian_log_density
from oplearn.sampling.methods.langevin import CMCD
from oplearn.sampling.replay import ReplayBuffer, concat_paths, select_paths
from oplearn.sampling.resampling import effective_sample_size, log_mean_exp, systematic_resample
from oplearn.sampling.targets.base import Target
from oplearn.sde import Path


class SCLD(nn.Module):
    """SCLD: CMCD in sub-trajectories with resampling, Metropolis moves and replay (module docstring).

    The keyword arguments of :class:`~oplearn.sampling.methods.langevin.CMCD` pass through;
    ``mcmc`` (``None``, ``mala`` or ``hmc``), ``mcmc_steps``, ``mcmc_step_size`` and ``leapfrog``
    set the moves, ``replay_capacity`` (paths per block, 0: no buffer) and ``replay_temperature``
    the replay buffer."""

    name = "scld"
    learns_control = True

    def __init__(
        self,
        target: Target,
        steps: int = 100,
        segments: int = 4,
        resample_threshold: float = 0.3,
        mcmc: str | None = None,
        mcmc_steps: int = 1,
        mcmc_step_size: float = 0.1,
        leapfrog: int = 5,
        replay_capacity: int = 0,
        replay_temperature: float = 1.0,
        **cmcd: Any,
    ) -> None:
        super().__init__()
        if not 1 <= segments <= steps:
            raise ConfigError(f"scld: segments must be between 1 and steps={steps}, got {segments}")
        if mcmc_steps < 0 or not mcmc_step_size > 0:
            raise ConfigError(
                f"scld: mcmc_steps must be >= 0 and mcmc_step_size > 0, got {mcmc_steps} and {mcmc_step_size}"
            )
        if replay_capacity < 0:
            raise ConfigError(f"scld: replay_capacity must be >= 0 paths (0: no replay), got {replay_capacity}")
        self.cmcd = CMCD(target, steps, **cmcd)
        self.target, self.steps = target, int(steps)
        self.bounds = [round(s * steps / segments) for s in range(segments + 1)]
        self.resample_threshold = float(resample_threshold)
        self.move = None if mcmc is None or mcmc_steps == 0 else MetropolisKernel(mcmc, leapfrog)
        self.mcmc_steps, self.mcmc_step_size = int(mcmc_steps), float(mcmc_step_size)
        self.replay = nn.ModuleList(
            [ReplayBuffer(replay_capacity, replay_temperature) for _ in range(segments)] if replay_capacity else []
        )

    @property
    def device(self) -> torch.device:
        return self.cmcd.device

    def _momentum_log_density(self, state: tuple[torch.Tensor, ...]) -> torch.Tensor | float:
        return gaussian_log_density(state[1], self.cmcd.mass) if self.cmcd.underdamped else 0.0

    def _segment_log_weight(self, path: Path, on_policy: bool) -> torch.Tensor:
        c = self.cmcd
        ratio, value = c.transition_log_ratio(path, on_policy)
        batch = path.xs.shape[1]
        t0, t1 = (path.times[i].expand(batch) for i in (0, -1))
        start, end = tuple(s[0] for s in path.states), tuple(s[-1] for s in path.states)
        lam = c.annealing(t1)
        end_density = (1 - lam) * c.prior.log_density(end[0]) + lam * value + self._momentum_log_density(end)
        return end_density - c.annealed_log_density(t0, start[0]) - self._momentum_log_density(start) + ratio

    def _mcmc(self, t: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """``mcmc_steps`` moves of the particles ``x (n, d)`` leaving :math:`\\pi_t` invariant."""
        c = self.cmcd
        lam = float(c.annealing(t.reshape(1)))

        def anneal(y: torch.Tensor, log_gamma: torch.Tensor, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return (1 - lam) * c.prior.log_density(y) + lam * log_gamma, (1 - lam) * c.prior.score(y) + lam * grad

        with torch.no_grad():
            cache = self.target.log_density_and_score(x)
            for _ in range(self.mcmc_steps):
                x, cache, self.acceptance = self.move.step(
                    self.mcmc_step_size, x, cache, self.target.log_density_and_score, anneal, generator
                )
        return x

    def run(
        self,
        n: int,
        generator: torch.Generator | None = None,
        off_policy: bool = False,
        exploration: float = 0.0,
        paths: list[Path] | None = None,
    ) -> tuple[torch.Tensor, Estimate]:
        """Per-block log-weights ``(segments, n)`` (with gradients as in
        :meth:`~oplearn.sampling.methods.base.Sampler.training_log_weights`) and the estimate;
        each block's sub-trajectories are appended to ``paths`` when given."""
        c = self.cmcd
        times = c.times()
        state = c.initial_state(n, generator)
        accumulated = torch.zeros(n, device=times.device)
        log_Z, weights = 0.0, []
        for s in range(len(self.bounds) - 1):
            block = times[self.bounds[s] : self.bounds[s + 1] + 1]
            if off_policy:
                with torch.no_grad():
                    path = c.solve_from(state, block, generator, exploration)
            else:
                path = c.solve_from(state, block, generator)
            log_w = self._segment_log_weight(path, on_policy=not off_policy)
            weights.append(log_w)
            if paths is not None:
                paths.append(path)
            accumulated = accumulated + log_w.detach()
            state = tuple(v[-1].detach() for v in path.states)
            last = s == len(self.bounds) - 2
            if not last and float(effective_sample_size(accumulated)) < self.resample_threshold * n:
                log_Z += float(log_mean_exp(accumulated))
                ancestors = systematic_resample(accumulated, generator)
                state = tuple(v[ancestors] for v in state)
                accumulated = torch.zeros_like(accumulated)
            if self.move is not None:
                state = (self._mcmc(block[-1], state[0], generator), *state[1:])
        weights = torch.stack(weights)
        elbo = float(weights.detach().mean(1).sum())
        return weights, Estimate(state[0], accumulated, log_Z + float(log_mean_exp(accumulated)), elbo)

    def training_log_weights(
        self, n: int, generator: torch.Generator | None = None, off_policy: bool = False, exploration: float = 0.0
    ) -> torch.Tensor:
        """Per-block log-weights ``(segments, n)`` for a loss; off-policy with a replay buffer, of
        half replayed and half fresh sub-trajectories (module docstring)."""
        if not (off_policy and len(self.replay)):
            return self.run(n, generator, off_policy, exploration)[0]
        fresh: list[Path] = []
        with torch.no_grad():
            fresh_log_w = self.run(n, generator, True, exploration, fresh)[0]
        weights = []
        for buffer, path, log_w in zip(self.replay, fresh, fresh_log_w):
            old, slots = buffer.sample(n // 2, path, generator)
            keep = torch.randperm(n, generator=generator, device=generator.device if generator else None)
            batch = concat_paths(old, select_paths(path, keep[: n - len(slots)].to(log_w.device)))
            batch_log_w = self._segment_log_weight(batch, on_policy=False)
            buffer.update(slots, batch_log_w[: len(slots)])
            buffer.add(path, log_w)
            weights.append(batch_log_w)
        return torch.stack(weights)

    @torch.no_grad()
    def estimate(self, n: int, generator: torch.Generator | None = None) -> Estimate:
        return self.run(n, generator)[1]

    def eubo(self, samples: torch.Tensor, generator: torch.Generator | None = None) -> float:
        """The EUBO of the underlying CMCD path measures (backward paths need no resampling)."""
        return self.cmcd.eubo(samples, generator)
