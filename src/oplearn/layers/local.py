"""Localized kernels for neural operators: differential and local-integral convolutions.

Both layers are convolutions whose weights are rebuilt from the grid spacing of the input,
so that they approximate one continuous operator at every resolution:

* :class:`DifferentialConv`: a zero-sum ``3^d`` stencil divided by the grid spacing, which
  converges to a first-order differential operator as the grid is refined;
* :class:`LocalIntegralConv`: a kernel integral over a ball of fixed *physical* radius, the
  kernel evaluated at the physical offsets of the neighbours, with quadrature weight
  :math:`h^d` (so the stencil grows with the resolution).

Grid convention as in :mod:`oplearn.grids`: ``n`` nodes on a side of length ``L`` have
spacing ``h = L / n`` when periodic and ``h = L / (n - 1)`` otherwise.

References
----------
Liu-Schiaffini et al., Neural Operators with Localized Integral and Differential Kernels,
ICML 2024.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


def grid_spacing(spatial: Sequence[int], domain_length: float | Sequence[float], periodic: bool) -> tuple[float, ...]:
    """Spacing per axis of a grid of ``spatial`` nodes on sides ``domain_length`` (see module docstring)."""
    lengths = _per_axis(domain_length, len(spatial))
    if not periodic and any(n < 2 for n in spatial):
        raise ValueError(f"a bounded grid needs at least 2 nodes per axis, got {tuple(spatial)}")
    return tuple(length / (n if periodic else n - 1) for length, n in zip(lengths, spatial))


def _per_axis(value: float | Sequence[float], n_dim: int) -> tuple[float, ...]:
    values = (float(value),) * n_dim if isinstance(value, (int, float)) else tuple(float(v) for v in value)
    if len(values) != n_dim or any(v <= 0 for v in values):
        raise ValueError(f"domain_length must be positive, one per each of {n_dim} axes, got {value}")
    return values


def _check_input(name: str, x: torch.Tensor, in_channels: int, n_dim: int) -> None:
    if x.ndim != n_dim + 2 or x.shape[1] != in_channels:
        raise ValueError(f"{name} expects (batch, {in_channels}, {', '.join(['n'] * n_dim)}), got {tuple(x.shape)}")


def _pad(x: torch.Tensor, halo: Sequence[int], mode: str) -> torch.Tensor:
    """Pad the last ``len(halo)`` axes by ``halo[j]`` nodes on both sides."""
    return F.pad(x, [p for m in reversed(halo) for p in (m, m)], mode=mode)


class DifferentialConv(nn.Module):
    r"""A learned finite-difference stencil scaled by the inverse grid spacing.

    .. math::

        y_o(x) = \frac{h_0}{h} \sum_i \sum_{s \in \{-1, 0, 1\}^d} \Big(w_{oi}(s) - \bar w_{oi}\Big)
        \, u_i(x + s \odot h), \qquad \bar w_{oi} = 3^{-d} \sum_s w_{oi}(s).

    Each stencil sums to zero, so for a smooth :math:`u` the sum is :math:`O(h)` and the layer
    converges, as :math:`h \to 0`, to the first-order differential operator
    :math:`y_o = h_0 \sum_i c_{oi} \cdot \nabla u_i` with :math:`c_{oi} = \sum_s (w_{oi}(s) - \bar w_{oi}) \, s`
    (error :math:`O(h)`, or :math:`O(h^2)` for antisymmetric stencils). The scale :math:`h`
    is the geometric mean of the spacings of the axes (the spacing itself on square grids).

    The reference spacing :math:`h_0` (default 1) only rescales the parameters: the stencil is
    measured in units of :math:`h_0`, so on a grid of spacing :math:`h_0` the layer is an
    ordinary zero-sum ``3^d`` convolution with the usual initialisation and optimiser step
    sizes. With :math:`h_0 = 1` a unit jump in :math:`u` gives an output of order
    :math:`1 / h` at initialisation, and each optimiser step moves the output by
    :math:`\mathrm{lr} / h`, which on fields with discontinuities swamps the other branches
    of a network.

    Off the grid the field is extended periodically (``periodic=True``) or by replicating the
    boundary value. Replicating keeps a zero-sum stencil exact on constants and its output
    bounded by :math:`|\nabla u|` at the boundary, where zero padding would add a spurious
    jump of size :math:`u / h` that grows without bound under refinement (the boundary rows
    are then a one-sided difference, consistent to :math:`O(1)` only, as in the reference).

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    n_dim : int
        Spatial dimensions (1 to 3).
    periodic : bool
        Grid convention and boundary extension.
    domain_length : float or sequence of float
        Side length(s) :math:`L` of the domain, for the spacing ``L / n`` (periodic) or
        ``L / (n - 1)`` (bounded).
    reference_spacing : float
        The unit :math:`h_0` of the stencil, in the units of ``domain_length``.

    Shapes
    ------
    ``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_dim: int = 2,
        periodic: bool = True,
        domain_length: float | Sequence[float] = 1.0,
        reference_spacing: float = 1.0,
    ) -> None:
        super().__init__()
        if n_dim not in _CONV:
            raise ValueError(f"DifferentialConv supports 1 to 3 spatial dimensions, got n_dim={n_dim}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_dim = n_dim
        self.periodic = bool(periodic)
        self.domain_length = _per_axis(domain_length, n_dim)
        if reference_spacing <= 0:
            raise ValueError(f"reference_spacing must be positive, got {reference_spacing}")
        self.reference_spacing = float(reference_spacing)
        bound = 1.0 / math.sqrt(in_channels * 3**n_dim)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *(3,) * n_dim).uniform_(-bound, bound))

    def extra_repr(self) -> str:
        geometry = f"n_dim={self.n_dim}, periodic={self.periodic}, reference_spacing={self.reference_spacing:g}"
        return f"{self.in_channels}, {self.out_channels}, {geometry}"

    def stencil(self) -> torch.Tensor:
        """The zero-sum stencils :math:`w - \\bar w`, shape ``(out, in, 3, ..., 3)``."""
        dims = tuple(range(2, 2 + self.n_dim))
        return self.weight - self.weight.mean(dim=dims, keepdim=True)

    def forward(self, x: torch.Tensor, spacing: Sequence[float] | None = None) -> torch.Tensor:
        """``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``.

        ``spacing`` overrides the grid spacing computed from the input size, for inputs that
        were padded beyond the physical domain (e.g. inside :class:`~oplearn.models.local_fno.LocalFNO`).
        """
        _check_input("DifferentialConv", x, self.in_channels, self.n_dim)
        if spacing is None:
            spacing = grid_spacing(x.shape[2:], self.domain_length, self.periodic)
        h = math.prod(spacing) ** (1.0 / self.n_dim)
        padded = _pad(x, (1,) * self.n_dim, "circular" if self.periodic else "replicate")
        return _CONV[self.n_dim](padded, self.stencil().to(x.dtype)) * (self.reference_spacing / h)


