r"""An exponential moving average (EMA) of a model's weights, ``train.ema_decay``.

After each optimiser step :math:`t = 1, 2, \dots` the averaged weights follow

.. math:: \bar\theta_t = \beta_t \bar\theta_{t-1} + (1 - \beta_t)\, \theta_t, \qquad
          \beta_t = \min\Big(\beta, \frac{1 + t}{10 + t}\Big), \qquad \bar\theta_0 = \theta_0,

so early steps, when the weights move fast, are not averaged over a long past (the warm-up
:math:`(1 + t) / (10 + t)`), and later ones over about :math:`1 / (1 - \beta)` steps. Buffers
(normalisers) are copied, not averaged. The averaged model is what a run validates, saves as
its ``model`` weights and so evaluates and rolls out; the optimiser's own weights are saved
beside it in the ``last`` checkpoint, so a resumed run continues both exactly.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def average_decay(decay: float, updates: int) -> float:
    """:math:`\\beta_t` of update ``t = updates`` (from 1)."""
    return min(decay, (1 + updates) / (10 + updates))


class WeightAverage:
    """The EMA of ``model``'s parameters, held in a copy of ``model`` (the attribute ``model``).

    Parameters
    ----------
    model : nn.Module
        The trained model (its current weights start the average).
    decay : float
        :math:`\\beta` in (0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of ``model`` into the average (one optimiser step)."""
        self.updates += 1
        weight = 1.0 - average_decay(self.decay, self.updates)
        for averaged, current in zip(self.model.parameters(), model.parameters(), strict=True):
            averaged.lerp_(current.detach(), weight)
        for averaged, current in zip(self.model.buffers(), model.buffers(), strict=True):
            averaged.copy_(current)
