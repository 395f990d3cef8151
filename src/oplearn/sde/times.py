r"""Time grids :math:`t_0 < t_1 < \dots < t_N` for SDE integrators.

A grid is an object that knows the horizon :math:`[t_0, t_1]` and how the step sizes
:math:`h_k = t_{k+1} - t_k` are distributed; :meth:`TimeGrid.times` returns the
``N + 1`` points for a number of steps ``N``. The horizon may be batched: with ``t0`` and/or
``t1`` tensors of shape ``(batch,)`` every sample gets its own grid with the same profile
(e.g. Feynman-Kac regression draws one end time per sample).

Profiles (each normalised so that the steps sum to ``t1 - t0``):

=================  ==========================================================================
``UniformGrid``    :math:`h_k \propto 1`
``GeometricGrid``  :math:`h_k \propto r^{k / (N - 1)}`: the last step is ``r`` times the first
``CosineGrid``     :math:`h_k \propto (1 - m)\cos^p\!\big(\tfrac{\pi}{2}\tfrac{1 + s - \tau_k}{1 + s}\big) + m`,
                   :math:`\tau_k = (N - k) / N`: large first steps, steps shrinking to the
                   fraction ``m`` near :math:`t_1` (the cosine step-size schedule of the
                   underdamped diffusion bridge samplers, with ``m = 0.01``, ``s = 0.008``, ``p = 2``)
=================  ==========================================================================

Shapes: :meth:`TimeGrid.times` returns ``(N + 1,)`` for scalar horizons and ``(N + 1, batch)``
for batched ones.

References
----------
Blessing, Berner, Richter, Domingo-Enrich, Du, Vahdat, Neumann, "Underdamped Diffusion Bridges
with Applications to Sampling", ICLR 2025 (the cosine step-size schedule).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from oplearn.errors import ConfigError


class TimeGrid(ABC):
    """A horizon ``[t0, t1]`` and a step-size profile; ``t0``, ``t1`` floats or ``(batch,)`` tensors."""

    def __init__(self, t0: float | torch.Tensor = 0.0, t1: float | torch.Tensor = 1.0) -> None:
        if bool(torch.any(torch.as_tensor(t1) <= torch.as_tensor(t0))):
            raise ConfigError(f"time grid: the end time must exceed the start time (t0={t0}, t1={t1})")
        self.t0, self.t1 = t0, t1

    @abstractmethod
    def profile(self, steps: int) -> torch.Tensor:
        """Relative step sizes ``(steps,)`` in float64 (any positive scale)."""

    def fractions(self, steps: int) -> torch.Tensor:
        """``(t_k - t_0) / (t_1 - t_0)`` for ``k = 0..steps``: ``(steps + 1,)``, float64, from 0 to 1."""
        if steps < 1:
            raise ConfigError(f"time grid: the number of steps must be >= 1, got {steps}")
        h = self.profile(steps)
        s = torch.cat([h.new_zeros(1), torch.cumsum(h, 0)])
        s = s / s[-1]
        s[-1] = 1.0
        return s

    def times(self, steps: int, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu") -> torch.Tensor:
        """The grid points: ``(steps + 1,)``, or ``(steps + 1, batch)`` for a batched horizon."""
        s = self.fractions(steps)
        t0 = torch.as_tensor(self.t0, dtype=torch.float64)
        t1 = torch.as_tensor(self.t1, dtype=torch.float64)
        if t0.ndim or t1.ndim:
            s = s[:, None]
        return (t0 + (t1 - t0) * s).to(dtype=dtype, device=device)


class UniformGrid(TimeGrid):
    """Equal steps :math:`h_k = (t_1 - t_0) / N`."""

    def profile(self, steps: int) -> torch.Tensor:
        return torch.ones(steps, dtype=torch.float64)


class GeometricGrid(TimeGrid):
    """Steps in geometric progression, :math:`h_k \\propto r^{k/(N-1)}`: ``ratio < 1`` refines
    towards ``t1``, ``ratio > 1`` towards ``t0``."""

    def __init__(self, t0: float = 0.0, t1: float = 1.0, ratio: float = 0.1) -> None:
        super().__init__(t0, t1)
        if not ratio > 0:
            raise ConfigError(f"geometric time grid: ratio must be > 0, got {ratio}")
        self.ratio = float(ratio)

    def profile(self, steps: int) -> torch.Tensor:
        k = torch.arange(steps, dtype=torch.float64)
        return self.ratio ** (k / max(steps - 1, 1))


class CosineGrid(TimeGrid):
    """Cosine step-size profile (module docstring), large steps first, fine steps near ``t1``."""

    def __init__(
        self, t0: float = 0.0, t1: float = 1.0, minimum: float = 0.01, offset: float = 0.008, power: float = 2.0
    ) -> None:
        super().__init__(t0, t1)
        if not 0 < minimum <= 1:
            raise ConfigError(f"cosine time grid: minimum must be in (0, 1], got {minimum}")
        self.minimum, self.offset, self.power = float(minimum), float(offset), float(power)

    def profile(self, steps: int) -> torch.Tensor:
        tau = (steps - torch.arange(steps, dtype=torch.float64)) / steps
        c = torch.cos(0.5 * math.pi * (1 + self.offset - tau) / (1 + self.offset)).clamp(min=0.0)
        return (1 - self.minimum) * c**self.power + self.minimum
