r"""Walk-on-spheres: unbiased Monte-Carlo estimates of Poisson solutions at points.

For the Dirichlet problem

.. math::

    \Delta u = f \ \text{in } \Omega \subset \mathbb{R}^d, \qquad u = g \ \text{on } \partial\Omega,

the mean-value property on the largest ball :math:`B_R(x) \subset \Omega`,
:math:`R = \operatorname{dist}(x, \partial\Omega)`, gives

.. math::

    u(x) = \mathbb{E}_{y \sim U(\partial B_R(x))}[u(y)]
           - |B_R| \, \mathbb{E}_{z \sim U(B_R(x))}[G_R(x, z) f(z)]
         = \mathbb{E}[u(y)] - \frac{R^2}{2d} \, \mathbb{E}_{z \sim p}[f(z)],

with the ball's Green's function of :math:`-\Delta`

.. math::

    G_R(x, z) = \frac{\log(R / r)}{2\pi} \ (d = 2), \qquad
    G_R(x, z) = \frac{r^{2-d} - R^{2-d}}{(d - 2)\,\omega_d} \ (d \ge 3),
    \qquad r = |z - x|,

:math:`\omega_d = 2\pi^{d/2} / \Gamma(d/2)` the area of the unit sphere, and
:math:`\int_{B_R} G_R(x, z)\,dz = R^2 / (2d)`. The second form samples :math:`z` from the
density :math:`p \propto G_R(x, \cdot)` (a uniform direction and the radius :math:`r = R s`,
:math:`s` drawn by :func:`green_radii`):
the same expectation as the :math:`|B_R| G_R` weighting of uniform points, with finite
variance in every dimension (the uniform weighting has infinite variance for
:math:`d \ge 4`) and no variance at all for a constant source.

Repeating the step from :math:`y` until :math:`|\phi(x)| < \varepsilon` and adding
:math:`g(x)` there gives an estimator with bias :math:`O(\varepsilon)` and variance
:math:`O(1 / \text{walks})`; the expected number of steps grows like
:math:`\log(1/\varepsilon)` in convex domains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from oplearn.wos.domains import Domain

PointFunction = Callable[[torch.Tensor], torch.Tensor]  # (..., d) -> (...)


class WoSProblem(Protocol):
    r"""What a walk needs: :math:`\phi`, :math:`f` and :math:`g`, for a batch of problems.

    Each walker carries the index ``group`` of its problem; ``x (n, d)`` and
    ``group (n,)`` give ``(n,)``. :attr:`has_source` false skips the source term (Laplace).
    """

    dim: int
    has_source: bool

    def sdf(self, x: torch.Tensor, group: torch.Tensor) -> torch.Tensor: ...

    def source(self, x: torch.Tensor, group: torch.Tensor) -> torch.Tensor: ...

    def boundary(self, x: torch.Tensor, group: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class DirichletProblem:
    r"""One problem :math:`\Delta u = f` in ``domain``, :math:`u = g` on its boundary.

    ``boundary`` (:math:`g`) and ``source`` (:math:`f`, ``None`` for Laplace's equation) map
    points ``(..., d)`` to values ``(...)``; :math:`g` is evaluated at points within
    :math:`\varepsilon` of the boundary (inside), so it must be defined near it.
    """

    domain: Domain
    boundary: PointFunction
    source: PointFunction | None = None

    @property
    def dim(self) -> int:
        return self.domain.dim

    @property
    def has_source(self) -> bool:
        return self.source is not None

    def as_batch(self) -> _Single:
        return _Single(self)


class _Single:
    """A :class:`DirichletProblem` as a :class:`WoSProblem` (every walker in group 0)."""

    def __init__(self, problem: DirichletProblem) -> None:
        self.problem, self.dim, self.has_source = problem, problem.dim, problem.has_source

    def sdf(self, x: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        return self.problem.domain.sdf(x)

    def source(self, x: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        return self.problem.source(x)

    def boundary(self, x: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
        return self.problem.boundary(x)


@dataclass(frozen=True)
class Estimate:
    """Walk-on-spheres estimates at ``m`` points.

    ``mean (m,)``, ``stderr (m,)`` (sample standard deviation over walks / sqrt(walks)),
    ``mean_steps`` (steps per walk, averaged), ``truncated`` (walks stopped by
    ``max_steps`` before reaching the epsilon shell; they score :math:`g` where they stand).
    """

    mean: torch.Tensor
    stderr: torch.Tensor
    walks: int
    mean_steps: float
    truncated: int


def unit_vectors(
    n: int, d: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device | str | None
) -> torch.Tensor:
    """``n`` directions uniform on the unit sphere of :math:`\\mathbb{R}^d`: ``(n, d)``."""
    v = torch.randn((n, d), generator=generator, dtype=dtype, device=device)
    return v / v.norm(dim=1, keepdim=True)


def green_radii(
    n: int, d: int, generator: torch.Generator | None, dtype: torch.dtype, device: torch.device | str | None
) -> torch.Tensor:
    r"""``n`` radii :math:`s \in (0, 1)` of the unit ball with density :math:`\propto G_1(s)\,s^{d-1}`.

    Drawn exactly as :math:`s = U_1^{1/2} U_2^{1/d}` with :math:`U_1, U_2` uniform: the
    product of densities :math:`2a` and :math:`d b^{d-1}` has density

    .. math::

        \int_s^1 d b^{d-1} \, 2 \frac{s}{b} \, \frac{db}{b} = \frac{2 d}{d - 2} (s - s^{d-1})
        \ (d \ge 3), \qquad 4 s \log(1/s) \ (d = 2),

    proportional to :math:`G_1(s) s^{d-1}` in both cases.

    Shapes: ``-> (n,)``.
    """
    if d < 2:
        raise ValueError(f"walk-on-spheres needs dimension >= 2, got {d}")
    u = torch.rand((2, n), generator=generator, dtype=dtype, device=device)
    return u[0].sqrt() * u[1] ** (1 / d)


def sphere_step(
    problem: WoSProblem, x: torch.Tensor, radius: torch.Tensor, group: torch.Tensor, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""One step from ``x`` on spheres of ``radius``: the next points :math:`y` and the source term.

    Returns ``(y, s)`` with :math:`y` uniform on :math:`\partial B_R(x)` and
    :math:`s = -\frac{R^2}{2d} f(z)`, :math:`z \sim p \propto G_R(x, \cdot)` (zero without a
    source), so that :math:`u(x) = \mathbb{E}[u(y) + s]`.

    Shapes: ``x (n, d)``, ``radius (n,)``, ``group (n,)`` ``-> (n, d), (n,)``.
    """
    n, d = x.shape
    y = x + radius[:, None] * unit_vectors(n, d, generator, x.dtype, x.device)
    if not problem.has_source:
        return y, torch.zeros_like(radius)
    r = radius * green_radii(n, d, generator, x.dtype, x.device)
    z = x + r[:, None] * unit_vectors(n, d, generator, x.dtype, x.device)
    return y, -(radius**2 / (2 * d)) * problem.source(z, group)


def walk_on_spheres(
    problem: WoSProblem | DirichletProblem,
    points: torch.Tensor,
    walks: int,
    *,
    group: torch.Tensor | None = None,
    epsilon: float = 1e-4,
    max_steps: int = 10_000,
    generator: torch.Generator | None = None,
) -> Estimate:
    r"""Estimate :math:`u` at ``points`` with ``walks`` independent walks each (see the module docstring).

    Points outside the domain or within ``epsilon`` of its boundary score :math:`g` at once.
    All walkers advance together; those reaching the :math:`\varepsilon`-shell leave the
    batch. The result depends only on the inputs and the ``generator`` state (which must live on
    the points' device).

    Shapes: ``points (m, d)``, ``group (m,)`` (problem index of each point, default 0)
    -> :class:`Estimate` with ``mean, stderr (m,)``.
    """
    if isinstance(problem, DirichletProblem):
        problem = problem.as_batch()
    if points.ndim != 2 or points.shape[1] != problem.dim:
        raise ValueError(f"points must have shape (m, {problem.dim}), got {tuple(points.shape)}")
    if int(walks) != walks or walks < 1:
        raise ValueError(f"walks must be a positive integer, got {walks}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon}")
    m = len(points)
    if group is None:
        group = torch.zeros(m, dtype=torch.long, device=points.device)
    x = points.repeat_interleave(walks, dim=0)
    g = group.repeat_interleave(walks)
    alive = torch.arange(len(x), device=points.device)
    value = torch.zeros(len(x), dtype=points.dtype, device=points.device)
    steps = 0
    for _ in range(max_steps):
        radius = -problem.sdf(x, g)
        hit = radius < epsilon
        if hit.any():
            value[alive[hit]] += problem.boundary(x[hit], g[hit])
            keep = ~hit
            x, g, alive, radius = x[keep], g[keep], alive[keep], radius[keep]
        if not len(alive):
            break
        steps += len(alive)
        x, source_term = sphere_step(problem, x, radius, g, generator)
        value[alive] += source_term
    truncated = 0
    if len(alive):
        truncated = int((-problem.sdf(x, g) >= epsilon).sum())
        value[alive] += problem.boundary(x, g)
    samples = value.view(m, walks)
    stderr = (
        samples.std(dim=1) / walks**0.5
        if walks > 1
        else torch.full((m,), float("nan"), dtype=value.dtype, device=value.device)
    )
    return Estimate(samples.mean(dim=1), stderr, int(walks), steps / (m * walks) if m else 0.0, truncated)
