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
    if tuple(u.shape[-grid.ndim :]) != grid.shape:
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


def face_average(a: torch.Tensor, axis: int) -> torch.Tensor:
    """Coefficients on the faces between neighbouring nodes, ``a_{i+1/2} = (a_i + a_{i+1}) / 2``.

    The one face rule shared by :func:`divergence_form` and the elliptic solver, so the
    residual and the solver discretise the same operator.

    Shapes: ``(..., n, ...) -> (..., n - 1, ...)`` along ``axis``.
    """
    n = a.shape[axis]
    return 0.5 * (a.narrow(axis, 1, n - 1) + a.narrow(axis, 0, n - 1))


def divergence_form(u: torch.Tensor, a: torch.Tensor, grid: Grid) -> torch.Tensor:
    r"""The conservative finite-difference :math:`\nabla \cdot (a \nabla u)` at interior nodes.

    .. math::

        \sum_d \frac{a_{i+1/2}(u_{i+1} - u_i) - a_{i-1/2}(u_i - u_{i-1})}{h_d^2},
        \qquad a_{i \pm 1/2} = \frac{a_i + a_{i \pm 1}}{2},

    the 5-point stencil in 2D (``2 d + 1`` points in ``d`` dimensions), second-order
    accurate for smooth ``a`` and ``u``. Only bounded (non-periodic) grids.

    Shapes: ``u (..., *grid.shape)``, ``a (..., *grid.shape)`` with broadcasting leading axes
    ``-> (..., n_1 - 2, ..., n_d - 2)``.
    """
    if grid.periodic:
        raise ValueError("divergence_form acts on the interior of a bounded grid; got a periodic grid")
    for name, t in (("u", u), ("a", a)):
        if tuple(t.shape[t.ndim - grid.ndim :]) != grid.shape:
            raise ValueError(f"{name} of shape {tuple(t.shape)} does not end with the grid shape {grid.shape}")
    if any(n < 3 for n in grid.shape):
        raise ValueError(f"grid shape {grid.shape} has no interior nodes")
    interior = [slice(1, -1)] * grid.ndim
    total = 0
    for d, h in enumerate(grid.spacing):
        axis_u, axis_a = u.ndim - grid.ndim + d, a.ndim - grid.ndim + d
        flux = face_average(a, axis_a) * torch.diff(u, dim=axis_u)  # (..., n_d - 1 faces, ...)
        rest = interior.copy()
        rest[d] = slice(None)
        flux = flux[(Ellipsis, *rest)]
        total = total + torch.diff(flux, dim=-grid.ndim + d) / h**2
    return total


def time_derivative(frames: torch.Tensor, times: torch.Tensor, dim: int = 1) -> torch.Tensor:
    r"""The time derivative of a trajectory stored at (possibly unevenly spaced) ``times``.

    Second-order finite differences: the three-point central formula for uneven spacing
    at interior frames, the three-point one-sided formulas at the first and last frame
    (``torch.gradient`` with ``edge_order=2``). The error is :math:`O(\Delta t^2)` in the
    frame spacing, so residuals built on it measure the stored frames, not the solver.

    Shapes: ``frames (..., len(times), ...)`` with the time axis at ``dim`` -> the same.
    """
    times = torch.as_tensor(times, dtype=frames.dtype, device=frames.device)
    if times.ndim != 1 or len(times) != frames.shape[dim]:
        raise ValueError(
            f"times of shape {tuple(times.shape)} do not match the {frames.shape[dim]} frames on axis {dim}"
        )
    if len(times) < 3:
        raise ValueError(f"a second-order time derivative needs at least 3 frames, got {len(times)}")
    if not (torch.diff(times) > 0).all():
        raise ValueError("frame times must be strictly increasing")
    (derivative,) = torch.gradient(frames, spacing=(times,), dim=dim, edge_order=2)
    return derivative
