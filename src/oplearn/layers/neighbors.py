r"""Radius neighbourhoods between two point sets, in plain torch, with bounded memory.

For every query point :math:`y_j` the indices of the data points in its closed ball,

.. math:: N_r(y_j) = \{ i : |x_i - y_j| \le r \},

in compressed sparse row form: ``index`` lists the data points of query 0, then of query
1, ..., and ``row_splits[j]:row_splits[j + 1]`` is the slice of query ``j``. Counts and
offsets are int64 throughout, so nothing breaks above :math:`2^{24}` (float32) or
:math:`2^{31}` (int32) pairs.

The search hashes the data points into cells of side :math:`r`, sorts them by cell, and
for each query looks up the :math:`3^d` cells around its own with binary searches, so the
candidates are about :math:`(3/2)^d \cdot` (ball volume ratio) times the true pairs and
no all-pairs distance matrix is ever formed. Candidates are expanded and filtered in
chunks of at most ``max_candidates`` pairs, so the working memory is bounded whatever the
number of points (the result itself takes 8 bytes per pair). Points of different samples
of a packed batch (``data_batch``, ``query_batch``) are never neighbours.

Shapes: ``data (N, d)``, ``queries (Q, d)``, ``data_batch (N,)``, ``query_batch (Q,)``
-> ``index (P,)``, ``row_splits (Q + 1,)``, int64, on the points' device.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Neighbors:
    """Radius neighbourhoods in compressed sparse row form (see the module docstring)."""

    index: torch.Tensor
    row_splits: torch.Tensor

    @property
    def counts(self) -> torch.Tensor:
        """Neighbours per query ``(Q,)``."""
        return self.row_splits.diff()

    @property
    def query(self) -> torch.Tensor:
        """The query of every pair ``(P,)``."""
        counts = self.counts
        return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


def radius_neighbors(
    data: torch.Tensor,
    queries: torch.Tensor,
    radius: float,
    data_batch: torch.Tensor | None = None,
    query_batch: torch.Tensor | None = None,
    max_candidates: int = 1 << 22,
    query_block: int = 1 << 16,
) -> Neighbors:
    """The data points within ``radius`` of each query (see the module docstring)."""
    if data.ndim != 2 or queries.ndim != 2 or data.shape[1] != queries.shape[1]:
        raise ValueError(
            f"points must be (N, d) and (Q, d) with the same d, got {tuple(data.shape)} and {tuple(queries.shape)}"
        )
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    if (data_batch is None) != (query_batch is None):
        raise ValueError("give the batch index of both the data and the query points, or of neither")
    device, d = data.device, data.shape[1]
    data, queries = data.detach(), queries.detach()
    if len(data) == 0 or len(queries) == 0:
        return Neighbors(
            torch.zeros(0, dtype=torch.long, device=device),
            torch.zeros(len(queries) + 1, dtype=torch.long, device=device),
        )
    lo = torch.minimum(data.amin(0), queries.amin(0))
    data_cells = ((data - lo) / radius).floor().long() + 1  # +1: the neighbour cell -1 stays >= 0
    query_cells = ((queries - lo) / radius).floor().long() + 1
    dims = torch.maximum(data_cells.amax(0), query_cells.amax(0)) + 2
    batches = 1 if data_batch is None else int(max(data_batch.max(), query_batch.max())) + 1
    if batches * float(torch.prod(dims.double())) >= 2.0**62:
        raise ValueError(f"radius {radius} is too small for the extent of the points: more than 2^62 cells")
    strides = torch.cumprod(torch.cat([dims.flip(0)[:-1].new_ones(1), dims.flip(0)[:-1]]), 0).flip(0)  # C order
    cells_per_batch = int(torch.prod(dims))

    def keys(cells: torch.Tensor, batch: torch.Tensor | None) -> torch.Tensor:
        key = (cells * strides).sum(1)
        return key if batch is None else key + batch.long() * cells_per_batch

    sorted_keys, order = torch.sort(keys(data_cells, data_batch))
    sorted_data = data[order]  # candidates of one cell are contiguous here: cache-friendly gathers
    # visit the queries in cell order too (neighbouring queries search neighbouring keys)
    query_order = torch.sort(keys(query_cells, query_batch)).indices
    query_cells, queries = query_cells[query_order], queries[query_order]
    query_batch = None if query_batch is None else query_batch[query_order]
    offsets = torch.tensor(list(itertools.product((-1, 0, 1), repeat=d)), device=device)  # (3^d, d)
    radius2 = float(radius) ** 2
    index_parts, count_parts = [], []
    for b0 in range(0, len(queries), query_block):
        b1 = min(b0 + query_block, len(queries))
        around = query_cells[b0:b1, None, :] + offsets  # (B, 3^d, d)
        batch = None if query_batch is None else query_batch[b0:b1, None].expand(-1, len(offsets))
        wanted = keys(around.reshape(-1, d), None if batch is None else batch.reshape(-1))
        start = torch.searchsorted(sorted_keys, wanted)
        count = torch.searchsorted(sorted_keys, wanted, right=True) - start  # (B 3^d,) query-major
        per_query = count.view(b1 - b0, -1).sum(1)
        ends = torch.cumsum(per_query, 0)
        q = 0
        while q < b1 - b0:  # query chunks of at most max_candidates candidates (at least one query)
            base = int(ends[q - 1]) if q else 0
            q_end = max(q + 1, int(torch.searchsorted(ends, base + max_candidates, right=True)))
            rows = slice(q * len(offsets), q_end * len(offsets))
            s, c = start[rows], count[rows]
            first = torch.cumsum(c, 0) - c
            position = torch.repeat_interleave(s - first, c) + torch.arange(int(c.sum()), device=device)
            repeats = per_query[q:q_end]
            centre = torch.repeat_interleave(queries[b0 + q : b0 + q_end], repeats, dim=0)
            keep = (sorted_data.index_select(0, position) - centre).square_().sum(1) <= radius2
            index_parts.append(order[position[keep]])
            owner = torch.repeat_interleave(torch.arange(q_end - q, device=device), repeats)
            count_parts.append(torch.bincount(owner[keep], minlength=q_end - q))
            q = q_end
    # back to the callers' query order: one gather of the pair list
    sorted_counts = torch.cat(count_parts)
    sorted_splits = torch.cumsum(sorted_counts, 0) - sorted_counts
    counts = torch.empty_like(sorted_counts)
    counts[query_order] = sorted_counts
    starts = torch.empty_like(sorted_splits)
    starts[query_order] = sorted_splits
    row_splits = torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)])
    source = torch.repeat_interleave(starts - row_splits[:-1], counts) + torch.arange(
        int(row_splits[-1]), device=device
    )
    return Neighbors(torch.cat(index_parts)[source], row_splits)
