r"""Batches of point clouds and meshes for the operators of :mod:`oplearn.models`.

Samples with different numbers of nodes are *packed*: their nodes are concatenated and
each node carries the index of its sample (``batch``), which the neighbour search uses to
keep samples apart (:func:`oplearn.layers.neighbors.radius_neighbors`). Quadrature weights
are the lumped node weights of a triangle mesh, or :math:`|\text{box}| / N` for a point
cloud without triangles.

For operators on a grid (an FNO on the bounding box) :func:`to_grid` gives the *masked
bounding box* view of a mesh sample: the fields interpolated piecewise-linearly at the
grid nodes inside the mesh (zero outside), the signed distance of the mesh, and the mask
of the nodes inside.

Shapes: packed ``nodes (P, d)``, ``inputs (P, c_in)``, ``outputs (P, c_out)``,
``batch (P,)``, ``weights (P,)``; grids ``(B, channels, *grid.shape)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from oplearn.geometry.mesh import MeshSample
from oplearn.grids import Grid


@dataclass(frozen=True)
class PackedBatch:
    """Samples packed along the node axis (see the module docstring); ``counts (B,)`` nodes per sample."""

    nodes: torch.Tensor
    inputs: torch.Tensor
    outputs: torch.Tensor
    batch: torch.Tensor
    weights: torch.Tensor
    counts: torch.Tensor

    def __len__(self) -> int:
        return len(self.counts)

    def split(self, values: torch.Tensor) -> list[torch.Tensor]:
        """``values (P, ...)`` cut into the samples' parts ``(N_i, ...)``."""
        return list(torch.split(values, self.counts.tolist()))

    def to(self, device: torch.device | str) -> PackedBatch:
        return PackedBatch(
            *(t.to(device) for t in (self.nodes, self.inputs, self.outputs, self.batch, self.weights, self.counts))
        )


def node_weights(sample: MeshSample, box: tuple[tuple[float, float], ...]) -> torch.Tensor:
    """Quadrature weights of a sample's nodes ``(N,)`` float64: lumped mesh weights, or the box
    volume shared equally by the points of a point cloud."""
    if sample.triangles is not None and len(sample.triangles):
        return sample.mesh.node_weights
    return torch.full(
        (len(sample.nodes),), math.prod(hi - lo for lo, hi in box) / len(sample.nodes), dtype=torch.float64
    )


def pack(
    samples: Sequence[MeshSample], box: tuple[tuple[float, float], ...], dtype: torch.dtype = torch.float32
) -> PackedBatch:
    """Pack ``samples`` (see the module docstring)."""
    counts = torch.tensor([len(s.nodes) for s in samples])
    cat = lambda key: torch.cat([getattr(s, key) for s in samples]).to(dtype)
    weights = torch.cat([node_weights(s, box) for s in samples]).to(dtype)
    return PackedBatch(
        cat("nodes"),
        cat("inputs"),
        cat("outputs"),
        torch.arange(len(samples)).repeat_interleave(counts),
        weights,
        counts,
    )


def signed_distance_grid(samples: Sequence[MeshSample], grid: Grid) -> torch.Tensor:
    """The signed distance of each sample's mesh at the nodes of ``grid``: ``(B, 1, *grid.shape)`` float32."""
    points = grid.coordinates(torch.float64).flatten(1).T
    return torch.stack([s.mesh.signed_distance(points).view(1, *grid.shape) for s in samples]).float()


def to_grid(samples: Sequence[MeshSample], grid: Grid) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The masked bounding-box view of mesh samples on ``grid``.

    Returns ``inputs (B, c_in + 1, *shape)`` (the input fields, then the signed distance),
    ``outputs (B, c_out, *shape)`` and ``mask (B, 1, *shape)`` (nodes inside the mesh), float32.
    """
    points = grid.coordinates(torch.float64).flatten(1).T
    inputs, outputs, masks = [], [], []
    for s in samples:
        mesh = s.mesh
        field = lambda values: mesh.interpolate(values.double(), points, outside=0.0).T.reshape(-1, *grid.shape)  # noqa: B023 (called within this iteration)
        inside = (mesh.locate(points)[0] >= 0).view(1, *grid.shape)
        inputs.append(torch.cat([field(s.inputs), mesh.signed_distance(points).view(1, *grid.shape)]))
        outputs.append(field(s.outputs))
        masks.append(inside)
    return torch.stack(inputs).float(), torch.stack(outputs).float(), torch.stack(masks).float()


def from_grid(values: torch.Tensor, grid: Grid, points: torch.Tensor) -> torch.Tensor:
    """Bilinear interpolation of grid fields ``values (C, n_1, n_2)`` at ``points (P, 2)`` in the
    grid's box: ``-> (P, C)`` (how a grid operator's output is read at mesh nodes)."""
    (x0, x1), (y0, y1) = grid.domain
    # grid_sample's x runs along the last axis; our first axis is x
    u = 2 * (points[:, 0] - x0) / (x1 - x0) - 1
    v = 2 * (points[:, 1] - y0) / (y1 - y0) - 1
    sample = torch.stack([v, u], -1).to(values).view(1, 1, -1, 2)
    out = torch.nn.functional.grid_sample(values[None], sample, mode="bilinear", align_corners=True)
    return out[0, :, 0].T
