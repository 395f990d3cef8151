r"""Domains given by signed distance functions, for walk-on-spheres.

A domain :math:`\Omega \subset \mathbb{R}^d` is described by a function :math:`\phi` with

.. math::

    \phi(x) < 0 \iff x \in \Omega, \qquad |\phi(x)| \le \operatorname{dist}(x, \partial\Omega),

exact for boxes, balls and polygons, and a lower bound for the set operations
(union :math:`\min(\phi_A, \phi_B)`, intersection :math:`\max(\phi_A, \phi_B)`, difference
:math:`\max(\phi_A, -\phi_B)`). A lower bound is all walk-on-spheres needs: the ball of
radius :math:`|\phi(x)|` around an interior point still lies inside :math:`\Omega`.

Every ``sdf`` acts on points of shape ``(..., d)`` and returns ``(...)``, in the points'
dtype and device, differentiable in torch.

Planar domains also give their boundary as closed polylines (:meth:`Domain.curves`), with
every vertex on the boundary, for meshing (:func:`oplearn.geometry.mesh.mesh_domain`).
"""

from __future__ import annotations

import abc
import math

import torch

Bounds = tuple[tuple[float, ...], tuple[float, ...]]


class Domain(abc.ABC):
    """A bounded open set in :math:`\\mathbb{R}^d` given by a signed distance bound.

    Subclasses set :attr:`dim` and implement :meth:`sdf` and :attr:`bounds`.
    ``a | b``, ``a & b`` and ``a - b`` build the union, intersection and difference.
    """

    dim: int

    @abc.abstractmethod
    def sdf(self, x: torch.Tensor) -> torch.Tensor:
        """Signed distance bound, negative inside: ``(..., dim) -> (...)``."""

    @property
    @abc.abstractmethod
    def bounds(self) -> Bounds:
        """A box ``(lo, hi)`` containing the domain."""

    def curves(self, spacing: float) -> list[torch.Tensor]:
        """The boundary of a 2D domain as closed polylines with vertices on the boundary and
        edges at most ``spacing`` long: a list of ``(m_i, 2)`` float64 tensors (the closing edge
        from the last vertex to the first is implied). Raises ``ValueError`` where not known."""
        raise ValueError(
            f"{self!r} gives no boundary curves; only 2D boxes, balls, polygons and their non-crossing combinations do"
        )

    def contains(self, x: torch.Tensor) -> torch.Tensor:
        """Whether each point lies inside: ``(..., dim) -> (...)`` bool."""
        return self.sdf(x) < 0

    def sample(
        self, n: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64
    ) -> torch.Tensor:
        """``n`` points uniform in the domain (rejection from :attr:`bounds`): ``(n, dim)``."""
        lo, hi = (torch.tensor(b, dtype=dtype) for b in self.bounds)
        points, count = [], 0
        for _ in range(1000):
            x = lo + (hi - lo) * torch.rand((max(2 * (n - count), 64), self.dim), generator=generator, dtype=dtype)
            x = x[self.contains(x)]
            points.append(x)
            count += len(x)
            if count >= n:
                return torch.cat(points)[:n]
        raise ValueError(f"{self!r} occupies almost none of its bounding box; cannot sample interior points")

    def __or__(self, other: Domain) -> Domain:
        return Union(self, other)

    def __and__(self, other: Domain) -> Domain:
        return Intersection(self, other)

    def __sub__(self, other: Domain) -> Domain:
        return Difference(self, other)


