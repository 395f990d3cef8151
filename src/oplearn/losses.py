"""Training losses: batch means of the metrics in :mod:`oplearn.metrics`."""

from __future__ import annotations

import torch
from torch import nn

from oplearn.grids import Grid
from oplearn.metrics import relative_h1, relative_l2


class RelativeL2Loss(nn.Module):
    r"""Mean over the batch of :func:`oplearn.metrics.relative_l2`.

    .. math:: \frac{1}{B}\sum_b \frac{\lVert p_b - t_b \rVert_2}{\lVert t_b \rVert_2}

    Shapes: ``pred, true: (batch, ...) -> ()``.
    """

    def forward(self, pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
        return relative_l2(pred, true).mean()


class RelativeH1Loss(nn.Module):
    r"""Mean over the batch of :func:`oplearn.metrics.relative_h1`.

    .. math:: \frac{1}{B}\sum_b \sqrt{\frac{\lVert e_b \rVert^2 + \lVert \nabla e_b \rVert^2}
              {\lVert t_b \rVert^2 + \lVert \nabla t_b \rVert^2}}

    Shapes: ``pred, true: (batch, ..., *grid.shape) -> ()``.
    """

    def forward(self, pred: torch.Tensor, true: torch.Tensor, grid: Grid) -> torch.Tensor:
        return relative_h1(pred, true, grid).mean()
