r"""Training losses of the diffusion samplers, each a function of the log-weights
:math:`\log w` of a batch of paths (:mod:`oplearn.sampling.methods.base`).

=====================  ============================================================  =========================================
loss                   value                                                         paths
=====================  ============================================================  =========================================
``ReverseKL``          :math:`-\frac1n\sum_i \log w_i` (= KL(P_F || P_B) - log Z)    on-policy, reparametrised
``LogVariance``        :math:`\mathrm{Var}_i(\log w_i)`                              off-policy (behaviour process, detached)
``TrajectoryBalance``  :math:`\frac1n\sum_i(\log w_i - \log Z_\theta)^2`             off-policy, learned :math:`\log Z_\theta`
=====================  ============================================================  =========================================

Off-policy paths come from the current sampler with independent noise of standard deviation
``exploration`` added to its control at every step (the behaviour process); the log-variance
and trajectory-balance losses stay valid for any behaviour process with full support, which
is what lets them explore modes a reverse-KL sampler collapses away from. With a
:class:`~oplearn.sampling.local_search.LocalSearch` every other step trains instead on backward
paths from MCMC-refined samples (:mod:`oplearn.sampling.local_search`). Weights of shape
``(segments, n)`` (SCLD's sub-trajectories) are reduced per segment and summed.

References
----------
Richter, Berner, "Improved sampling via learned diffusions", ICLR 2024 (log-variance loss,
off-policy exploration). Malkin et al., "Trajectory balance: improved credit assignment in
GFlowNets", NeurIPS 2022, and Sendera et al., "Improved off-policy training of diffusion
samplers", NeurIPS 2024 (trajectory balance for diffusion samplers, ``gfn-diffusion``).
"""

from __future__ import annotations

import torch
from torch import nn

from oplearn.errors import ConfigError
from oplearn.sampling.local_search import LocalSearch
from oplearn.sampling.methods.base import Sampler
from oplearn.sampling.methods.scld import SCLD


class SamplerLoss(nn.Module):
    """A loss on a sampler's log-weights; :meth:`forward` draws the paths and returns the scalar loss.
    Off-policy losses take an optional ``local_search`` (module docstring)."""

    off_policy: bool = True

    def __init__(self, exploration: float = 0.0, local_search: LocalSearch | None = None) -> None:
        super().__init__()
        if exploration < 0:
            raise ConfigError(f"loss: exploration must be >= 0, got {exploration}")
        if local_search is not None and not self.off_policy:
            raise ConfigError("loss: local search trains on backward paths; use log_variance or trajectory_balance")
        self.exploration = float(exploration)
        self.local_search = local_search

    def reduce(self, log_w: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, sampler: Sampler | SCLD, n: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, log-weights)`` for ``n`` paths of ``sampler``."""
        if self.local_search is not None:
            if isinstance(sampler, SCLD):
                raise ConfigError("loss: local search needs whole backward paths; SCLD trains on sub-trajectories")
            log_w = self.local_search.training_log_weights(sampler, n, generator, self.exploration)
        else:
            log_w = sampler.training_log_weights(n, generator, self.off_policy, self.exploration)
        return self.reduce(log_w), log_w


class ReverseKL(SamplerLoss):
    """:math:`-E[\\log w]` on reparametrised on-policy paths (module docstring)."""

    off_policy = False

    def __init__(self, exploration: float = 0.0, local_search: LocalSearch | None = None) -> None:
        if exploration:
            raise ConfigError(
                "loss: the reverse-KL loss is on-policy; exploration applies to log_variance and trajectory_balance"
            )
        super().__init__(0.0, local_search)

    def reduce(self, log_w: torch.Tensor) -> torch.Tensor:
        return -log_w.mean(-1).sum()


class LogVariance(SamplerLoss):
    """:math:`\\mathrm{Var}(\\log w)` on detached behaviour paths (module docstring)."""

    def reduce(self, log_w: torch.Tensor) -> torch.Tensor:
        return log_w.var(-1).sum()


class TrajectoryBalance(SamplerLoss):
    """:math:`E[(\\log w - \\log Z_\\theta)^2]` with a learned :math:`\\log Z_\\theta` (module docstring)."""

    def __init__(self, exploration: float = 0.0, local_search: LocalSearch | None = None) -> None:
        super().__init__(exploration, local_search)
        self.log_Z = nn.Parameter(torch.zeros(()))

    @torch.no_grad()
    def initialise(self, sampler: Sampler | SCLD, n: int, generator: torch.Generator | None = None) -> None:
        """Start :math:`\\log Z_\\theta` at the ELBO of ``n`` paths of ``sampler``: the loss's minimiser
        over :math:`\\log Z_\\theta` for on-policy paths, which a learning rate of the network's order
        would take thousands of steps to reach on targets such as Many-Well (log Z 164.7)."""
        self.log_Z.fill_(sampler.estimate(n, generator).elbo)

    def reduce(self, log_w: torch.Tensor) -> torch.Tensor:
        if log_w.ndim != 1:
            raise ConfigError("loss: trajectory balance needs whole-path weights; use log_variance with scld")
        return (log_w - self.log_Z).square().mean()


LOSSES: dict[str, type[SamplerLoss]] = {
    "kl": ReverseKL,
    "log_variance": LogVariance,
    "trajectory_balance": TrajectoryBalance,
}


def make_loss(name: str, exploration: float = 0.0, local_search: LocalSearch | None = None) -> SamplerLoss:
    if name not in LOSSES:
        raise ConfigError(f"unknown sampler loss '{name}'; choose one of {', '.join(LOSSES)}")
    return LOSSES[name](exploration, local_search)
