"""Gaussian random fields with covariance ``sigma^2 (-Laplacian + tau^2)^(-alpha)`` on a box.

A field is a finite expansion in the eigenfunctions of the Laplacian on the grid's box,
with a fixed number of modes per dimension. The random coefficients depend only on the
generator and on ``modes``, never on the grid, and the field is evaluated at the grid nodes
by separable matrix products with per-dimension basis matrices. The same seed therefore
gives the same function at every resolution: a coarse sample equals the fine sample at
the shared nodes.
"""

from __future__ import annotations

import math

import torch

from oplearn.grids import Grid

BOUNDARIES = ("neumann", "periodic")


class GaussianRandomField:
    r"""A Gaussian random field with covariance :math:`\sigma^2 (-\Delta + \tau^2 I)^{-\alpha}`.

    On the box :math:`\prod_i [lo_i, lo_i + L_i]`, with ``boundary="neumann"``,

    .. math::

        u(x) = \sum_{k \in \{0..M\}^d,\ k \neq 0} s_k \xi_k \prod_i \cos(\pi k_i (x_i - lo_i) / L_i),
        \qquad \lambda_k = \pi^2 \sum_i (k_i / L_i)^2,

    and with ``boundary="periodic"``,

    .. math::

        u(x) = \mathrm{Re} \sum_{k \in \mathbb{Z}^d,\ |k_i| \le M,\ k \neq 0}
               s_k (a_k + i b_k) \exp(2 \pi i \sum_i k_i (x_i - lo_i) / L_i),
        \qquad \lambda_k = 4 \pi^2 \sum_i (k_i / L_i)^2,

    where :math:`s_k = \sigma (\lambda_k + \tau^2)^{-\alpha/2}`, :math:`M` is ``modes`` and
    :math:`\xi_k, a_k, b_k` are iid standard normal. The mean mode is zero. The
    point variance is :math:`\sum_k s_k^2 \prod_i \cos^2(\cdot)` (Neumann) and
    :math:`\sum_k s_k^2` (periodic, stationary).

    The default ``sigma = tau^(alpha - 1)`` is the Darcy coefficient field of the FNO
    papers (Neumann basis, eigen-coefficients
    :math:`\tau^{\alpha-1}(\pi^2|k|^2 + \tau^2)^{-\alpha/2}` on the unit square).
    The periodic field has the law of the FNO Navier-Stokes initial vorticity (up to the
    mode cut-off) when ``sigma = sqrt(2) * tau ** ((2 * alpha - d) / 2)``; for their
    ``alpha = 2.5, tau = 7`` in 2D pass ``sigma=math.sqrt(2) * 7 ** 1.5``.

    Parameters
    ----------
    alpha : float
        Smoothness exponent, ``> 0``; samples have about ``alpha - d/2`` derivatives.
    tau : float
        Inverse length scale, ``> 0``.
    sigma : float, optional
        Amplitude; defaults to ``tau ** (alpha - 1)``.
    boundary : {"neumann", "periodic"}
        The eigenbasis: cosines (zero normal derivative on the box) or complex exponentials.
    modes : int
        The largest wavenumber index per dimension, ``M`` above. It fixes the random
        coefficients independently of the grid; grids with fewer than about ``2 M`` nodes per
        dimension alias the highest modes (harmless: they are evaluated exactly at the nodes).

    Shapes
    ------
    ``sample(n, grid)``: ``(n, *grid.shape)``.
    """

    def __init__(
        self, alpha: float, tau: float, sigma: float | None = None, boundary: str = "neumann", modes: int = 64
    ) -> None:
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        if sigma is not None and not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
        if int(modes) != modes or modes < 1:
            raise ValueError(f"modes must be a positive integer, got {modes}")
        self.alpha = float(alpha)
        self.tau = float(tau)
        self.sigma = float(tau ** (alpha - 1) if sigma is None else sigma)
        self.boundary = boundary
        self.modes = int(modes)

    def _wavenumbers(self) -> torch.Tensor:
        """The integer wavenumber indices of one dimension, float64."""
        if self.boundary == "neumann":
            return torch.arange(self.modes + 1, dtype=torch.float64)
        return torch.arange(-self.modes, self.modes + 1, dtype=torch.float64)

    def scales(self, lengths: tuple[float, ...]) -> torch.Tensor:
        """The coefficient scales ``s_k`` of the box with side ``lengths``, zero at ``k = 0``.

        Shapes: ``(K,) * len(lengths)`` with ``K = modes + 1`` (Neumann) or ``2 modes + 1``
        (periodic), wavenumbers in increasing order.
        """
        k = self._wavenumbers()
        factor = math.pi if self.boundary == "neumann" else 2 * math.pi
        axes = [(factor * k / length) ** 2 for length in lengths]
        eigenvalues = sum(torch.meshgrid(*axes, indexing="ij"))
        s = self.sigma * (eigenvalues + self.tau**2) ** (-self.alpha / 2)
        s[(int((k == 0).nonzero()),) * len(lengths)] = 0.0
        return s

    def _basis(self, grid: Grid, device: torch.device | str | None) -> list[torch.Tensor]:
        """Per-dimension basis matrices ``(n_d, K)`` evaluated at the grid nodes."""
        k = self._wavenumbers().to(device)
        matrices = []
        for x, (lo, _), length in zip(grid.axes(torch.float64, device), grid.domain, grid.lengths):
            phase = torch.outer(x - lo, k) / length
            if self.boundary == "neumann":
                matrices.append(torch.cos(math.pi * phase))
            else:
                matrices.append(torch.exp(2j * math.pi * phase))
        return matrices

    def covariance(self, grid: Grid) -> torch.Tensor:
        r"""The exact covariance of the field's values at the nodes of ``grid``, float64.

        :math:`\mathrm{Cov}[u(x_i), u(x_j)] = \sum_k s_k^2\, \phi_k(x_i) \phi_k(x_j)` (real and
        imaginary parts of the periodic basis each carry :math:`s_k^2`).

        Shapes: ``-> (N, N)`` with ``N = prod(grid.shape)``, nodes in C order.
        """
        s2 = self.scales(grid.lengths).square()
        basis = self._basis(grid, None)
        # phi[i, k]: the product basis at node i (C order) for multi-index k (C order).
        phi = basis[0]
        for b in basis[1:]:
            phi = (phi[:, None, :, None] * b[None, :, None, :]).reshape(phi.shape[0] * b.shape[0], -1)
        weighted = phi * s2.flatten().to(phi.dtype)
        return (weighted @ phi.conj().T).real

    def sample(
        self,
        n: int,
        grid: Grid,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float64,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Draw ``n`` fields and evaluate them at the nodes of ``grid``.

        The coefficients are drawn one sample after another, in float64, on the generator's
        device (the CPU when no generator is given), so the first ``m`` of ``n`` samples
        equal ``m`` samples drawn from the same generator state, at any resolution, dtype
        and output device.

        Shapes: ``-> (n, *grid.shape)``.
        """
        field = self._coefficients(self.draw(n, grid.ndim, generator).to(device), grid.lengths)
        for basis in self._basis(grid, device):
            # Contract the leading mode axis with this dimension's basis; the node axis is
            # appended last, so after ndim steps the axes are (n, n_1, ..., n_d).
            field = torch.tensordot(field, basis.to(field.dtype), dims=([1], [1]))
        return field.real.to(dtype)

    def draw(self, n: int, ndim: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The standard normal coefficients of ``n`` fields (what :meth:`sample` draws), one
        sample after another on the generator's device, float64.

        Shapes: ``-> (n, parts, K, ..., K)`` with ``ndim`` axes ``K`` and ``parts`` 1 (Neumann)
        or 2 (periodic: real and imaginary parts).
        """
        if int(n) != n or n < 0:
            raise ValueError(f"number of samples must be a non-negative integer, got {n}")
        draw_device = generator.device if generator is not None else torch.device("cpu")
        size = (len(self._wavenumbers()),) * ndim
        parts = 1 if self.boundary == "neumann" else 2
        draws = [
            torch.randn((parts, *size), generator=generator, dtype=torch.float64, device=draw_device)
            for _ in range(int(n))
        ]
        return torch.stack(draws) if draws else torch.zeros((0, parts, *size), dtype=torch.float64)

    def _coefficients(self, xi: torch.Tensor, lengths: tuple[float, ...]) -> torch.Tensor:
        """Scaled (complex for periodic) coefficients ``s_k xi_k`` ``(n, K, ..., K)``."""
        s = self.scales(lengths).to(xi.device)
        return s * xi[:, 0] if self.boundary == "neumann" else s * torch.complex(xi[:, 0], xi[:, 1])

    def at_points(
        self, xi: torch.Tensor, points: torch.Tensor, domain: tuple[tuple[float, float], ...]
    ) -> torch.Tensor:
        """The fields of coefficients ``xi`` (from :meth:`draw`) at arbitrary ``points`` of the box
        ``domain``: at the nodes of a grid of that box, the values of :meth:`sample`.

        Shapes: ``xi (n, parts, K, ..., K)``, ``points (P, d) -> (n, P)`` in the points' dtype.
        """
        k = self._wavenumbers().to(points.device)
        lengths = tuple(hi - lo for lo, hi in domain)
        field = self._coefficients(xi.to(points.device), lengths)
        for d, ((lo, _), length) in enumerate(zip(domain, lengths)):
            phase = torch.outer(points[:, d].to(torch.float64) - lo, k) / length
            basis = torch.cos(math.pi * phase) if self.boundary == "neumann" else torch.exp(2j * math.pi * phase)
            basis = basis.to(field.dtype)
            # first axis: (n, K, ...) -> (n, P, ...); later axes: sum the next mode axis point by point
            field = (
                torch.einsum("nk...,pk->np...", field, basis)
                if d == 0
                else torch.einsum("npk...,pk->np...", field, basis)
            )
        return field.real.to(points.dtype)
