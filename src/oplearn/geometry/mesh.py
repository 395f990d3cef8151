r"""Triangle meshes of planar domains: the geometry of irregular-domain data.

A :class:`TriangleMesh` is the pair (nodes, triangles). It knows its boundary (the edges of
one triangle only), its element areas, the lumped quadrature weights of its nodes

.. math:: \int_\Omega v \, dx \approx \sum_i \mu_i v(x_i), \qquad \mu_i = \tfrac13 \sum_{T \ni x_i} |T|,

(exact for piecewise-linear :math:`v`), piecewise-linear interpolation at any points and the
signed distance of the meshed domain.

:func:`mesh_domain` meshes a signed-distance domain of :mod:`oplearn.wos.domains` with
Shewchuk's Triangle (the ``triangle`` package, extra ``fem``): a constrained
quality Delaunay triangulation of its boundary curves (:meth:`~oplearn.wos.domains.Domain.curves`)
with minimum angle ``min_angle`` and maximum area :math:`\sqrt3 h^2 / 4` (equilateral
triangles of side :math:`h`); triangles whose centroid lies outside (holes) are removed
and boundary nodes are projected onto the zero level set of the signed distance, so the
mesh boundary interpolates curved boundaries and P1 elements keep their second order.
Triangle ships as a compiled wheel (no compiler, no network, no system library), meshes
thousands of nodes in milliseconds and guarantees well-shaped elements; its own licence
forbids commercial redistribution without the author's permission, which is why it is an
optional extra.

Shapes: ``nodes (N, 2)`` float64, ``triangles (T, 3)`` int64 (counter-clockwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import torch

from oplearn.extras import require
from oplearn.wos.domains import Domain, segment_distance

if TYPE_CHECKING:
    import skfem
    from matplotlib.tri import TriFinder


@dataclass(frozen=True, eq=False)
class TriangleMesh:
    """A conforming triangle mesh. ``nodes (N, 2)`` float64, ``triangles (T, 3)`` int64."""

    nodes: torch.Tensor
    triangles: torch.Tensor

    def __post_init__(self) -> None:
        nodes = torch.as_tensor(self.nodes, dtype=torch.float64)
        triangles = torch.as_tensor(self.triangles, dtype=torch.int64)
        if nodes.ndim != 2 or nodes.shape[1] != 2:
            raise ValueError(f"mesh nodes must have shape (N, 2), got {tuple(nodes.shape)}")
        if triangles.ndim != 2 or triangles.shape[1] != 3 or len(triangles) == 0:
            raise ValueError(f"mesh triangles must have shape (T >= 1, 3), got {tuple(triangles.shape)}")
        if triangles.min() < 0 or triangles.max() >= len(nodes):
            raise ValueError(f"mesh triangles index nodes outside 0..{len(nodes) - 1}")
        a, b, c = nodes[triangles].unbind(1)
        cross = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
        triangles = torch.where((cross < 0)[:, None], triangles[:, [0, 2, 1]], triangles)  # counter-clockwise
        object.__setattr__(self, "nodes", nodes)
        object.__setattr__(self, "triangles", triangles)

    def __len__(self) -> int:
        return len(self.nodes)

    @cached_property
    def areas(self) -> torch.Tensor:
        """Element areas ``(T,)``."""
        a, b, c = self.nodes[self.triangles].unbind(1)
        return ((b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]) / 2

    @cached_property
    def node_weights(self) -> torch.Tensor:
        r"""Lumped quadrature weights :math:`\mu_i` ``(N,)`` (they sum to the area)."""
        return torch.zeros(len(self.nodes), dtype=torch.float64).index_add_(
            0, self.triangles.flatten(), (self.areas / 3).repeat_interleave(3)
        )

    @cached_property
    def boundary_edges(self) -> torch.Tensor:
        """The edges of exactly one triangle ``(E, 2)`` (node indices)."""
        edges = self.triangles[:, [0, 1, 1, 2, 2, 0]].view(-1, 2).sort(dim=1).values
        n = len(self.nodes)
        keys, counts = np.unique((edges[:, 0] * n + edges[:, 1]).numpy(), return_counts=True)  # int64 edge keys
        once = torch.from_numpy(keys[counts == 1])
        return torch.stack([once // n, once % n], dim=1)

    @cached_property
    def boundary(self) -> torch.Tensor:
        """Whether each node lies on the boundary ``(N,)`` bool."""
        mask = torch.zeros(len(self.nodes), dtype=torch.bool)
        mask[self.boundary_edges.flatten()] = True
        return mask

    @property
    def size(self) -> float:
        """The longest edge :math:`h`."""
        edges = self.triangles[:, [0, 1, 1, 2, 2, 0]].view(-1, 2)
        return float((self.nodes[edges[:, 0]] - self.nodes[edges[:, 1]]).norm(dim=1).max())

    @cached_property
    def _finder(self) -> TriFinder:
        from matplotlib.tri import Triangulation

        nodes = self.nodes.numpy()
        return Triangulation(nodes[:, 0], nodes[:, 1], self.triangles.numpy()).get_trifinder()

    def locate(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The triangle containing each point (``-1`` outside) and its barycentric coordinates.

        Shapes: ``points (P, 2) -> (P,)`` int64, ``(P, 3)`` float64 (zeros outside).
        """
        p = torch.as_tensor(points, dtype=torch.float64)
        index = torch.from_numpy(np.asarray(self._finder(p[:, 0].numpy(), p[:, 1].numpy()), dtype=np.int64))
        inside = index >= 0
        a, b, c = self.nodes[self.triangles[index.clamp(min=0)]].unbind(1)
        det = (b - a)[:, 0] * (c - a)[:, 1] - (b - a)[:, 1] * (c - a)[:, 0]
        w = p - a
        lb = (w[:, 0] * (c - a)[:, 1] - w[:, 1] * (c - a)[:, 0]) / det
        lc = ((b - a)[:, 0] * w[:, 1] - (b - a)[:, 1] * w[:, 0]) / det
        bary = torch.stack([1 - lb - lc, lb, lc], dim=1)
        return index, torch.where(inside[:, None], bary, 0.0)

    def interpolate(self, values: torch.Tensor, points: torch.Tensor, outside: float = float("nan")) -> torch.Tensor:
        """The piecewise-linear interpolant of nodal ``values`` at ``points`` (``outside`` where
        no triangle contains a point). Differentiable in ``values``.

        Shapes: ``values (N, *channels)``, ``points (P, 2) -> (P, *channels)``.
        """
        index, bary = self.locate(points)
        corner = values[self.triangles[index.clamp(min=0)]]  # (P, 3, *channels)
        bary = bary.to(values).view(*bary.shape, *([1] * (values.ndim - 1)))
        out = (bary * corner).sum(1)
        mask = (index < 0).view(-1, *([1] * (values.ndim - 1)))
        return torch.where(mask, torch.full_like(out, outside), out)

    def signed_distance(self, points: torch.Tensor, chunk: int = 1 << 22) -> torch.Tensor:
        """Distance to the mesh boundary, negative inside the mesh: ``(P, 2) -> (P,)`` float64."""
        p = torch.as_tensor(points, dtype=torch.float64)
        start, end = self.nodes[self.boundary_edges].unbind(1)  # (E, 2)
        rows = max(1, chunk // len(start))
        distance = torch.cat(
            [segment_distance(p[i : i + rows, None], start, end).amin(1) for i in range(0, len(p), rows)]
        )
        inside = self.locate(p)[0] >= 0
        return torch.where(inside, -distance, distance)

    def to_skfem(self) -> skfem.MeshTri:
        """The same mesh as a ``skfem.MeshTri`` (extra ``fem``)."""
        skfem = require("skfem", "fem")
        return skfem.MeshTri(self.nodes.numpy().T.copy(), self.triangles.numpy().T.copy())


@dataclass(frozen=True, eq=False)
class MeshSample:
    """Fields at the nodes of one point cloud or mesh: ``nodes (N, d)`` float64, ``inputs
    (N, c_in)``, ``outputs (N, c_out)`` and, for a triangle mesh, ``triangles (T, 3)`` int64."""

    nodes: torch.Tensor
    inputs: torch.Tensor
    outputs: torch.Tensor
    triangles: torch.Tensor | None = None

    @property
    def mesh(self) -> TriangleMesh:
        """The triangle mesh (``ValueError`` for a point cloud without triangles)."""
        if self.triangles is None or len(self.triangles) == 0:
            raise ValueError("this sample is a point cloud without triangles")
        return TriangleMesh(self.nodes, self.triangles)


def mesh_domain(domain: Domain, h: float, min_angle: float = 28.0, projections: int = 3) -> TriangleMesh:
    """A quality triangle mesh of the 2D ``domain`` with element size about ``h`` (see the
    module docstring). Raises ``ValueError`` for domains without boundary curves."""
    triangle = require("triangle", "fem")
    if not h > 0:
        raise ValueError(f"mesh size must be > 0, got {h}")
    curves = domain.curves(h)
    offsets = np.cumsum([0] + [len(c) for c in curves])
    vertices = torch.cat(curves).numpy()
    segments = np.concatenate(
        [
            lo + np.stack([np.arange(hi - lo), (np.arange(hi - lo) + 1) % (hi - lo)], 1)
            for lo, hi in zip(offsets[:-1], offsets[1:])
        ]
    )
    area = math.sqrt(3) / 4 * h * h
    switches = f"pq{min_angle:.6f}a{area:.20f}Q"  # no exponent: Triangle reads "e" as a switch
    out = triangle.triangulate({"vertices": vertices, "segments": segments}, switches)
    nodes = torch.from_numpy(out["vertices"]).to(torch.float64)
    triangles = torch.from_numpy(out["triangles"].astype(np.int64))
    centroids = nodes[triangles].mean(1)
    triangles = triangles[domain.sdf(centroids) < 0]  # interior holes are meshed too: drop them
    used, triangles = np.unique(triangles.numpy(), return_inverse=True)
    mesh = TriangleMesh(nodes[torch.from_numpy(used)], torch.from_numpy(triangles.reshape(-1, 3)))
    return TriangleMesh(project_boundary(mesh.nodes, mesh.boundary, domain, projections), mesh.triangles)


def project_boundary(nodes: torch.Tensor, boundary: torch.Tensor, domain: Domain, steps: int = 3) -> torch.Tensor:
    r"""``nodes`` with the ``boundary`` ones moved onto :math:`\phi = 0` by Newton steps
    :math:`x \leftarrow x - \phi(x) \nabla\phi(x) / |\nabla\phi(x)|^2`.

    Shapes: ``nodes (N, 2)``, ``boundary (N,)`` bool ``-> (N, 2)``.
    """
    x = nodes[boundary].clone()
    for _ in range(steps):
        off = domain.sdf(x).abs() > 1e-13  # points on the curve (e.g. polygon corners) stay
        if not off.any():
            break
        y = x[off].requires_grad_(True)
        phi = domain.sdf(y)
        (grad,) = torch.autograd.grad(phi.sum(), y)
        x[off] = (y - (phi / grad.square().sum(1).clamp(min=1e-30))[:, None] * grad).detach()
    out = nodes.clone()
    out[boundary] = x
    return out
