r"""Fourier pseudo-spectral operators on periodic grids.

A field ``u`` on a periodic :class:`~oplearn.grids.Grid` is represented by its real FFT
coefficients :math:`\hat u_k` over the trailing ``grid.ndim`` axes (``torch.fft.rfftn``
layout: the last axis holds only the non-negative wavenumbers). Derivatives are
multiplications by symbols, :math:`\partial_d \to i k_d` and :math:`\Delta \to -|k|^2`,
with the angular wavenumbers :math:`k_d = 2 \pi j_d / L_d` of
:meth:`oplearn.grids.Grid.wavenumbers`.

Quadratic products are dealiased by the 2/3 rule: after a product is transformed, every
coefficient with :math:`3 |j_d| \ge n_d` in some dimension is zeroed, so a product of two
fields that are themselves truncated carries no aliasing error (Orszag 1971).
"""

from __future__ import annotations

import torch

from oplearn.grids import Grid


class Fourier:
    r"""Real FFT, derivative symbols and 2/3 dealiasing on a periodic grid.

    Parameters
    ----------
    grid : Grid
        A periodic grid.
    device : torch.device, optional
        Where the symbols live (that of the fields they act on).
    dealias : bool
        Whether :meth:`dealias` applies the 2/3 rule; ``False`` makes it the identity
        (residuals of arbitrary fields, which must not be filtered).

    Attributes
    ----------
    k : list of Tensor
        Angular wavenumbers of each dimension, broadcastable to the spectral shape.
    ik : list of Tensor
        First-derivative symbols :math:`i k_d`, zero at the Nyquist wavenumber of an even
        ``n_d`` (the derivative of that mode is not a real field).
    k2 : Tensor
        :math:`|k|^2`, the negative Laplacian symbol, Nyquist modes included.
    mask : Tensor
        Boolean 2/3-rule mask (all ``True`` when ``dealias=False``).

    Shapes
    ------
    physical ``(..., *grid.shape)``; spectral ``(..., *spectral_shape)`` with
    ``spectral_shape = (n_1, ..., n_{d-1}, n_d // 2 + 1)``.
    """

    def __init__(self, grid: Grid, device: torch.device | str | None = None, dealias: bool = True) -> None:
        if not grid.periodic:
            raise ValueError(f"Fourier operators need a periodic grid, got shape {grid.shape} with periodic=False")
        self.grid = grid
        self.spectral_shape = (*grid.shape[:-1], grid.shape[-1] // 2 + 1)
        self.dims = tuple(range(-grid.ndim, 0))
        self.k, self.ik = [], []
        mask = torch.ones(self.spectral_shape, dtype=torch.bool, device=device)
        for d, (k, n, length) in enumerate(zip(grid.wavenumbers(device), grid.shape, grid.lengths)):
            if d == grid.ndim - 1:
                k = k[: n // 2 + 1].abs()  # rfft keeps j = 0..n//2; fftfreq gives j = n/2 a minus sign
            j = torch.round(k * length / (2 * torch.pi))
            shape = [1] * grid.ndim
            shape[d] = len(k)
            self.k.append(k.reshape(shape))
            self.ik.append(torch.where(2 * j.abs() == n, 0.0, k).mul(1j).reshape(shape))
            if dealias:
                mask = mask & (3 * j.abs() < n).reshape(shape)
        self.k2 = sum(k**2 for k in self.k)
        self.mask = mask

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        """Real FFT over the grid axes: ``(..., *grid.shape) -> (..., *spectral_shape)``."""
        return torch.fft.rfftn(u, dim=self.dims)

    def inverse(self, u_hat: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`forward`: ``(..., *spectral_shape) -> (..., *grid.shape)``."""
        return torch.fft.irfftn(u_hat, s=self.grid.shape, dim=self.dims)

    def dealias(self, u_hat: torch.Tensor) -> torch.Tensor:
        """Zero the coefficients outside the 2/3-rule band (identity if ``dealias=False``)."""
        return u_hat * self.mask

    def inverse_laplacian(self, u_hat: torch.Tensor) -> torch.Tensor:
        r"""The zero-mean :math:`\psi` with :math:`\Delta \psi = u - \bar u`, in Fourier space."""
        return -u_hat / torch.where(self.k2 == 0, 1.0, self.k2) * (self.k2 != 0)
