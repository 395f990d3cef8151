r"""A family of 2D Poisson problems on random star-shaped domains, and their reference solutions.

Each problem is

.. math::

    \Delta u = f \ \text{in } \Omega, \qquad u = g \ \text{on } \partial\Omega, \qquad \Omega \subset [0, 1]^2,

with three random ingredients:

* :math:`\Omega` star-shaped about :math:`c` (:func:`~oplearn.wos.domains.star_vertices`,
  a polygon through ``vertices`` points of
  :math:`\rho(\theta) = r_0 (1 + \sum_{k \le K} a_k \cos k\theta + b_k \sin k\theta)`,
  :math:`a_k, b_k \sim U(-A, A)`, :math:`c` uniform within ``center_jitter`` of the square's centre);
* :math:`f` a Gaussian random field in the cosine basis of the unit square, with the spectrum
  of :class:`~oplearn.fields.GaussianRandomField` (``alpha``, ``tau``, ``sigma``, ``modes``),
  defined everywhere in the square so it can be evaluated at any point;
* :math:`g(x) = \sum_{k=0}^{K_g} (p_k \cos k\varphi + q_k \sin k\varphi) / (1 + k)`, a random
  Fourier series in the angle :math:`\varphi` of :math:`x - c` (:math:`p_k, q_k \sim N(0, s_g^2)`),
  so it is defined off the boundary as its extension constant along rays.

Operators see the problem as three fields on a grid of the square: :math:`f`, the ray
extension of :math:`g`, and the signed distance of :math:`\Omega` (the geometry).

The reference solution (:meth:`PoissonProblems.reference`) is the Shortley-Weller finite
difference solve: the 5-point Laplacian at interior nodes, with the arms that cross
:math:`\partial\Omega` shortened to the crossing point (found by bisection on the signed
distance) where :math:`g` is imposed. It is second-order accurate on curved boundaries,
unlike a staircase mask, and is checked against walk-on-spheres in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
from pydantic import Field, model_validator

from oplearn.fields import GaussianRandomField
from oplearn.grids import Grid
from oplearn.schema import Strict
from oplearn.wos.domains import polygon_sdf, star_vertices

#: The bounding box of every problem of the family.
SQUARE = ((0.0, 1.0), (0.0, 1.0))


class PoissonFamily(Strict):
    """The distribution of the problems (see the module docstring for the symbols); also the
    ``wos.family`` config section."""

    alpha: float = Field(default=2.0, gt=0)
    tau: float = Field(default=3.0, gt=0)
    sigma: float = Field(default=60.0, gt=0)
    modes: int = Field(default=8, gt=0)
    radius: float = Field(default=0.3, gt=0)
    harmonics: int = Field(default=3, ge=0)
    amplitude: float = Field(default=0.08, ge=0)
    center_jitter: float = Field(default=0.05, ge=0)
    vertices: int = Field(default=64, ge=8)
    boundary_modes: int = Field(default=3, ge=0)
    boundary_scale: float = Field(default=0.5, ge=0)

    @model_validator(mode="after")
    def _fits(self) -> PoissonFamily:
        if 2 * self.harmonics * self.amplitude >= 1:
            raise ValueError(
                f"2 * harmonics * amplitude must be < 1 for a positive radius, got {2 * self.harmonics * self.amplitude:g}"
            )
        if self.radius * (1 + 2 * self.harmonics * self.amplitude) + self.center_jitter >= 0.5:
            raise ValueError(
                "the star-shaped domains must fit in the unit square: lower radius, amplitude or center_jitter"
            )
        return self

    def sample(self, n: int, generator: torch.Generator | None = None) -> PoissonProblems:
        """Draw ``n`` problems; the same generator state gives the same problems."""
        field_ = GaussianRandomField(self.alpha, self.tau, self.sigma, boundary="neumann", modes=self.modes)
        scales = field_.scales((1.0, 1.0))
        k = self.harmonics
        draws = torch.rand((n, 2 + 2 * k), generator=generator, dtype=torch.float64)
        center = 0.5 + self.center_jitter * (2 * draws[:, :2] - 1)
        shape = (2 * draws[:, 2:] - 1) * self.amplitude
        vertices = star_vertices(center, self.radius, shape[:, :k], shape[:, k:], self.vertices)
        source = scales * torch.randn((n, *scales.shape), generator=generator, dtype=torch.float64)
        boundary = self.boundary_scale * torch.randn(
            (n, 2, self.boundary_modes + 1), generator=generator, dtype=torch.float64
        )
        return PoissonProblems(vertices, center, source, boundary)


@dataclass
class PoissonProblems:
    r"""A batch of ``P`` problems of a :class:`PoissonFamily`; a :class:`~oplearn.wos.walk.WoSProblem`.

    ``vertices (P, m, 2)`` (the domain polygons), ``center (P, 2)``, ``source (P, M + 1, M + 1)``
    (cosine coefficients of :math:`f`), ``boundary (P, 2, K_g + 1)`` (cosine and sine
    coefficients :math:`p, q` of :math:`g`). Indexing with a tensor of problem indices gives the
    sub-batch.
    """

    vertices: torch.Tensor
    center: torch.Tensor
    source_coefficients: torch.Tensor
    boundary_coefficients: torch.Tensor
    dim: int = field(default=2, init=False)
    has_source: bool = field(default=True, init=False)

    def __len__(self) -> int:
        return len(self.vertices)

    def __getitem__(self, idx: int | slice | torch.Tensor) -> PoissonProblems:
        return PoissonProblems(
            self.vertices[idx], self.center[idx], self.source_coefficients[idx], self.boundary_coefficients[idx]
        )

    def sdf(self, x: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        """Signed distance of problem ``group`` at ``x``: ``(n, 2), (n,) -> (n,)``."""
        return polygon_sdf(x, self.vertices.to(x)[group])

    def source(self, x: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        r""":math:`f(x) = \sum_{k,l} c_{kl} \cos(\pi k x_1) \cos(\pi l x_2)`: ``(n, 2), (n,) -> (n,)``."""
        k = torch.arange(self.source_coefficients.shape[-1], dtype=x.dtype, device=x.device) * math.pi
        c1, c2 = torch.cos(x[:, :1] * k), torch.cos(x[:, 1:] * k)
        return torch.einsum("nk,nkl,nl->n", c1, self.source_coefficients.to(x)[group], c2)

    def boundary(self, x: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        r""":math:`g(x) = \sum_k (p_k \cos k\varphi + q_k \sin k\varphi) / (1 + k)`, :math:`\varphi` the
        angle of :math:`x - c`: ``(n, 2), (n,) -> (n,)``."""
        d = x - self.center.to(x)[group]
        phi = torch.atan2(d[:, 1], d[:, 0])[:, None]
        k = torch.arange(self.boundary_coefficients.shape[-1], dtype=x.dtype, device=x.device)
        coef = self.boundary_coefficients.to(x)[group] / (1 + k)
        return (coef[:, 0] * torch.cos(k * phi) + coef[:, 1] * torch.sin(k * phi)).sum(-1)

    def _on_grid(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], grid: Grid) -> torch.Tensor:
        """``fn`` of every problem at every node, one problem at a time: ``(P, *grid.shape)``."""
        nodes = grid.coordinates(torch.float64).flatten(1).T  # (N, 2)
        return torch.stack([fn(nodes, torch.full((len(nodes),), p)).view(grid.shape) for p in range(len(self))])

    def fields(self, grid: Grid) -> torch.Tensor:
        """The operator's input channels ``(f, g, sdf)`` at the nodes: ``(P, 3, *grid.shape)``, float64."""
        self._check_grid(grid)
        return torch.stack([self._on_grid(fn, grid) for fn in (self.source, self.boundary, self.sdf)], dim=1)

    def sample_points(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` points uniform in each problem's domain: ``(P, n, 2)`` (rejection from the square)."""
        out = torch.empty((len(self), n, 2), dtype=torch.float64)
        for p in range(len(self)):
            count = 0
            while count < n:
                x = torch.rand((2 * n, 2), generator=generator, dtype=torch.float64)
                x = x[polygon_sdf(x, self.vertices[p]) < 0][: n - count]
                out[p, count : count + len(x)] = x
                count += len(x)
        return out

    def reference(self, grid: Grid) -> tuple[torch.Tensor, torch.Tensor]:
        r"""Shortley-Weller finite-difference solutions at the nodes inside each domain.

        Returns ``(u, inside)``, each ``(P, *grid.shape)``: the solution (float64, ``g`` at the
        nodes outside) and the mask of nodes inside :math:`\Omega`.
        """
        self._check_grid(grid)
        sdf = self._on_grid(self.sdf, grid)
        f = self._on_grid(self.source, grid)
        g = self._on_grid(self.boundary, grid)
        u = g.clone()
        for p in range(len(self)):
            inside = sdf[p] < 0
            u[p][inside] = self._solve_one(p, grid, inside, f[p])
        return u, sdf < 0

    def _solve_one(self, p: int, grid: Grid, inside: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        r"""The values at the ``inside`` nodes of problem ``p`` (in C order).

        Along each axis, with arms :math:`h_-, h_+` to the neighbours or to the boundary,

        .. math:: u_{dd} \approx \frac{2}{h_- + h_+} \Big(\frac{u_+ - u_0}{h_+} - \frac{u_0 - u_-}{h_-}\Big),

        and an arm that ends on the boundary moves its term :math:`g` to the right-hand side.
        The outer ring of grid nodes is never inside (the square contains every domain).
        """
        h = grid.spacing
        number = -np.ones(grid.shape, dtype=np.int64)
        nodes = inside.numpy().nonzero()
        n = len(nodes[0])
        number[nodes] = np.arange(n)
        x0 = torch.stack(
            [grid.domain[d][0] + h[d] * torch.as_tensor(nodes[d], dtype=torch.float64) for d in range(2)], 1
        )
        rows, cols, vals = [], [], []
        diagonal = np.zeros(n)
        rhs = f[inside].numpy().copy()
        for d in range(2):
            arms = {}
            for sign in (-1, 1):
                shifted = list(nodes)
                shifted[d] = shifted[d] + sign
                neighbour = number[tuple(shifted)]
                crossing = neighbour < 0
                t, g = np.ones(n), np.zeros(n)
                if crossing.any():
                    t[crossing] = self._crossing(p, x0[crossing], d, sign * h[d])
                    end = x0[crossing].clone()
                    end[:, d] += sign * h[d] * torch.as_tensor(t[crossing])
                    g[crossing] = self.boundary(end, torch.full((len(end),), p)).numpy()
                arms[sign] = (t * h[d], neighbour, crossing, g)
            total = arms[-1][0] + arms[1][0]
            for length, neighbour, crossing, g in arms.values():
                coef = 2 / (length * total)
                diagonal -= coef
                rows.append(np.arange(n)[~crossing])
                cols.append(neighbour[~crossing])
                vals.append(coef[~crossing])
                rhs -= coef * g
        matrix = scipy.sparse.csc_array(
            (
                np.concatenate([diagonal, *vals]),
                (np.concatenate([np.arange(n), *rows]), np.concatenate([np.arange(n), *cols])),
            ),
            shape=(n, n),
        )
        return torch.as_tensor(scipy.sparse.linalg.spsolve(matrix, rhs))

    def _crossing(self, p: int, x: torch.Tensor, d: int, step: float, iterations: int = 40) -> np.ndarray:
        """Fractions ``t in (0, 1]`` with ``x + t step e_d`` on the boundary of problem ``p`` (bisection)."""
        lo, hi = torch.zeros(len(x), dtype=torch.float64), torch.ones(len(x), dtype=torch.float64)
        e = torch.zeros(2, dtype=torch.float64)
        e[d] = step
        for _ in range(iterations):
            mid = (lo + hi) / 2
            inside = polygon_sdf(x + mid[:, None] * e, self.vertices[p]) < 0
            lo, hi = torch.where(inside, mid, lo), torch.where(inside, hi, mid)
        return ((lo + hi) / 2).clamp(min=1e-6).numpy()

    @staticmethod
    def _check_grid(grid: Grid) -> None:
        if grid.periodic or grid.domain != SQUARE:
            raise ValueError(f"the Poisson family lives on a bounded grid of the unit square, got {grid}")
