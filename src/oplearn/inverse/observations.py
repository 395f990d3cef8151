r"""Observation operators: which entries of a field are measured, and with how much noise.

Every operator here selects entries of the field,

.. math::

    y = A x + \epsilon, \qquad (A x)_j = x_{c_j}(p_j), \qquad \epsilon_j \sim \mathcal N(0, s^2),

with :math:`c_j` a channel and :math:`p_j` a grid node, so :math:`A` is a 0/1 matrix with one
1 per row, :math:`A A^\top = I` and :math:`A^\top A` is the diagonal mask of observed entries.
An operator is stored as the flat indices of the observed entries in ``x[0].flatten()`` plus
the noise level :math:`s`; the subclasses differ only in how they choose the entries
(random points, the boundary, every ``stride``-th node).

Shapes
------
``apply(x)``: ``(batch, channels, *spatial) -> (batch, m)``; ``mask()``: ``(channels, *spatial)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from oplearn.errors import OplearnError


class ObservationError(OplearnError):
    """An observation operator does not fit the field it is applied to."""


class Observation:
    r"""Noisy observation of selected entries of a field (see the module docstring).

    Parameters
    ----------
    index : tensor of int
        Flat indices of the observed entries in one sample's ``(channels, *spatial)`` field,
        distinct, in the order of the observed values (``apply(x)[:, j]`` is entry ``index[j]``).
    shape : tuple of int
        ``(channels, *spatial)`` of the fields it observes.
    noise : float
        Standard deviation :math:`s \ge 0` of the additive Gaussian observation noise.
    """

    def __init__(self, index: torch.Tensor, shape: tuple[int, ...], noise: float = 0.0) -> None:
        index = torch.as_tensor(index, dtype=torch.long).flatten()
        size = math.prod(shape)
        if len(index) == 0:
            raise ObservationError("an observation needs at least one observed point")
        if index.min() < 0 or index.max() >= size:
            raise ObservationError(f"observation indices must lie in [0, {size}) for fields of shape {tuple(shape)}")
        if len(torch.unique(index)) != len(index):
            raise ObservationError("observation indices must be distinct")
        if not (math.isfinite(noise) and noise >= 0):
            raise ObservationError(f"the observation noise must be finite and >= 0, got {noise}")
        self.index = index  # kept in the given order: it is the order of the observed values y
        self.shape = tuple(int(n) for n in shape)
        self.noise = float(noise)

    def __len__(self) -> int:
        return len(self.index)

    def _check(self, x: torch.Tensor) -> None:
        if tuple(x.shape[1:]) != self.shape:
            raise ObservationError(
                f"the observation is defined on fields of shape {self.shape}, got {tuple(x.shape[1:])}"
            )

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """The noise-free observed values :math:`A x`: ``(batch, *shape) -> (batch, m)`` (differentiable)."""
        self._check(x)
        return x.flatten(1)[:, self.index.to(x.device)]

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        r""":math:`A^\top y`: the values scattered into zero fields, ``(batch, m) -> (batch, *shape)``."""
        out = y.new_zeros((y.shape[0], math.prod(self.shape)))
        out[:, self.index.to(y.device)] = y
        return out.reshape(y.shape[0], *self.shape)

    def observe(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Noisy observations :math:`A x + \\epsilon` of the fields ``x``: ``(batch, *shape) -> (batch, m)``."""
        y = self.apply(x)
        if self.noise == 0:
            return y
        eps = torch.randn(
            y.shape, generator=generator, dtype=y.dtype, device=generator.device if generator else y.device
        )
        return y + self.noise * eps.to(y.device)

    def misfit(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r"""Per-sample :math:`\tfrac12 \lVert y - A x \rVert^2`: ``(batch, *shape), (batch or 1, m) -> (batch,)``."""
        return 0.5 * (y - self.apply(x)).square().sum(dim=1)

    def mask(self) -> torch.Tensor:
        """Boolean ``(channels, *spatial)`` field, true at the observed entries."""
        mask = torch.zeros(math.prod(self.shape), dtype=torch.bool)
        mask[self.index] = True
        return mask.reshape(self.shape)

    def with_noise(self, noise: float) -> Observation:
        """The same entries with another noise level."""
        return Observation(self.index, self.shape, noise)

    def to_dict(self) -> dict:
        return {"index": self.index.tolist(), "shape": list(self.shape), "noise": self.noise}

    @classmethod
    def from_dict(cls, d: dict) -> Observation:
        return Observation(torch.tensor(d["index"]), tuple(d["shape"]), float(d["noise"]))


def _channel_index(shape: tuple[int, ...], channels: int | Sequence[int], spatial_mask: torch.Tensor) -> torch.Tensor:
    """Flat indices of ``spatial_mask``'s true nodes in each of ``channels``."""
    channels = [channels] if isinstance(channels, int) else list(channels)
    if not channels or any(not 0 <= c < shape[0] for c in channels):
        raise ObservationError(
            f"observed channels {channels} must lie in [0, {shape[0]}) for fields of shape {tuple(shape)}"
        )
    nodes = spatial_mask.flatten().nonzero().flatten()
    per_channel = math.prod(shape[1:])
    return torch.cat([c * per_channel + nodes for c in sorted(set(channels))])


class PointObservation(Observation):
    """``n`` nodes drawn uniformly without replacement (seeded), observed in ``channels``.

    The same nodes are observed in every listed channel; ``n`` counts nodes, so
    ``len(obs) == n * len(channels)``.
    """

    def __init__(
        self,
        shape: tuple[int, ...],
        n: int,
        channels: int | Sequence[int] = 0,
        noise: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        spatial = math.prod(shape[1:])
        if int(n) != n or not 1 <= n <= spatial:
            raise ObservationError(f"the number of observed points must be an integer in [1, {spatial}], got {n}")
        nodes = torch.randperm(spatial, generator=generator)[: int(n)]
        mask = torch.zeros(spatial, dtype=torch.bool)
        mask[nodes] = True
        super().__init__(_channel_index(shape, channels, mask), shape, noise)


class BoundaryObservation(Observation):
    """All nodes on the boundary of the box, observed in ``channels``."""

    def __init__(self, shape: tuple[int, ...], channels: int | Sequence[int] = 0, noise: float = 0.0) -> None:
        mask = torch.zeros(shape[1:], dtype=torch.bool)
        for d in range(len(shape) - 1):
            mask.index_fill_(d, torch.tensor([0, shape[1 + d] - 1]), True)
        super().__init__(_channel_index(shape, channels, mask), shape, noise)


class Subsample(Observation):
    """Every ``stride``-th node in each dimension (from node 0), observed in ``channels``."""

    def __init__(
        self, shape: tuple[int, ...], stride: int, channels: int | Sequence[int] = 0, noise: float = 0.0
    ) -> None:
        if int(stride) != stride or stride < 1:
            raise ObservationError(f"the subsampling stride must be a positive integer, got {stride}")
        mask = torch.zeros(shape[1:], dtype=torch.bool)
        mask[(slice(None, None, int(stride)),) * (len(shape) - 1)] = True
        super().__init__(_channel_index(shape, channels, mask), shape, noise)
