"""Discrete derivatives shared by solvers, physics losses and metrics.

Every function acts on the trailing ``grid.ndim`` axes of a tensor of shape
``(..., *grid.shape)`` and is differentiable in torch.
"""

from __future__ import annotations

import torch

from oplearn.grids import Grid


def gradient(u: torch.Tensor, grid: Grid) -> torch.Tensor:
    """The gradient of ``u``, stacked on a new axis before the spatial axes.

    Periodic grids use spectral differentiation (exact for band-limited fields); bounded
    grids use second-order central differences inside and second-order one-sided
    differences at the boundary.

    Shapes: ``(..., *grid.shape) -> (..., grid.ndim, *grid.shape)``.
    """
    if tuple(u.shape[-grid.ndim:]) != grid.shape:
        raise ValueError(f"field of shape {tuple(u.shape)} does not end with the grid shape {grid.shape}")
    dims = tuple(range(u.ndim - grid.ndim, u.ndim))
    if grid.periodic:
        u_hat = torch.fft.fftn(u, dim=dims)
        parts = []
        for d, k in zip(dims, grid.wavenumbers(device=u.device)):
            n = u.shape[d]
            k = k.clone()
            if n % 2 == 0:
                k[n // 2] = 0.0  # the Nyquist mode has no well-defined derivative
            shape = [1] * u.ndim
            shape[d] = n
            ik = (1j * k).to(u_hat.dtype).reshape(shape)
            parts.append(torch.fft.ifftn(ik * u_hat, dim=dims).real.to(u.dtype))
        return torch.stack(parts, dim=u.ndim - grid.ndim)
    parts = torch.gradient(u, spacing=list(grid.spacing), dim=list(dims), edge_order=2)
    return torch.stack(parts, dim=u.ndim - grid.ndim)
