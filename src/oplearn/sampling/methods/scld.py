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
the mean weights at each resampling and at the end. Training losses act on each block's
weights separately (the paths are detached at block boundaries): the log-variance of
sub-trajectories, or the reverse KL summed over blocks.

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
from oplearn.sampling.methods.base import Estimate, gaussian_log_density
from oplearn.sampling.methods.langevin import CMCD
from oplearn.sampling.resampling import effective_sample_size, log_mean_exp, systematic_resample
from oplearn.sampling.targets.base import Target
from oplearn.sde import Path


class SCLD(nn.Module):
    """SCLD over a :class:`~oplearn.sampling.methods.langevin.CMCD` sampler (its keyword arguments pass through)."""

    name = "scld"
    learns_control = True

    def __init__(
        self, target: Target, steps: int = 100, segments: int = 4, resample_threshold: float = 0.3, **cmcd: Any
    ) -> None:
        super().__init__()
        if not 1 <= segments <= steps:
            raise ConfigError(f"scld: segments must be between 1 and steps={steps}, got {segments}")
        self.cmcd = CMCD(target, steps, **cmcd)
        self.target, self.steps = target, int(steps)
        self.bounds = [round(s * steps / segments) for s in range(segments + 1)]
        self.resample_threshold = float(resample_threshold)

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
        lam = t1 / c.horizon
        end_density = (1 - lam) * c.prior.log_density(end[0]) + lam * value + self._momentum_log_density(end)
        return end_density - c.annealed_log_density(t0, start[0]) - self._momentum_log_density(start) + ratio

    def run(
        self, n: int, generator: torch.Generator | None = None, off_policy: bool = False, exploration: float = 0.0
    ) -> tuple[torch.Tensor, Estimate]:
        """Per-block log-weights ``(segments, n)`` (with gradients as in
        :meth:`~oplearn.sampling.methods.base.Sampler.training_log_weights`) and the estimate."""
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
            accumulated = accumulated + log_w.detach()
            state = tuple(v[-1].detach() for v in path.states)
            last = s == len(self.bounds) - 2
            if not last and float(effective_sample_size(accumulated)) < self.resample_threshold * n:
                log_Z += float(log_mean_exp(accumulated))
                ancestors = systematic_resample(accumulated, generator)
                state = tuple(v[ancestors] for v in state)
                accumulated = torch.zeros_like(accumulated)
        return torch.stack(weights), Estimate(state[0], accumulated, log_Z + float(log_mean_exp(accumulated)), None)

    def training_log_weights(
        self, n: int, generator: torch.Generator | None = None, off_policy: bool = False, exploration: float = 0.0
    ) -> torch.Tensor:
        return self.run(n, generator, off_policy, exploration)[0]

    @torch.no_grad()
    def estimate(self, n: int, generator: torch.Generator | None = None) -> Estimate:
        return self.run(n, generator)[1]

    def eubo(self, samples: torch.Tensor, generator: torch.Generator | None = None) -> float:
        """The EUBO of the underlying CMCD path measures (backward paths need no resampling)."""
        return self.cmcd.eubo(samples, generator)