class BumpKernel(nn.Module):
    r"""A kernel on the ball of radius :math:`r`: learned combination of radial bumps times
    the constant and the linear functions of the offset.

    .. math::

        k_{oi}(z) = \sum_{b=0}^{R-1} \phi_b(|z|) \Big(c_{oib0} + \sum_{j=1}^d c_{oibj} \frac{z_j}{r}\Big),
        \qquad \phi_b(\rho) = \cos^2\Big(\frac{\pi}{2}\Big(\frac{R \rho}{r} - b\Big)\Big)
        \ \text{for} \ \Big|\frac{R \rho}{r} - b\Big| < 1, \ 0 \ \text{otherwise}.

    The bumps sit on the radial nodes :math:`b r / R`, sum to one on :math:`[0, (R-1) r / R]`
    and all vanish with their derivative at :math:`|z| \ge r`. Unlike piecewise-linear hats
    they are :math:`C^1` in :math:`z` (also at the origin, where :math:`\phi_0` is even in
    :math:`\rho`), which keeps the Riemann sum of the layer free of the erratic lattice
    errors of kinks on circles. The linear terms break isotropy, so the kernel can tell
    upwind from downwind. Coefficients are drawn uniformly from
    :math:`\pm 1 / (\sqrt{\text{in}} \, |B_r|)`, so the integral of :math:`k` over the ball
    is of order one.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    n_dim : int
        Dimension of the offsets :math:`z`.
    radius : float
        Support radius :math:`r`, in physical units.
    n_radial : int
        Number of radial bumps :math:`R`.

    Shapes
    ------
    ``offsets: (*stencil, n_dim) -> (out_channels, in_channels, *stencil)``
    """

    def __init__(self, in_channels: int, out_channels: int, n_dim: int, radius: float, n_radial: int = 4) -> None:
        super().__init__()
        if radius <= 0 or n_radial < 1:
            raise ValueError(f"BumpKernel needs radius > 0 and n_radial >= 1, got {radius}, {n_radial}")
        self.n_dim = n_dim
        self.radius = float(radius)
        self.n_radial = int(n_radial)
        ball = math.pi ** (n_dim / 2) / math.gamma(n_dim / 2 + 1) * radius**n_dim
        bound = 1.0 / (math.sqrt(in_channels) * ball)
        shape = (out_channels, in_channels, n_radial * (n_dim + 1))
        self.coefficients = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))

    def basis(self, offsets: torch.Tensor) -> torch.Tensor:
        """The ``R (d + 1)`` basis functions at ``offsets: (*stencil, d) -> (*stencil, R (d + 1))``."""
        rho = offsets.norm(dim=-1, keepdim=True)
        nodes = torch.arange(self.n_radial, dtype=offsets.dtype, device=offsets.device)
        t = (rho * (self.n_radial / self.radius) - nodes).abs()
        bumps = torch.where(t < 1, torch.cos(0.5 * math.pi * t.clamp(max=1)) ** 2, 0.0)  # (*stencil, R)
        linear = torch.cat([torch.ones_like(rho), offsets / self.radius], dim=-1)  # (*stencil, d + 1)
        return (bumps[..., :, None] * linear[..., None, :]).flatten(-2)

    def forward(self, offsets: torch.Tensor) -> torch.Tensor:
        """``offsets: (*stencil, n_dim) -> (out_channels, in_channels, *stencil)``."""
        phi = self.basis(offsets)
        return torch.einsum("oib,...b->oi...", self.coefficients.to(phi.dtype), phi)


