r"""Random planar domains in the unit square, for irregular-domain datasets.

A domain is an outer boundary minus up to ``holes`` disjoint discs,

.. math:: \Omega = D \setminus \bigcup_j \bar B_{\rho_j}(c_j) \subset [0, 1]^2,

built from the signed-distance shapes of :mod:`oplearn.wos.domains`, so the same object
is meshed (:func:`oplearn.geometry.mesh.mesh_domain`) and walked on (walk-on-spheres).
The outer boundary :math:`D` is, with probability ``polygon_fraction``, a star-shaped
polygon with ``corners`` vertices at jittered angles :math:`2\pi(j + U(-0.3, 0.3)) / m` and radii
:math:`r_0 (1 + U(-A_p, A_p))`, and otherwise the smooth star-shaped curve of
:func:`~oplearn.wos.domains.star_vertices` (``harmonics`` cosine and sine amplitudes
:math:`U(-A, A)`, resolved by ``vertices`` points). Its centre is uniform within
``center_jitter`` of :math:`(0.5, 0.5)`. Hole radii are uniform in ``hole_radius`` and hole
centres are drawn uniformly in the square and kept when the disc stays ``margin`` away from
:math:`\partial D` and from the other holes (at most 100 tries per hole).
"""

from __future__ import annotations

import math

import torch
from pydantic import Field, model_validator

from oplearn.schema import Strict
from oplearn.wos.domains import Ball, Domain, Polygon, StarShaped


class DomainFamily(Strict):
    """The law of the random domains (symbols in the module docstring)."""

    radius: float = Field(default=0.32, gt=0)
    center_jitter: float = Field(default=0.04, ge=0)
    polygon_fraction: float = Field(default=0.5, ge=0, le=1)
    corners: tuple[int, int] = (5, 8)
    corner_amplitude: float = Field(default=0.25, ge=0, lt=1)
    harmonics: int = Field(default=3, ge=0)
    amplitude: float = Field(default=0.07, ge=0)
    vertices: int = Field(default=64, ge=8)
    holes: int = Field(default=2, ge=0)
    hole_radius: tuple[float, float] = (0.04, 0.08)
    margin: float = Field(default=0.04, ge=0)

    @model_validator(mode="after")
    def _fits(self) -> DomainFamily:
        if not 3 <= self.corners[0] <= self.corners[1]:
            raise ValueError(f"corners must be a range lo <= hi with lo >= 3, got {self.corners}")
        if not 0 < self.hole_radius[0] <= self.hole_radius[1]:
            raise ValueError(f"hole_radius must be a range 0 < lo <= hi, got {self.hole_radius}")
        if 2 * self.harmonics * self.amplitude >= 1:
            raise ValueError("2 * harmonics * amplitude must be < 1 for a positive radius")
        reach = self.radius * max(1 + 2 * self.harmonics * self.amplitude, 1 + self.corner_amplitude)
        if reach + self.center_jitter >= 0.5:
            raise ValueError("the domains must fit in the unit square: lower radius, amplitudes or center_jitter")
        return self

    def sample(self, generator: torch.Generator | None = None) -> Domain:
        """One random domain; the same generator state gives the same domain."""
        u = lambda *shape: torch.rand(shape, generator=generator, dtype=torch.float64)
        center = 0.5 + self.center_jitter * (2 * u(2) - 1)
        if float(u(1)) < self.polygon_fraction:
            m = self.corners[0] + int(u(1) * (self.corners[1] - self.corners[0] + 1))
            theta = 2 * math.pi * (torch.arange(m, dtype=torch.float64) + 0.3 * (2 * u(m) - 1)) / m
            rho = self.radius * (1 + self.corner_amplitude * (2 * u(m) - 1))
            outer: Domain = Polygon(center + rho[:, None] * torch.stack([torch.cos(theta), torch.sin(theta)], 1))
        else:
            k = self.harmonics
            shape = self.amplitude * (2 * u(2 * k) - 1)
            outer = StarShaped(
                tuple(center.tolist()), self.radius, tuple(shape[:k].tolist()), tuple(shape[k:].tolist()), self.vertices
            )
        count = int(u(1) * (self.holes + 1))
        placed: list[tuple[torch.Tensor, float]] = []
        for _ in range(count):
            lo, hi = self.hole_radius
            r = lo + (hi - lo) * float(u(1))
            for _ in range(100):
                c = u(2)
                clear = float(outer.sdf(c)) < -(r + self.margin)
                if clear and all(float((c - c2).norm()) > r + r2 + self.margin for c2, r2 in placed):
                    placed.append((c, r))
                    break
        domain = outer
        for c, r in placed:
            domain = domain - Ball(tuple(c.tolist()), r)
        return domain
