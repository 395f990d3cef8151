r"""Projection of periodic fields onto the Fourier modes their training data hold.

.. math:: P u = \mathcal F^{-1}\big[\mathbf 1\{|k_j| \le m_j,\ j = 1..d\}\, \mathcal F u\big],

where :math:`k_j` is the wavenumber index on axis :math:`j` (the physical wavenumber
:math:`2 \pi k_j / L_j` at every resolution, so the projection acts alike on any grid) and
:math:`m_j` the largest index at which the training fields' mean power exceeds ``threshold``
times the largest mode's. A solver that dealiases by the 2/3 rule stores fields with no
energy above two thirds of the Nyquist wavenumber: a learned time step that leaves a small
floor of error there feeds it back step after step, with nothing in the data to damp it,
until a long rollout explodes. Projecting each predicted frame keeps the rollout on the
modes the data hold. Fields with energy at every mode are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

#: Mean power, relative to the largest mode's, below which a mode counts as empty (float32
#: round-off of a field is about 1e-16 of its power; a 2/3-dealiased KS field drops from 1e-9
#: to that at its cut).
EMPTY_POWER = 1e-12


def _wavenumbers(n: int, device: torch.device, real: bool) -> torch.Tensor:
    """Absolute wavenumber indices of an FFT axis of ``n`` nodes (the real FFT's half axis if ``real``)."""
    k = torch.fft.rfftfreq(n, 1.0 / n) if real else torch.fft.fftfreq(n, 1.0 / n)
    return k.abs().round().long().to(device)


class ModeProjection(nn.Module):
    """:math:`P` of the module docstring, with :math:`m_j` fitted by :meth:`fit` (a saved buffer;
    ``-1`` on every axis until fitted: the identity).

    Shapes: ``u: (batch, channels, *spatial) -> (batch, channels, *spatial)``.
    """

    def __init__(self, ndim: int) -> None:
        super().__init__()
        self.register_buffer("max_modes", torch.full((ndim,), -1, dtype=torch.long))

    @torch.no_grad()
    def fit(self, fields: Iterable[torch.Tensor]) -> None:
        """Set :math:`m_j` from batches of training fields ``(batch, channels, *spatial)``."""
        power = None
        for u in fields:
            spatial = tuple(range(2, u.ndim))
            p = torch.fft.rfftn(u.double(), dim=spatial).abs().square().sum(dim=(0, 1))
            power = p if power is None else power + p
        ndim = power.ndim
        relative = power / power.max()
        kept = relative > EMPTY_POWER
        modes = []
        for j in range(ndim):
            others = tuple(i for i in range(ndim) if i != j)
            held = kept.any(dim=others) if others else kept
            last = j == ndim - 1  # the real FFT's half axis: indices 0, 1, ...; the others fold -k onto k
            k = torch.arange(power.shape[j]) if last else _wavenumbers(power.shape[j], held.device, False)
            modes.append(int(k[held].max()) if held.any() else 0)
        self.max_modes.copy_(torch.tensor(modes))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        if int(self.max_modes[0]) < 0:
            return u
        spatial = tuple(u.shape[2:])
        dims = tuple(range(2, u.ndim))
        mask = torch.ones((), dtype=torch.bool, device=u.device)
        for j, n in enumerate(spatial):
            k = _wavenumbers(n, u.device, j == len(spatial) - 1) <= self.max_modes[j]
            mask = mask.unsqueeze(-1) & k.reshape(*([1] * j), -1)
        if bool(mask.all()):
            return u
        u_hat = torch.fft.rfftn(u.float(), dim=dims)
        return torch.fft.irfftn(u_hat * mask, s=spatial, dim=dims).to(u.dtype)
