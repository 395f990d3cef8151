r"""A one-step operator that also predicts the sub-frames inside its step (a space-time output).

.. math::

    G(u_t) = \big(u(t + \tfrac{\Delta t}{S}), u(t + \tfrac{2 \Delta t}{S}), \dots, u(t + \Delta t)\big),

one output channel group per sub-frame. Stepping a trajectory uses the last sub-frame, the
next frame; the sub-frames give a physics loss a time grid ``S`` times finer than the frames
(:mod:`oplearn.training.coarse_graining`).
"""

from __future__ import annotations

import torch
from torch import nn

from oplearn.models.operator import OperatorModel


class SubFrameOperator(OperatorModel):
    r"""An :class:`~oplearn.models.operator.OperatorModel` whose network returns ``sub_frames``
    frames of ``channels`` channels each; calling it returns the last one, ``sub_frames=True``
    all of them.

    ``out_channels`` is ``channels`` (what one step returns); the output normaliser has one
    entry per sub-frame and channel.

    Shapes
    ------
    ``x: (batch, channels, *spatial) -> (batch, channels, *spatial)``, or with ``sub_frames=True``
    ``-> (batch, S, channels, *spatial)`` (sub-frame ``k`` at time :math:`t + (k + 1) \Delta t / S`).
    """

    def __init__(
        self,
        net: nn.Module,
        channels: int,
        sub_frames: int,
        domain: tuple[tuple[float, float], ...],
        periodic: bool,
        positional_features: bool = True,
        train_shape: tuple[int, ...] = (),
    ) -> None:
        super().__init__(net, channels, sub_frames * channels, domain, periodic, positional_features, train_shape)
        self.out_channels = channels
        self.sub_frames = sub_frames

    def forward(self, x: torch.Tensor, sub_frames: bool = False) -> torch.Tensor:
        frames = super().forward(x).unflatten(1, (self.sub_frames, self.out_channels))
        return frames if sub_frames else frames[:, -1]
