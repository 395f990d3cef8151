r"""The kernel integral of graph neural operators, over radius neighbourhoods.

.. math::

    (\mathcal{K} v)(y) = \int_{B_r(y) \cap \Omega} w\!\left(\tfrac{|x - y|^2}{r^2}\right)
        \kappa_\theta\big(y, x - y\big) \odot v(x) \, \frac{dx}{|B_r|}
    \approx \sum_{x_i \in N_r(y)} \frac{q_i}{|B_r|} \, w_i \, \kappa_\theta(\dots) \odot v(x_i),

with a learned kernel :math:`\kappa_\theta` (an MLP of the query point and the displacement,
one value per channel), quadrature weights :math:`q_i` of the input points
(e.g. :attr:`oplearn.geometry.mesh.TriangleMesh.node_weights`, or cell areas of a grid) and a
weighting function :math:`w` of the scaled squared distance. Without quadrature weights the
sum is the :math:`w`-weighted mean over the neighbourhood,
:math:`\sum_i w_i \kappa_i v_i / \sum_i w_i` (for uniformly spread points the same
integral up to the factor :math:`|B_r \cap \Omega| / |B_r|`).

With :math:`w = 1` the neighbourhood has a hard edge: a point entering or leaving
:math:`B_r(y)` makes :math:`\mathcal{K}v` jump as :math:`y` moves, so derivatives in
:math:`y` by automatic differentiation miss these jumps. A *mollifier* vanishing smoothly at
the edge (:data:`MOLLIFIERS`) makes :math:`(\mathcal{K} v)(y)` as smooth in :math:`y` as
:math:`w` and :math:`\kappa_\theta` (the mollified GNO), so autograd derivatives in the query
points are exact derivatives of the operator's output.

The pairs are processed in chunks of at most ``max_pairs`` (by whole queries), each
recomputed in the backward pass when ``activation_checkpointing`` is set, so memory
stays bounded at millions of points; sums use ``index_add`` with int64 indices (no scatter
extension).

Shapes: ``x (N, d)``, ``v (N, c)``, ``y (Q, d)``, ``quadrature (N,)`` -> ``(Q, c)``.

References
----------
Li et al., Neural Operator: Graph Kernel Network for Partial Differential Equations, 2020.
Lin et al., Enabling Automatic Differentiation with Mollified Graph Neural Operators, 2025.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from oplearn.layers.neighbors import Neighbors


def _bump(t: torch.Tensor) -> torch.Tensor:
    """:math:`\\exp(1 - 1 / (1 - t))`: infinitely smooth, every derivative zero at :math:`t = 1`."""
    t = t.clamp(max=1 - 1e-6)  # exp(-1e6) underflows to 0 with a zero (not NaN) derivative
    return torch.exp(1 - 1 / (1 - t))


#: Weighting functions of :math:`t = |x - y|^2 / r^2 \in [0, 1]`, one at the centre, zero at the edge.
#: ``quartic`` :math:`(1 - t)^2` is once, ``octic`` :math:`(1 - t)^4` three times continuously
#: differentiable across the edge; ``bump`` infinitely often.
MOLLIFIERS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "bump": _bump,
    "quartic": lambda t: (1 - t).clamp(min=0).square(),
    "octic": lambda t: (1 - t).clamp(min=0).square().square(),
}


def mlp(sizes: list[int], activation: type[nn.Module] = nn.GELU) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def ball_volume(radius: float, dim: int) -> float:
    """:math:`|B_r| = \\pi^{d/2} r^d / \\Gamma(d/2 + 1)`."""
    return math.pi ** (dim / 2) * radius**dim / math.gamma(dim / 2 + 1)


class KernelIntegral(nn.Module):
    r"""The kernel integral of the module docstring.

    Parameters
    ----------
    channels : int
        Channels of :math:`v` (and of the output).
    coord_dim : int
        Dimension of the points.
    radius : float
        Neighbourhood radius :math:`r` (also the scale of :math:`w`).
    kernel_width : int
        Hidden width of the two hidden layers of :math:`\kappa_\theta`.
    mollifier : str or None
        A key of :data:`MOLLIFIERS`, or ``None`` for :math:`w = 1` (a hard edge).
    max_pairs : int
        Pairs per chunk (see the module docstring).

    Shapes
    ------
    ``forward(x (N, d), v (N, c), y (Q, d), neighbors, quadrature (N,) or None) -> (Q, c)``
    """

    def __init__(
        self,
        channels: int,
        coord_dim: int,
        radius: float,
        kernel_width: int = 64,
        mollifier: str | None = None,
        max_pairs: int = 1 << 20,
    ) -> None:
        super().__init__()
        if mollifier is not None and mollifier not in MOLLIFIERS:
            raise ValueError(f"unknown mollifier {mollifier!r}; choose one of {', '.join(MOLLIFIERS)} or None")
        if not radius > 0:
            raise ValueError(f"radius must be > 0, got {radius}")
        self.channels, self.coord_dim, self.radius = channels, coord_dim, float(radius)
        self.mollifier, self.max_pairs = mollifier, int(max_pairs)
        self.kernel = mlp([2 * coord_dim, kernel_width, kernel_width, channels])
        #: Recompute each chunk's kernel in the backward pass instead of storing it.
        self.activation_checkpointing = False

    def forward(
        self,
        x: torch.Tensor,
        v: torch.Tensor,
        y: torch.Tensor,
        neighbors: Neighbors,
        quadrature: torch.Tensor | None = None,
    ) -> torch.Tensor:
        splits = neighbors.row_splits
        if len(splits) != len(y) + 1:
            raise ValueError(f"neighbourhoods of {len(splits) - 1} queries given for {len(y)} query points")
        # query boundaries so that every chunk holds at most max_pairs pairs (or one query)
        targets = torch.arange(1, max(1, -(-int(splits[-1]) // self.max_pairs)), device=splits.device) * self.max_pairs
        cuts = (torch.searchsorted(splits, targets, right=True) - 1).tolist()
        bounds = sorted({0, len(y), *(b for b in cuts if 0 < b < len(y))})
        recompute = self.activation_checkpointing and torch.is_grad_enabled()
        parts = []
        for q0, q1 in zip(bounds[:-1], bounds[1:]):
            if q1 <= q0:
                continue
            p0, p1 = int(splits[q0]), int(splits[q1])
            index, counts = neighbors.index[p0:p1], splits[q0 + 1 : q1 + 1] - splits[q0:q1]
            args = (x, v, y[q0:q1], index, counts, quadrature)
            parts.append(checkpoint(self._chunk, *args, use_reentrant=False) if recompute else self._chunk(*args))
        return torch.cat(parts) if parts else v.new_zeros((0, self.channels))

    def _chunk(
        self,
        x: torch.Tensor,
        v: torch.Tensor,
        y: torch.Tensor,
        index: torch.Tensor,
        counts: torch.Tensor,
        quadrature: torch.Tensor | None,
    ) -> torch.Tensor:
        """The integral at the queries ``y (q, d)`` from their pairs ``index (p,)``, ``counts (q,)``."""
        owner = torch.repeat_interleave(torch.arange(len(y), device=y.device), counts)
        centre = torch.repeat_interleave(y, counts, dim=0)
        displacement = x.index_select(0, index) - centre
        integrand = self.kernel(torch.cat([centre, displacement], dim=1)) * v.index_select(0, index)  # (p, c)
        weight = (
            torch.ones_like(displacement[:, 0])
            if self.mollifier is None
            else MOLLIFIERS[self.mollifier](displacement.square().sum(1) / self.radius**2)
        )
        if quadrature is not None:
            weight = weight * quadrature.index_select(0, index).to(weight) / ball_volume(self.radius, self.coord_dim)
        total = integrand.new_zeros((len(y), self.channels)).index_add(0, owner, integrand * weight[:, None])
        if quadrature is not None:
            return total
        norm = weight.new_zeros(len(y)).index_add(0, owner, weight)
        return total / norm.clamp(min=torch.finfo(norm.dtype).tiny)[:, None]
