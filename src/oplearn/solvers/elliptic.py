r"""Direct sparse solver for variable-coefficient elliptic problems with zero Dirichlet data.

.. math::

    -\nabla \cdot (a \nabla u) + c u = f \ \text{in the box}, \qquad u = 0 \ \text{on its boundary},

discretised exactly as :func:`oplearn.derivatives.divergence_form` (the ``2 d + 1``-point
stencil with face coefficients averaged from the neighbouring nodes), so that
``-divergence_form(u, a) + c u - f`` vanishes at the interior nodes to round-off.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch

from oplearn.derivatives import face_average
from oplearn.grids import Grid


def _check(name: str, t: torch.Tensor, grid: Grid) -> None:
    if t.ndim != grid.ndim + 1 or tuple(t.shape[1:]) != grid.shape:
        raise ValueError(f"{name} must have shape (batch, *{grid.shape}), got {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")


def _stencil(grid: Grid) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """The interior node numbers and the (row, col) pairs of the off-diagonal couplings.

    Returns ``(nodes, couplings)``: ``nodes`` numbers the interior nodes in C order and
    ``couplings[d]`` holds the rows and columns coupling interior node ``i`` to ``i + e_d``.
    """
    interior = tuple(n - 2 for n in grid.shape)
    index = np.arange(int(np.prod(interior))).reshape(interior)
    couplings = []
    for d, m in enumerate(interior):
        couplings.append((index.take(np.arange(m - 1), axis=d).ravel(), index.take(np.arange(1, m), axis=d).ravel()))
    return index.ravel(), couplings


def _matrices(a: torch.Tensor, reaction: float, grid: Grid) -> Iterator[scipy.sparse.csc_array]:
    """The sparse CSC matrices of ``-div(a grad .) + c`` on the interior nodes, one per sample."""
    diagonal, couplings = _stencil(grid)
    interior = (slice(None),) + (slice(1, -1),) * grid.ndim
    diag_values = np.full((a.shape[0], diagonal.size), reaction, dtype=np.float64)
    off_values = []
    for d, h in enumerate(grid.spacing):
        rest = list(interior)
        rest[1 + d] = slice(None)
        faces = face_average(a, 1 + d)[tuple(rest)].numpy() / h**2  # (batch, ..., n_d - 1, ...)
        minus = faces.take(np.arange(faces.shape[1 + d] - 1), axis=1 + d)
        plus = faces.take(np.arange(1, faces.shape[1 + d]), axis=1 + d)
        diag_values += (minus + plus).reshape(a.shape[0], -1)
        inner = faces.take(np.arange(1, faces.shape[1 + d] - 1), axis=1 + d)
        off_values.append(-inner.reshape(a.shape[0], -1))
    rows = np.concatenate([diagonal] + [r for r, c in couplings] + [c for r, c in couplings])
    cols = np.concatenate([diagonal] + [c for r, c in couplings] + [r for r, c in couplings])
    size = diagonal.size
    for b in range(a.shape[0]):
        values = np.concatenate([diag_values[b]] + [v[b] for v in off_values] * 2)
        yield scipy.sparse.csc_array((values, (rows, cols)), shape=(size, size))


def _factor_solve(matrix: scipy.sparse.csc_array, rhs: np.ndarray) -> np.ndarray:
    return scipy.sparse.linalg.splu(matrix, permc_spec="MMD_AT_PLUS_A").solve(rhs)


def solve_dirichlet(
    a: torch.Tensor, f: torch.Tensor, grid: Grid, reaction: float = 0.0, workers: int | None = None
) -> torch.Tensor:
    """Solve ``-div(a grad u) + reaction u = f`` with ``u = 0`` on the boundary of ``grid``.

    Each sample is assembled with scipy.sparse and factorised with SuperLU. A coefficient
    shared by the whole batch (``a`` of batch size 1) is factorised once and every right-hand
    side is solved with that factorisation. Works in any dimension; the cost of the direct
    factorisation grows quickly beyond 2D.

    Parameters
    ----------
    a : torch.Tensor
        Diffusion coefficient at the nodes, positive and finite.
    f : torch.Tensor
        Right-hand side at the nodes; its boundary values are ignored.
    grid : Grid
        A bounded (non-periodic) grid with at least 3 nodes per dimension.
    reaction : float
        The constant ``c``; negative values (Helmholtz, ``c = -k^2``) are allowed as long as
        the discrete operator stays non-singular.
    workers : int, optional
        Threads factorising samples concurrently (SuperLU releases the GIL); defaults to the
        number of CPUs. On 2 idle cores, 2 threads solve 128^2 and 256^2 batches about 1.6x faster.

    Returns
    -------
    torch.Tensor
        ``u`` in float64 on the CPU, with zero boundary values.

    Shapes
    ------
    ``a (batch or 1, *grid.shape)``, ``f (batch, *grid.shape) -> (batch, *grid.shape)``.
    """
    if grid.periodic:
        raise ValueError("solve_dirichlet needs a bounded grid; got a periodic grid")
    if any(n < 3 for n in grid.shape):
        raise ValueError(f"grid shape {grid.shape} has no interior nodes")
    _check("a", a, grid)
    _check("f", f, grid)
    if a.shape[0] not in (1, f.shape[0]):
        raise ValueError(f"a has batch size {a.shape[0]} but f has {f.shape[0]}; use equal sizes or 1 for a")
    if not (a > 0).all():
        raise ValueError(f"the coefficient a must be positive; its minimum is {a.min().item():.3g}")
    a = a.detach().to("cpu", torch.float64)
    f = f.detach().to("cpu", torch.float64)
    interior = (slice(None),) + (slice(1, -1),) * grid.ndim
    rhs = f[interior].reshape(f.shape[0], -1).numpy()
    if a.shape[0] == 1:
        (matrix,) = _matrices(a, float(reaction), grid)
        solutions = _factor_solve(matrix, np.ascontiguousarray(rhs.T)).T
    else:
        matrices = _matrices(a, float(reaction), grid)
        workers = min(workers or os.cpu_count() or 1, f.shape[0])
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                solutions = list(pool.map(_factor_solve, matrices, rhs))
        else:
            solutions = [_factor_solve(m, r) for m, r in zip(matrices, rhs)]
    u = torch.zeros(f.shape, dtype=torch.float64)
    u[interior] = torch.from_numpy(np.stack(list(solutions))).reshape(u[interior].shape)
    return u
