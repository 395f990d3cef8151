r"""Initial states of the standard shallow-water test cases on the sphere (Williamson et al. 1992).

Each case gives, on latitudes :math:`\theta` and longitudes :math:`\lambda` (radians), the
free-surface height :math:`h` (metres), the velocity :math:`(u, v)` (m/s, eastward and
northward), the bottom topography :math:`h_s` and the Coriolis parameter :math:`f`, with
Earth's radius :data:`RADIUS`, rotation rate :data:`OMEGA` and gravity :data:`GRAVITY` as in
the paper.

* Case 2, global steady state nonlinear zonal geostrophic flow: an exact steady solution,
  with the flow (and the rotation axis) tilted by :math:`\alpha` from the poles.
* Case 5, zonal flow over an isolated mountain (a cone of height 2000 m): no analytic
  solution; mass and energy budgets and stability are what is checked.
* Case 6, Rossby-Haurwitz wave of wavenumber 4: an exact travelling solution of the
  non-divergent barotropic vorticity equation, with the height that makes the initial
  divergence tendency vanish; in shallow water it travels eastward at nearly the angular speed
  :math:`\nu = (R(3 + R)\omega - 2\Omega) / ((1 + R)(2 + R))`.

References
----------
D. L. Williamson, J. B. Drake, J. J. Hack, R. Jakob, P. N. Swarztrauber, A standard test set
for numerical approximations to the shallow water equations in spherical geometry,
J. Comput. Phys. 102 (1992) 211-224.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Earth's radius (m), rotation rate (1/s) and gravity (m/s^2) of the test set.
RADIUS = 6.37122e6
OMEGA = 7.292e-5
GRAVITY = 9.80616

#: One day in seconds.
DAY = 86400.0


@dataclass(frozen=True)
class InitialState:
    """A test case's fields on a grid, each ``(nlat, nlon)`` float64: free-surface height ``h``,
    velocity ``u`` and ``v``, topography ``h_s`` and Coriolis parameter ``f``; ``h_ref`` the
    reference depth of the case (metres)."""

    h: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    h_s: torch.Tensor
    f: torch.Tensor
    h_ref: float


def coriolis(lat: torch.Tensor, lon: torch.Tensor, alpha: float = 0.0) -> torch.Tensor:
    r""":math:`f = 2\Omega(-\cos\lambda\cos\theta\sin\alpha + \sin\theta\cos\alpha)`: the rotation
    axis tilted by :math:`\alpha` towards :math:`\lambda = \pi` (untilted for :math:`\alpha = 0`)."""
    return 2 * OMEGA * (-torch.cos(lon) * torch.cos(lat) * math.sin(alpha) + torch.sin(lat) * math.cos(alpha))


def steady_zonal_flow(lat: torch.Tensor, lon: torch.Tensor, alpha: float = 0.0) -> InitialState:
    r"""Case 2: :math:`u_0 = 2\pi a / 12\ \mathrm{days}`, :math:`g h_0 = 2.94 \cdot 10^4\ \mathrm{m^2/s^2}`,

    .. math::

        u &= u_0 (\cos\theta\cos\alpha + \cos\lambda\sin\theta\sin\alpha), \qquad
        v = -u_0 \sin\lambda\sin\alpha, \\
        g h &= g h_0 - (a\Omega u_0 + u_0^2 / 2)(-\cos\lambda\cos\theta\sin\alpha + \sin\theta\cos\alpha)^2.

    ``lat, lon``: ``(nlat, nlon)`` in radians.
    """
    u0, gh0 = 2 * math.pi * RADIUS / (12 * DAY), 2.94e4
    s = -torch.cos(lon) * torch.cos(lat) * math.sin(alpha) + torch.sin(lat) * math.cos(alpha)
    u = u0 * (torch.cos(lat) * math.cos(alpha) + torch.cos(lon) * torch.sin(lat) * math.sin(alpha))
    v = -u0 * torch.sin(lon) * math.sin(alpha)
    h = (gh0 - (RADIUS * OMEGA * u0 + u0**2 / 2) * s**2) / GRAVITY
    return InitialState(h, u, v, torch.zeros_like(h), coriolis(lat, lon, alpha), gh0 / GRAVITY)


def mountain_flow(lat: torch.Tensor, lon: torch.Tensor) -> InitialState:
    r"""Case 5: case 2's height and wind law with :math:`\alpha = 0`, :math:`h_0 = 5960` m,
    :math:`u_0 = 20` m/s, over the mountain :math:`h_s = 2000\,(1 - r / R)` m,
    :math:`R = \pi / 9`, :math:`r^2 = \min(R^2, (\lambda - 3\pi/2)^2 + (\theta - \pi/6)^2)`.

    ``h`` is the free-surface height (the fluid depth is ``h - h_s``).
    """
    h0, u0 = 5960.0, 20.0
    u = u0 * torch.cos(lat)
    h = h0 - (RADIUS * OMEGA * u0 + u0**2 / 2) * torch.sin(lat) ** 2 / GRAVITY
    big_r = math.pi / 9
    r = torch.sqrt(torch.clamp((lon - 1.5 * math.pi) ** 2 + (lat - math.pi / 6) ** 2, max=big_r**2))
    h_s = 2000.0 * (1 - r / big_r)
    return InitialState(h, u, torch.zeros_like(u), h_s, coriolis(lat, lon), h0)


#: Case 6's wavenumber :math:`R`, angular velocities :math:`\omega = K` (1/s) and :math:`h_0` (m).
ROSSBY_HAURWITZ = {"R": 4, "omega": 7.848e-6, "K": 7.848e-6, "h0": 8000.0}


def rossby_haurwitz_speed() -> float:
    r"""Case 6's angular phase speed :math:`\nu = (R(3 + R)\omega - 2\Omega) / ((1 + R)(2 + R))`
    (rad/s, eastward) in the non-divergent barotropic vorticity equation."""
    r, w = ROSSBY_HAURWITZ["R"], ROSSBY_HAURWITZ["omega"]
    return (r * (3 + r) * w - 2 * OMEGA) / ((1 + r) * (2 + r))


def rossby_haurwitz_wave(lat: torch.Tensor, lon: torch.Tensor) -> InitialState:
    r"""Case 6 (:data:`ROSSBY_HAURWITZ`), with :math:`c = \cos\theta`:

    .. math::

        u &= a\omega c + a K c^{R-1}(R \sin^2\theta - c^2)\cos R\lambda, \qquad
        v = -a K R c^{R-1} \sin\theta \sin R\lambda, \\
        g h &= g h_0 + a^2 A + a^2 B \cos R\lambda + a^2 C \cos 2R\lambda, \\
        A &= \tfrac{\omega}{2}(2\Omega + \omega) c^2
            + \tfrac14 K^2 c^{2R}\left((R + 1) c^2 + 2R^2 - R - 2 - 2R^2 c^{-2}\right), \\
        B &= \frac{2(\Omega + \omega) K}{(R + 1)(R + 2)} c^R \left(R^2 + 2R + 2 - (R + 1)^2 c^2\right), \qquad
        C = \tfrac14 K^2 c^{2R} \left((R + 1) c^2 - R - 2\right).
    """
    r, w, k, h0 = (ROSSBY_HAURWITZ[key] for key in ("R", "omega", "K", "h0"))
    c, s = torch.cos(lat), torch.sin(lat)
    u = RADIUS * w * c + RADIUS * k * c ** (r - 1) * (r * s**2 - c**2) * torch.cos(r * lon)
    v = -RADIUS * k * r * c ** (r - 1) * s * torch.sin(r * lon)
    a = w / 2 * (2 * OMEGA + w) * c**2 + k**2 / 4 * (
        (r + 1) * c ** (2 * r + 2) + (2 * r**2 - r - 2) * c ** (2 * r) - 2 * r**2 * c ** (2 * r - 2)
    )
    b = 2 * (OMEGA + w) * k / ((r + 1) * (r + 2)) * c**r * (r**2 + 2 * r + 2 - (r + 1) ** 2 * c**2)
    cc = k**2 / 4 * c ** (2 * r) * ((r + 1) * c**2 - r - 2)
    h = h0 + RADIUS**2 * (a + b * torch.cos(r * lon) + cc * torch.cos(2 * r * lon)) / GRAVITY
    return InitialState(h, u, v, torch.zeros_like(h), coriolis(lat, lon), h0)


#: The test cases by name (``ShallowWater(case=...)``); case 2 also takes ``alpha``.
CASES = {"williamson2": steady_zonal_flow, "williamson5": mountain_flow, "williamson6": rossby_haurwitz_wave}