class LocalIntegralConv(nn.Module):
    r"""Discrete-continuous convolution with a kernel of fixed physical radius.

    .. math::

        y_o(x) = \int_{|z| < r} \sum_i k_{oi}(z) \, u_i(x + z) \, dz
        \;\approx\; h^d \sum_{s \in \mathbb{Z}^d,\ |s \odot h| < r} \sum_i k_{oi}(s \odot h) \, u_i(x + s \odot h),

    a Riemann sum with weight :math:`h^d = \prod_j h_j` over the grid neighbours within the
    ball. At each call the kernel tensor is built from the physical offsets of the current
    grid (``2 m_j + 1`` taps per axis, :math:`m_j = \lfloor r / h_j \rfloor`) and applied as
    one convolution, so refining the grid adds neighbours while the operator stays the same.

    Off the grid the field is extended periodically (``periodic=True``) or by zeros, which
    for an integral operator means integrating over the part of the ball inside the domain.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    n_dim : int
        Spatial dimensions (1 to 3).
    radius : float
        Support radius :math:`r` in the units of ``domain_length``.
    periodic : bool
        Grid convention and boundary extension.
    domain_length : float or sequence of float
        Side length(s) of the domain.
    kernel : nn.Module or None
        Maps offsets ``(*stencil, n_dim)`` to kernel values ``(out, in, *stencil)``; it must
        vanish outside the ball. Default: a learned :class:`BumpKernel` with ``n_radial`` bumps.
    n_radial : int
        Radial bumps of the default kernel.

    Shapes
    ------
    ``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``; in the periodic
    case each spatial size must exceed ``m_j``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_dim: int = 2,
        radius: float = 0.1,
        periodic: bool = True,
        domain_length: float | Sequence[float] = 1.0,
        kernel: nn.Module | None = None,
        n_radial: int = 4,
    ) -> None:
        super().__init__()
        if n_dim not in _CONV:
            raise ValueError(f"LocalIntegralConv supports 1 to 3 spatial dimensions, got n_dim={n_dim}")
        if radius <= 0:
            raise ValueError(f"radius must be positive, got {radius}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.n_dim = n_dim
        self.radius = float(radius)
        self.periodic = bool(periodic)
        self.domain_length = _per_axis(domain_length, n_dim)
        self.kernel = BumpKernel(in_channels, out_channels, n_dim, radius, n_radial) if kernel is None else kernel

    def extra_repr(self) -> str:
        geometry = f"n_dim={self.n_dim}, radius={self.radius}, periodic={self.periodic}"
        return f"{self.in_channels}, {self.out_channels}, {geometry}"

    def halo(self, spacing: Sequence[float]) -> tuple[int, ...]:
        """Neighbours :math:`m_j = \\lfloor r / h_j \\rfloor` per side and axis."""
        return tuple(int(math.floor(self.radius / h * (1 + 1e-9))) for h in spacing)

    def offsets(
        self, spacing: Sequence[float], dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """Physical offsets of the stencil taps, ``(2 m_1 + 1, ..., 2 m_d + 1, d)``."""
        axes = [torch.arange(-m, m + 1, dtype=dtype, device=device) * h for m, h in zip(self.halo(spacing), spacing)]
        return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)

    def forward(self, x: torch.Tensor, spacing: Sequence[float] | None = None) -> torch.Tensor:
        """``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``.

        ``spacing`` overrides the grid spacing computed from the input size, for inputs that
        were padded beyond the physical domain.
        """
        _check_input("LocalIntegralConv", x, self.in_channels, self.n_dim)
        spatial = tuple(x.shape[2:])
        if spacing is None:
            spacing = grid_spacing(spatial, self.domain_length, self.periodic)
        halo = self.halo(spacing)
        if self.periodic and any(m >= n for m, n in zip(halo, spatial)):
            raise ValueError(f"radius {self.radius} spans {halo} neighbours, too many for the periodic grid {spatial}")
        dtype = torch.promote_types(x.dtype, torch.float32)
        weight = self.kernel(self.offsets(spacing, dtype, x.device)) * math.prod(spacing)  # k(z) h^d
        padded = _pad(x, halo, "circular" if self.periodic else "constant")
        return _CONV[self.n_dim](padded, weight.to(x.dtype))
