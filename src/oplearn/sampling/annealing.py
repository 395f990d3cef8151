r"""The annealing schedule :math:`\lambda(t)` of the annealed Langevin samplers (ULA, MCD, CMCD,
SCLD), whose intermediate densities are :math:`\pi_t \propto p_0^{1 - \lambda(t)}\gamma^{\lambda(t)}`.

Fixed: :math:`\lambda(t) = t / T`. Learned: piecewise linear in :math:`t` through the knots
:math:`(kT/K, \Lambda_k)`, :math:`k = 0, \dots, K`, with increments
:math:`\Lambda_{k+1} - \Lambda_k = \mathrm{softmax}(\theta)_k`, so that for every :math:`\theta`
the schedule increases from :math:`\lambda(0) = 0` to :math:`\lambda(T) = 1` (the samplers' start
and target stay the same); :math:`\theta = 0` is :math:`t / T`. The parameters :math:`\theta` are
trained with the sampler: the loss reaches them through the annealed scores in the kernels and
the annealed densities at the ends of SCLD's sub-trajectories. Any schedule leaves the weights
exact (:math:`E[w] = Z`); a learned one moves the intermediate densities to where the learned
transport makes the weights' variance small.

References
----------
Geffner, Domke, "MCMC variational inference via uncorrected Hamiltonian annealing", NeurIPS 2021
(learned annealing coefficients). Chen, Richter, Berner, Blessing, Neumann, Anandkumar,
"Sequential Controlled Langevin Diffusions", ICLR 2025, and Blessing et al., "Underdamped
Diffusion Bridges with Applications to Sampling", ICLR 2025 (learned schedules).
"""

from __future__ import annotations

import torch
from torch import nn


class AnnealingSchedule(nn.Module):
    """:math:`\\lambda(t)` on :math:`[0, T]` (module docstring): ``t / horizon`` when ``knots`` is 0,
    else learned, piecewise linear with ``knots`` pieces."""

    def __init__(self, horizon: float, knots: int = 0) -> None:
        super().__init__()
        self.horizon, self.knots = float(horizon), int(knots)
        self.logits = nn.Parameter(torch.zeros(knots)) if knots else None

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """:math:`\\lambda(t)`, the shape of ``t``."""
        if self.logits is None:
            return t / self.horizon
        increments = torch.softmax(self.logits, 0)
        knots = torch.cat([increments.new_zeros(1), torch.cumsum(increments, 0)])
        u = (t / self.horizon).clamp(0, 1) * self.knots
        k = u.detach().floor().clamp(max=self.knots - 1).long()
        return knots[k] + (u - k) * increments[k]