class Box(Domain):
    r"""The open box :math:`\prod_i (lo_i, hi_i)`, exact signed distance.

    .. math:: \phi(x) = |\max(q, 0)| + \min(\max_i q_i, 0), \qquad q_i = |x_i - c_i| - h_i,

    with centre :math:`c` and half-widths :math:`h`.
    """

    def __init__(self, lo: tuple[float, ...], hi: tuple[float, ...]) -> None:
        if len(lo) != len(hi) or not lo:
            raise ValueError(f"box corners must have the same positive length, got {lo} and {hi}")
        if any(h <= l for l, h in zip(lo, hi)):
            raise ValueError(f"box {lo} - {hi} is empty")
        self.lo, self.hi = tuple(map(float, lo)), tuple(map(float, hi))
        self.dim = len(lo)

    @property
    def bounds(self) -> Bounds:
        return self.lo, self.hi

    def sdf(self, x: torch.Tensor) -> torch.Tensor:
        lo, hi = (torch.tensor(b, dtype=x.dtype, device=x.device) for b in (self.lo, self.hi))
        q = (x - (lo + hi) / 2).abs() - (hi - lo) / 2
        return q.clamp(min=0).norm(dim=-1) + q.amax(dim=-1).clamp(max=0)

    def curves(self, spacing: float) -> list[torch.Tensor]:
        if self.dim != 2:
            return super().curves(spacing)
        (x0, y0), (x1, y1) = self.lo, self.hi
        return [subdivide(torch.tensor([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=torch.float64), spacing)]

    def __repr__(self) -> str:
        return f"Box({self.lo}, {self.hi})"


class Ball(Domain):
    r"""The open ball :math:`|x - c| < r`, exact signed distance :math:`\phi(x) = |x - c| - r`."""

    def __init__(self, center: tuple[float, ...], radius: float) -> None:
        if not radius > 0:
            raise ValueError(f"ball radius must be > 0, got {radius}")
        self.center, self.radius = tuple(map(float, center)), float(radius)
        self.dim = len(center)

    @property
    def bounds(self) -> Bounds:
        return tuple(c - self.radius for c in self.center), tuple(c + self.radius for c in self.center)

    def sdf(self, x: torch.Tensor) -> torch.Tensor:
        return (x - torch.tensor(self.center, dtype=x.dtype, device=x.device)).norm(dim=-1) - self.radius

    def curves(self, spacing: float) -> list[torch.Tensor]:
        if self.dim != 2:
            return super().curves(spacing)
        m = max(8, math.ceil(2 * math.pi * self.radius / _check_spacing(spacing)))
        theta = torch.arange(m, dtype=torch.float64) * (2 * math.pi / m)
        return [
            torch.tensor(self.center, dtype=torch.float64)
            + self.radius * torch.stack([torch.cos(theta), torch.sin(theta)], -1)
        ]

    def __repr__(self) -> str:
        return f"Ball({self.center}, {self.radius})"


def polygon_sdf(x: torch.Tensor, vertices: torch.Tensor) -> torch.Tensor:
    r"""Exact signed distance to a simple closed polygon, negative inside.

    The distance is the smallest distance to the edges :math:`[v_i, v_{i+1}]`; the sign
    comes from the even-odd crossing count of the ray :math:`x + t e_1, t > 0`.

    Shapes: ``x (..., 2)``, ``vertices (..., m, 2)`` (broadcasting leading axes, e.g. one
    polygon per point) ``-> (...)``.
    """
    v, v_next = vertices, torch.roll(vertices, -1, dims=-2)
    vx, vy, ex, ey = v[..., 0], v[..., 1], v_next[..., 0] - v[..., 0], v_next[..., 1] - v[..., 1]  # (..., m)
    px, py = x[..., :1], x[..., 1:]  # (..., 1)
    distance = segment_distance(x.unsqueeze(-2), v, v_next).amin(dim=-1)
    straddles = (vy > py) != (v_next[..., 1] > py)
    crossing_x = vx + (py - vy) * ex / torch.where(straddles, ey, torch.ones_like(ey))
    inside = (straddles & (px < crossing_x)).sum(-1) % 2 == 1
    return torch.where(inside, -distance, distance)


def segment_distance(x: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    r"""Distance from points to segments :math:`[a, b]`: :math:`|x - a - t (b - a)|`,
    :math:`t = \mathrm{clamp}((x - a) \cdot (b - a) / |b - a|^2, 0, 1)`.

    Shapes: ``x, start, end (..., 2)`` (broadcasting) ``-> (...)``.
    """
    ex, ey = end[..., 0] - start[..., 0], end[..., 1] - start[..., 1]
    wx, wy = x[..., 0] - start[..., 0], x[..., 1] - start[..., 1]
    t = ((wx * ex + wy * ey) / (ex * ex + ey * ey)).clamp_(0, 1)
    return ((wx - ex * t).square_() + (wy - ey * t).square_()).sqrt_()


def _check_spacing(spacing: float) -> float:
    if not spacing > 0:
        raise ValueError(f"curve spacing must be > 0, got {spacing}")
    return float(spacing)


def subdivide(vertices: torch.Tensor, spacing: float) -> torch.Tensor:
    """The closed polyline through ``vertices`` with every edge split into equal pieces at
    most ``spacing`` long (the original vertices kept): ``(m, 2) -> (m', 2)``."""
    spacing = _check_spacing(spacing)
    nxt = torch.roll(vertices, -1, dims=0)
    pieces = ((nxt - vertices).norm(dim=1) / spacing).ceil().clamp(min=1).long()
    t = torch.cat([torch.arange(int(k), dtype=vertices.dtype) / int(k) for k in pieces])
    start = vertices.repeat_interleave(pieces, dim=0)
    return start + t[:, None] * (nxt.repeat_interleave(pieces, dim=0) - start)


class Polygon(Domain):
    """A simple closed polygon in 2D (vertices in order, not repeated), exact signed distance."""

    dim = 2

    def __init__(self, vertices: torch.Tensor) -> None:
        vertices = torch.as_tensor(vertices, dtype=torch.float64)
        if vertices.ndim != 2 or vertices.shape[1] != 2 or len(vertices) < 3:
            raise ValueError(f"polygon vertices must have shape (m >= 3, 2), got {tuple(vertices.shape)}")
        self.vertices = vertices

    @property
    def bounds(self) -> Bounds:
        return tuple(self.vertices.amin(0).tolist()), tuple(self.vertices.amax(0).tolist())

    def sdf(self, x: torch.Tensor) -> torch.Tensor:
        return polygon_sdf(x, self.vertices.to(x))

    def curves(self, spacing: float) -> list[torch.Tensor]:
        return [subdivide(self.vertices, spacing)]

    def __repr__(self) -> str:
        return f"Polygon({len(self.vertices)} vertices)"


def star_vertices(
    center: torch.Tensor, radius: float | torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, m: int
) -> torch.Tensor:
    r"""``m`` points on the star-shaped curve :math:`c + \rho(\theta) (\cos\theta, \sin\theta)`,

    .. math:: \rho(\theta) = r \big(1 + \sum_{k=1}^{K} a_k \cos k\theta + b_k \sin k\theta\big),
              \qquad \theta_j = 2 \pi j / m.

    Shapes: ``center (..., 2)``, ``radius`` scalar or ``(...)``, ``cos, sin (..., K)``
    ``-> (..., m, 2)``.
    """
    theta = torch.arange(m, dtype=cos.dtype, device=cos.device) * (2 * math.pi / m)
    k = torch.arange(1, cos.shape[-1] + 1, dtype=cos.dtype, device=cos.device)
    kt = theta[:, None] * k  # (m, K)
    wiggle = (cos.unsqueeze(-2) * torch.cos(kt)).sum(-1) + (sin.unsqueeze(-2) * torch.sin(kt)).sum(-1)
    rho = torch.as_tensor(radius, dtype=cos.dtype, device=cos.device)[..., None] * (1 + wiggle)  # (..., m)
    if (rho <= 0).any():
        raise ValueError("star-shaped radius must stay positive: the harmonic amplitudes are too large")
    return center.unsqueeze(-2) + rho.unsqueeze(-1) * torch.stack([torch.cos(theta), torch.sin(theta)], -1)


class StarShaped(Polygon):
    r"""A 2D domain star-shaped about ``center``: the polygon through ``m`` points of the
    curve :math:`\rho(\theta)` of :func:`star_vertices` (``m`` large makes it the smooth curve
    to :math:`O(r / m^2)`).
    """

    def __init__(
        self,
        center: tuple[float, float],
        radius: float,
        cos: tuple[float, ...] = (),
        sin: tuple[float, ...] = (),
        m: int = 64,
    ) -> None:
        cos, sin = torch.tensor(cos, dtype=torch.float64), torch.tensor(sin, dtype=torch.float64)
        if cos.shape != sin.shape:
            raise ValueError(
                f"star-shaped domain needs as many sine as cosine amplitudes, got {len(cos)} and {len(sin)}"
            )
        super().__init__(star_vertices(torch.tensor(center, dtype=torch.float64), radius, cos, sin, m))

    def __repr__(self) -> str:
        return f"StarShaped({len(self.vertices)} vertices)"


class _Combined(Domain):
    """A set operation on two domains of the same dimension: :meth:`combine` of their ``sdf``."""

    symbol: str

    def __init__(self, a: Domain, b: Domain) -> None:
        if a.dim != b.dim:
            raise ValueError(f"cannot combine a {a.dim}D domain with a {b.dim}D domain")
        self.dim, self.a, self.b = a.dim, a, b

    @staticmethod
    @abc.abstractmethod
    def combine(phi_a: torch.Tensor, phi_b: torch.Tensor) -> torch.Tensor:
        """The combined signed distance bound."""

    def sdf(self, x: torch.Tensor) -> torch.Tensor:
        return self.combine(self.a.sdf(x), self.b.sdf(x))

    def curves(self, spacing: float) -> list[torch.Tensor]:
        """The parts' curves that lie on this domain's boundary (where the combined distance
        vanishes). Curves that cross (part on the boundary, part not) raise ``ValueError``."""
        kept = []
        for curve in self.a.curves(spacing) + self.b.curves(spacing):
            on = self.sdf(curve).abs() <= 1e-9 * (1 + curve.abs().max())
            if on.all():
                kept.append(curve)
            elif on.any():
                raise ValueError(f"the boundaries of {self!r} cross; only nested or disjoint parts can be meshed")
        return kept

    def __repr__(self) -> str:
        return f"({self.a!r} {self.symbol} {self.b!r})"


class Union(_Combined):
    r""":math:`A \cup B`: :math:`\phi = \min(\phi_A, \phi_B)`."""

    symbol = "|"
    combine = staticmethod(torch.minimum)

    @property
    def bounds(self) -> Bounds:
        (lo_a, hi_a), (lo_b, hi_b) = self.a.bounds, self.b.bounds
        return tuple(map(min, lo_a, lo_b)), tuple(map(max, hi_a, hi_b))


class Intersection(_Combined):
    r""":math:`A \cap B`: :math:`\phi = \max(\phi_A, \phi_B)`."""

    symbol = "&"
    combine = staticmethod(torch.maximum)

    @property
    def bounds(self) -> Bounds:
        (lo_a, hi_a), (lo_b, hi_b) = self.a.bounds, self.b.bounds
        return tuple(map(max, lo_a, lo_b)), tuple(map(min, hi_a, hi_b))


class Difference(_Combined):
    r""":math:`A \setminus \bar B`: :math:`\phi = \max(\phi_A, -\phi_B)`."""

    symbol = "-"

    @staticmethod
    def combine(phi_a: torch.Tensor, phi_b: torch.Tensor) -> torch.Tensor:
        return torch.maximum(phi_a, -phi_b)

    @property
    def bounds(self) -> Bounds:
        return self.a.bounds
