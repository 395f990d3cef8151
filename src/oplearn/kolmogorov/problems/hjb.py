r"""The linearised Hamilton-Jacobi-Bellman problem: a double-well drift in every coordinate.

.. math::

    dX = -\nabla V(X)\,dt + dW, \quad V(x) = \kappa \sum_i (x_i^2 - 1)^2, \qquad
    \varphi(x) = \exp\Big(-\eta \sum_i (x_i - 1)^2\Big),

:math:`\kappa = 0.1`, :math:`\eta = 0.04`, ``x`` in :math:`[-1.5, 1.5]^{10}`, ``T = 1``. The problem
separates: :math:`u(t, x) = \prod_i v(t, x_i)` with the one-dimensional solution
:math:`\partial_t v = \tfrac12 v'' - V_1'(x) v'`, :math:`v(0) = e^{-\eta(x-1)^2}`, which
:meth:`LinearizedHJB.exact` reads (linear interpolation in ``t`` and ``x``) from a Crank-Nicolson
finite-difference solve on :math:`[-4, 4]` (4001 nodes, reflecting ends far outside the box, where
the drift pulls strongly inwards; 2000 time steps; float64), accurate to about 1e-6.

References
----------
Richter, Berner, ICML 2022, github.com/juliusberner/robust_kolmogorov,
``configs/problems/hjb_10d.yaml`` (coefficients and box; its reference is a different
finite-difference scheme).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg
import torch

from oplearn.kolmogorov.problems.base import KolmogorovPDE
from oplearn.sde import ScalarNoise


def solve_1d(
    drift: Callable[[np.ndarray], np.ndarray],
    initial: Callable[[np.ndarray], np.ndarray],
    half_width: float,
    nodes: int,
    steps: int,
    horizon: float,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Crank-Nicolson for :math:`\partial_t v = \tfrac12 v'' + b(x) v'` on ``[-half_width, half_width]``
    (central differences, ghost-node Neumann ends): nodes ``(nodes,)`` and ``v (steps + 1, nodes)``."""
    x = np.linspace(-half_width, half_width, nodes)
    h, dt = x[1] - x[0], horizon / steps
    b = drift(x)
    lower = 0.5 / h**2 - b / (2 * h)  # coefficient of v_{i-1}
    upper = 0.5 / h**2 + b / (2 * h)  # coefficient of v_{i+1}
    diag = -1.0 / h**2 * np.ones(nodes)
    lower_full, upper_full = lower.copy(), upper.copy()
    upper_full[0] += lower[0]  # reflecting ends: v_{-1} = v_1, v_{n} = v_{n-2}
    lower_full[-1] += upper[-1]
    # A v: A[i, i-1] = lower_full[i], A[i, i+1] = upper_full[i]
    banded = np.zeros((3, nodes))
    banded[0, 1:] = -0.5 * dt * upper_full[:-1]
    banded[1] = 1 - 0.5 * dt * diag
    banded[2, :-1] = -0.5 * dt * lower_full[1:]
    v = np.empty((steps + 1, nodes))
    v[0] = initial(x)
    for k in range(steps):
        u = v[k]
        au = diag * u
        au[1:] += lower_full[1:] * u[:-1]
        au[:-1] += upper_full[:-1] * u[1:]
        v[k + 1] = scipy.linalg.solve_banded((1, 1), banded, u + 0.5 * dt * au)
    return x, v


class LinearizedHJB(KolmogorovPDE):
    """Double-well drift, Gaussian bump initial condition (module docstring)."""

    name = "hjb"

    def __init__(self, dim: int = 10, kappa: float = 0.1, eta: float = 0.04) -> None:
        super().__init__(dim, (-1.5, 1.5))
        self.kappa, self.eta = float(kappa), float(eta)
        self.noise = ScalarNoise()
        self._table: tuple[torch.Tensor, torch.Tensor] | None = None

    def drift(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return -4 * self.kappa * x * (x.square() - 1)

    def diffusion(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.ones((), dtype=x.dtype, device=x.device)

    def initial(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.eta * (x - 1).square().sum(-1))

    def table(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Nodes ``(n,)`` and the one-dimensional solution ``(steps + 1, n)`` (computed once)."""
        if self._table is None:
            x, v = solve_1d(
                lambda x: -4 * self.kappa * x * (x**2 - 1),
                lambda x: np.exp(-self.eta * (x - 1) ** 2),
                4.0,
                4001,
                2000,
                self.horizon,
            )
            self._table = torch.from_numpy(x), torch.from_numpy(v)
        return self._table

    def exact(self, t: torch.Tensor, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        nodes, v = self.table()
        steps = v.shape[0] - 1
        s = (t.double().cpu() / self.horizon * steps).clamp(0, steps)
        k = s.floor().long().clamp(max=steps - 1)
        wt = (s - k)[:, None]
        xi = x.double().cpu().clamp(float(nodes[0]), float(nodes[-1]))
        q = (xi - nodes[0]) / (nodes[1] - nodes[0])
        j = q.floor().long().clamp(max=len(nodes) - 2)
        wx = q - j

        def at(row: torch.Tensor) -> torch.Tensor:
            return (1 - wx) * v[row[:, None], j] + wx * v[row[:, None], j + 1]

        one_d = (1 - wt) * at(k) + wt * at(k + 1)
        return one_d.prod(-1).to(dtype=x.dtype, device=x.device)
