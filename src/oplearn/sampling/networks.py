r"""Control networks with the target score as a feature.

.. math:: u_\theta(t, z) = \mathrm{clip}\Big(\mathrm{MLP}_\theta\big(W z + E(t)\big)
          + g_\theta(E(t)) \odot \mathrm{clip}\big(f(t, x), c\big),\; c\Big),

where :math:`z` is the position :math:`x` (or :math:`(x, p)` for underdamped samplers),
:math:`E(t)` a Fourier embedding of time (sines and cosines of :math:`\omega_j t + \phi_j`,
:math:`\omega_j` spaced from 0.1 to 100, learned phases :math:`\phi_j`), :math:`g_\theta` a
small time network, :math:`c` a clipping level and :math:`f` the method's score feature
(:meth:`oplearn.sampling.methods.base.Sampler.feature`: the target score, or an interpolation
of the prior's and the target's scores that approximates the optimal control). The state
MLP's last layer starts at zero and the gate's at ``gate_init``: an untrained network is the
control :math:`\texttt{gate\_init}\cdot f` (the reference process for 0). The score term is
what makes these samplers work on multimodal targets (PIS "grad" networks); it enters
detached. The time embedding is computed once per distinct time of a batch.

Shapes: ``t (batch,)``, ``z (batch, state_dim)``, ``score (batch, dim)`` -> ``(batch, dim)``.

References
----------
Zhang, Chen, "Path Integral Sampler", ICLR 2022 (score-feature network). Berner, Richter,
Ullrich, TMLR 2024, and Blessing et al., "Beyond ELBOs", ICML 2024 (the same architecture
with 64 channels; the gate's bias starts at 1 for PIS, DIS and DDS and at 0 for CMCD in their
configurations).
"""

from __future__ import annotations

import torch
from torch import nn


class TimeEmbedding(nn.Module):
    """Fourier features :math:`(\\sin, \\cos)(\\omega t + \\phi)` followed by an MLP to ``width`` channels."""

    def __init__(self, width: int = 64, horizon: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("frequencies", torch.linspace(0.1, 100.0, width) / horizon, persistent=False)
        self.phase = nn.Parameter(torch.zeros(width))
        self.mlp = nn.Sequential(nn.Linear(2 * width, width), nn.GELU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        angle = t.reshape(-1, 1).to(self.phase.dtype) * self.frequencies + self.phase
        return self.mlp(torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1))


class ControlNet(nn.Module):
    """The control network of the module docstring.

    Parameters
    ----------
    dim:
        Output dimension (the target's).
    state_dim:
        Input dimension (``dim``, or ``2 dim`` with momenta); default ``dim``.
    width, depth:
        Channels and hidden layers of the state MLP.
    use_score:
        Add the gated, clipped target-score term.
    clip:
        Clipping level of the score feature and of the output (``None``: none).
    horizon:
        Time horizon (scales the embedding frequencies).
    gate_init:
        Initial value of the gate :math:`g_\theta` (the bias of its last layer).
    """

    def __init__(
        self,
        dim: int,
        state_dim: int | None = None,
        width: int = 64,
        depth: int = 2,
        use_score: bool = True,
        clip: float | None = 10.0,
        horizon: float = 1.0,
        gate_init: float = 0.0,
    ) -> None:
        super().__init__()
        self.use_score, self.clip = use_score, clip
        self.embed_time = TimeEmbedding(width, horizon)
        self.embed_state = nn.Linear(state_dim or dim, width)
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.GELU(), nn.Linear(width, width)]
        self.hidden = nn.Sequential(*layers, nn.GELU())
        self.out = nn.Linear(width, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        if use_score:
            self.gate = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, dim))
            nn.init.zeros_(self.gate[-1].weight)
            nn.init.constant_(self.gate[-1].bias, gate_init)

    def _clip(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.clip is None else v.clamp(-self.clip, self.clip)

    def forward(self, t: torch.Tensor, z: torch.Tensor, score: torch.Tensor | None = None) -> torch.Tensor:
        times, index = torch.unique(t.reshape(-1), return_inverse=True)
        emb = self.embed_time(times)
        u = self.out(self.hidden(self.embed_state(z) + emb[index]))
        if self.use_score:
            u = u + self.gate(emb)[index] * self._clip(score.detach())
        return self._clip(u)
