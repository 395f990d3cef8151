r"""Conditioning a network on a scalar (a noise level, a refinement step): a Fourier embedding of
the scalar and feature-wise affine modulation (FiLM) of every block by that embedding.

Conditioned grid models of the zoo (:class:`~oplearn.models.fno.FNO` and its variants
:class:`~oplearn.models.tfno.TFNO` and :class:`~oplearn.models.local_fno.LocalFNO`,
:class:`~oplearn.models.uno.UNO`) take ``condition_channels`` and a second argument
``condition (batch, condition_channels)``; their configs say so by ``conditionable = True``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


class FourierEmbedding(nn.Module):
    r"""Fourier features of a scalar :math:`c` followed by a two-layer MLP:

    .. math:: e = \mathrm{MLP}\big([\cos(\omega_j c), \sin(\omega_j c)]_{j=0}^{F-1}\big),
              \qquad \omega_j = \omega_{max}\, 2^{j - F + 1}.

    The frequencies are low on purpose: with :math:`\omega_{max} = \pi` a change of
    :math:`c` by 1 turns the fastest feature by half a period, so the embedding, and the
    network it conditions, vary smoothly with :math:`c`. Scale :math:`c` to a range of a few
    units (a diffusion's :math:`\tfrac14 \log\sigma`, a refinement step's :math:`k / K`). The
    frequencies are a saved buffer, so a checkpoint keeps those it was trained with.

    Shapes: ``c: (batch,) -> (batch, channels)``.
    """

    def __init__(self, channels: int = 64, frequencies: int = 8, max_frequency: float = math.pi) -> None:
        super().__init__()
        self.register_buffer(
            "frequencies", max_frequency * 2.0 ** torch.arange(1 - frequencies, 1, dtype=torch.float32)
        )
        self.mlp = nn.Sequential(
            nn.Linear(2 * frequencies, channels), nn.SiLU(), nn.Linear(channels, channels), nn.SiLU()
        )

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        phase = c.float()[:, None] * self.frequencies
        return self.mlp(torch.cat([phase.cos(), phase.sin()], dim=1))


class FiLM(nn.ModuleList):
    r"""Feature-wise affine modulation of the hidden fields of a network's blocks by a
    conditioning vector :math:`e`:

    .. math:: v_i \mapsto v_i \, (1 + \gamma_i(e)) + \beta_i(e),

    per channel, with :math:`(\gamma_i, \beta_i)` one linear map of :math:`e` per block
    :math:`i`, initialised to zero (the modulation starts as the identity).

    Parameters
    ----------
    condition_channels : int
        Channels of :math:`e`.
    channels : sequence of int
        Channels of each modulated block's field.

    Shapes
    ------
    ``modulate(i, v, condition)``: ``v (batch, channels[i], *spatial)`` and
    ``condition (batch, condition_channels)`` -> ``(batch, channels[i], *spatial)``.
    """

    def __init__(self, condition_channels: int, channels: Sequence[int]) -> None:
        super().__init__(nn.Linear(condition_channels, 2 * c) for c in channels)
        self.condition_channels = int(condition_channels)
        for layer in self:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def modulate(self, index: int, v: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        gamma, beta = self[index](condition).view(v.shape[0], 2, v.shape[1], *[1] * (v.ndim - 2)).unbind(1)
        return v * (1 + gamma) + beta


def check_condition(owner: str, condition_channels: int, condition: torch.Tensor | None, batch: int) -> None:
    """Raise ``ValueError`` unless ``condition`` is ``None`` for an unconditioned network
    (``condition_channels = 0``) or of shape ``(batch, condition_channels)`` for a conditioned one."""
    if (condition is None) != (condition_channels == 0) or (
        condition is not None and tuple(condition.shape) != (batch, condition_channels)
    ):
        got = None if condition is None else tuple(condition.shape)
        raise ValueError(f"{owner} built with condition_channels={condition_channels} got condition of shape {got}")
