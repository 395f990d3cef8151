r"""The 2D diffusion-reaction benchmark of PDEBench: a FitzHugh-Nagumo activator-inhibitor pair.

.. math::

    \partial_t u = D_u \Delta u + u - u^3 - k - v, \qquad
    \partial_t v = D_v \Delta v + u - v \qquad \text{on } [-1, 1]^2 \times (0, T],

with no-flux boundaries :math:`\partial_n u = \partial_n v = 0` and independent standard normal
initial values in every cell.

Discretisation
--------------
Cell-centred finite volumes on a uniform ``n x n`` mesh of ``[-1, 1]^2`` (cell width
``h = 2 / n``). An oplearn :class:`~oplearn.grids.Grid` holds nodes, so the cell centres are
stored as the nodes of the bounded grid on ``[-1 + h/2, 1 - h/2]^2`` with ``n`` nodes per
dimension: its node spacing is exactly ``h`` and its coordinates are exactly the cell centres
(:meth:`DiffusionReaction.grid`). Any bounded grid passed to the solver is read the same way:
its nodes are cell centres and its node spacing is the cell width. Consequences: refining by
an integer factor does not keep the coarse cell centres, so :meth:`~oplearn.pdes.base.PDE.generate` solves at the
stored resolution (``refine = 1``), and the white-noise initial condition depends on the
resolution (unlike the Gaussian random fields of the other PDEs).

The diffusive flux through an interior face is ``D (y_{i+1} - y_i) / h`` and is zero through
the boundary faces, so the discrete Laplacian (:func:`neumann_laplacian`) conserves the total
mass exactly and is second-order accurate. Time integration is the classical fourth-order
Runge-Kutta method with a step chosen per sample from a stability bound and capped for
accuracy (:meth:`DiffusionReaction.stable_dt`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from oplearn.grids import Grid
from oplearn.pdes.base import PDE
from oplearn.progress import fraction_done, part

#: Radius of the left half-disc inside the stability region of classical RK4 (the region
#: reaches 2.785 on the negative real axis and 2.83 on the imaginary axis; the half-disc of
#: radius 2.6 is inside, 2.5 leaves a margin).
RK4_STABLE_RADIUS = 2.5

Rate = Callable[[float, torch.Tensor], torch.Tensor]


def neumann_laplacian(u: torch.Tensor, grid: Grid) -> torch.Tensor:
    r"""Finite-volume Laplacian with zero flux through the boundary faces (differentiable).

    .. math::

        (\Delta_h u)_i = \sum_d \frac{F_{i+1/2} - F_{i-1/2}}{h_d}, \qquad
        F_{i+1/2} = \frac{u_{i+1} - u_i}{h_d}, \quad F_{-1/2} = F_{n-1/2} = 0,

    on cell-centred values, the nodes of ``grid`` being the cell centres and ``h_d`` its node
    spacing. The cell sums of :math:`\Delta_h u` vanish to round-off (mass conservation).

    Shapes: ``(..., *grid.shape) -> (..., *grid.shape)``.
    """
    if grid.periodic:
        raise ValueError("neumann_laplacian needs a bounded grid (cell centres); got a periodic grid")
    if tuple(u.shape[u.ndim - grid.ndim :]) != grid.shape:
        raise ValueError(f"field of shape {tuple(u.shape)} does not end with the grid shape {grid.shape}")
    out = torch.zeros_like(u)
    for d, h in enumerate(grid.spacing):
        axis = u.ndim - grid.ndim + d
        n = u.shape[axis]
        flux = torch.diff(u, dim=axis) / h**2  # F_{i+1/2} / h on the n - 1 interior faces
        out.narrow(axis, 0, n - 1).add_(flux)  # leaves cell i through its right face ...
        out.narrow(axis, 1, n - 1).sub_(flux)  # ... and enters cell i + 1; boundary faces carry none
    return out


def rk4_trajectory(rate: Rate, y0: torch.Tensor, times: torch.Tensor, steps: int) -> torch.Tensor:
    """Integrate ``dy/dt = rate(t, y)`` with classical RK4, ``steps`` equal steps between frames.

    ``times`` are the output times, ``times[0]`` the time of ``y0``; the result holds ``y0``
    as its first frame.

    Shapes: ``y0 (batch, ...)``, ``times (frames,) -> (batch, frames, ...)``.
    """
    if int(steps) != steps or steps < 1:
        raise ValueError(f"steps per frame must be a positive integer, got {steps}")
    frames = [y0]
    y = y0
    for i, (t0, t1) in enumerate(zip(times[:-1].tolist(), times[1:].tolist())):
        dt = (t1 - t0) / steps
        for j in range(steps):
            t = t0 + j * dt
            k1 = rate(t, y)
            k2 = rate(t + dt / 2, torch.add(y, k1, alpha=dt / 2))
            k3 = rate(t + dt / 2, torch.add(y, k2, alpha=dt / 2))
            k4 = rate(t + dt, torch.add(y, k3, alpha=dt))
            y = torch.add(y, 2 * (k2 + k3) + k1 + k4, alpha=dt / 6)
        frames.append(y)
        fraction_done((i + 1) / (len(times) - 1))
    return torch.stack(frames, dim=1)


class DiffusionReaction(PDE):
    r"""PDEBench 2D diffusion-reaction: FitzHugh-Nagumo :math:`(u, v)` with no-flux boundaries.

    .. math::

        \partial_t u = D_u \Delta u + u - u^3 - k - v, \qquad
        \partial_t v = D_v \Delta v + u - v \ \text{on } [-1, 1]^2, \qquad
        \partial_n u = \partial_n v = 0,

    with :math:`u(\cdot, 0), v(\cdot, 0)` independent standard normal in every cell. The
    defaults are PDEBench's (``2D_diff-react_NA_NA``): :math:`D_u = 10^{-3}`,
    :math:`D_v = 5 \cdot 10^{-3}`, :math:`k = 5 \cdot 10^{-3}`, :math:`t \in [0, 5]` stored at
    101 frames (``t = 0, 0.05, ..., 5``) on 128 x 128 cells. PDEBench integrates the same
    finite-volume semi-discretisation with scipy's adaptive RK45 (default tolerances); here it
    is RK4 with a fixed step, stable and capped for accuracy, so both approximate the same ODE
    system (ours more closely, see below).

    Time step: the Jacobian of the semi-discrete right-hand side is the diffusion part, with
    spectrum in :math:`[-\max(D_u, D_v) \sum_d 4 / h_d^2, 0]`, plus the pointwise reaction
    Jacobian :math:`\begin{pmatrix} 1 - 3u^2 & -1 \\ 1 & -1 \end{pmatrix}`, of norm at most
    :math:`3 A^2` while :math:`|u|, |v| \le A`, :math:`A \ge 1.5`. The square
    :math:`[-A, A]^2` with :math:`A = \max(1.5 + |k|^{1/3}, \max|y_0|)` is invariant (the
    cubic pulls :math:`u` back, :math:`v` relaxes to :math:`u`, diffusion obeys a maximum
    principle), so with :math:`\lambda = \max(D_u, D_v) \sum_d 4/h_d^2 + 3A^2` every eigenvalue
    of the Jacobian has modulus at most :math:`\lambda`, and
    :math:`\Delta t = 2.5 / \lambda` keeps the decaying ones inside RK4's stability region.
    This is a bound, not a proof for the non-normal Jacobian; a blow-up shows as non-finite
    output, which data generation reports. An implicit or IMEX scheme would not pay: the
    explicitly treated cubic alone limits the step to the same order at this resolution.

    Accuracy, not stability, sets the default step: the white noise relaxes on the time scale
    :math:`1 / (3 \max|u_0|^2) \approx 0.02`, which the stable step (``0.011`` at 128^2)
    resolves poorly. Against a DOP853 solution with tolerances ``1e-10`` (128^2, one sample,
    :math:`t \in [0, 1]`) the largest deviation is ``2.4e-3`` with the stable step,
    ``8e-5`` with ``max_dt = 0.005`` (as accurate as PDEBench's RK45 at its default
    tolerances) and ``4e-6`` with the default ``max_dt = 0.0025`` (20 steps per frame).

    Parameters
    ----------
    du, dv : float
        Diffusivities of ``u`` and ``v``, positive.
    k : float
        The constant in the activator's reaction.
    t_end : float
        Final time, positive.
    frames : int
        Stored frames, equally spaced on ``[0, t_end]`` (the first is the initial condition).
    max_dt : float or None
        Upper bound on the time step (the accuracy cap above); ``None`` leaves only the
        stability bound, which always applies.
    refine : int
        Must be 1 (accepted so that a refinement request gets a clear refusal): cell-centred
        data are not refined and subsampled (module docstring).

    Shapes
    ------
    inputs ``(batch, 2, n, n)`` (channels ``u, v`` at ``t = 0``), outputs
    ``(batch, frames, 2, n, n)`` at :attr:`times` (frame 0 equals the input), residual
    ``(batch, frames - 1, 2, n, n)``. The first spatial axis is ``x``.

    References
    ----------
    Takamoto et al., PDEBench: An Extensive Benchmark for Scientific Machine Learning,
    NeurIPS 2022 Datasets and Benchmarks (section on 2D diffusion-reaction).
    """

    name = "diffusion-reaction"
    input_names = ("u", "v")
    output_names = ("u", "v")
    periodic = False
    ndim = 2

    #: The physical domain ``[-1, 1]`` in each dimension.
    DOMAIN = (-1.0, 1.0)

    def __init__(
        self,
        du: float = 1e-3,
        dv: float = 5e-3,
        k: float = 5e-3,
        t_end: float = 5.0,
        frames: int = 101,
        max_dt: float | None = 0.0025,
        refine: int = 1,
    ) -> None:
        if refine != 1:
            raise ValueError(
                f"refine must be 1, got {refine}: refined cell centres do not include the coarse ones, "
                "so a refined solve cannot be subsampled; generate at the wanted resolution"
            )
        if not (du > 0 and dv > 0 and math.isfinite(du) and math.isfinite(dv)):
            raise ValueError(f"diffusivities must be positive and finite, got du={du}, dv={dv}")
        if not math.isfinite(k):
            raise ValueError(f"k must be finite, got {k}")
        if not (t_end > 0 and math.isfinite(t_end)):
            raise ValueError(f"t_end must be positive and finite, got {t_end}")
        if int(frames) != frames or frames < 2:
            raise ValueError(f"frames must be an integer >= 2, got {frames}")
        if max_dt is not None and not max_dt > 0:
            raise ValueError(f"max_dt must be positive, got {max_dt}")
        self.du, self.dv, self.k = float(du), float(dv), float(k)
        self.t_end, self.frames = float(t_end), int(frames)
        self.max_dt = None if max_dt is None else float(max_dt)
        self.times = torch.linspace(0.0, self.t_end, self.frames, dtype=torch.float64)

    def params(self) -> dict[str, Any]:
        return {
            "du": self.du,
            "dv": self.dv,
            "k": self.k,
            "t_end": self.t_end,
            "frames": self.frames,
            "max_dt": self.max_dt,
            "initial": "independent standard normal values in every cell",
            "refine": 1,
            "solver": "cell-centred finite volumes, no-flux boundaries, classical RK4, stability-bounded and accuracy-capped step",
        }

    def grid(self, resolution: int) -> Grid:
        """The cell centres of ``resolution x resolution`` cells on ``[-1, 1]^2`` (see the module docstring)."""
        lo, hi = self.DOMAIN
        half = (hi - lo) / (2 * resolution)
        return Grid((resolution, resolution), ((lo + half, hi - half),) * 2, periodic=False)

    def sample_input(self, n: int, grid: Grid, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` white-noise initial conditions: ``(n, 2, *grid.shape)``, float64.

        Drawn one sample after another, so the first ``m`` of ``n`` samples equal ``m``
        samples drawn from the same generator state.
        """
        self._check_grid(grid)
        if int(n) != n or n < 0:
            raise ValueError(f"number of samples must be a non-negative integer, got {n}")
        draws = [torch.randn((2, *grid.shape), generator=generator, dtype=torch.float64) for _ in range(int(n))]
        return torch.stack(draws) if draws else torch.zeros((0, 2, *grid.shape), dtype=torch.float64)

    def diffusion(self, y: torch.Tensor, grid: Grid) -> torch.Tensor:
        r""":math:`(D_u \Delta_h u, D_v \Delta_h v)`. Shapes: ``(..., 2, *grid.shape) -> same``."""
        diffusivity = torch.tensor([self.du, self.dv], dtype=y.dtype, device=y.device).reshape(2, 1, 1)
        return diffusivity * neumann_laplacian(y, grid)

    def reaction(self, y: torch.Tensor) -> torch.Tensor:
        r""":math:`(u - u^3 - k - v, u - v)`. Shapes: ``(..., 2, n, n) -> same``."""
        u, v = y.unbind(-3)
        return torch.stack([u - u**3 - self.k - v, u - v], dim=-3)

    def rate(self, y: torch.Tensor, grid: Grid) -> torch.Tensor:
        """The semi-discrete right-hand side ``diffusion + reaction``. Shapes: as :meth:`diffusion`."""
        return self.diffusion(y, grid) + self.reaction(y)

    def stable_dt(self, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        """The RK4 step of each sample (see the class docstring), capped by ``max_dt``.

        Shapes: ``(batch, 2, *grid.shape) -> (batch,)``.
        """
        y0 = self._check_inputs(inputs, grid)
        amplitude = y0.abs().flatten(1).amax(1).clamp(min=1.5 + abs(self.k) ** (1 / 3))
        diffusive = max(self.du, self.dv) * sum(4 / h**2 for h in grid.spacing)
        dt = RK4_STABLE_RADIUS / (diffusive + 3 * amplitude**2)
        return dt if self.max_dt is None else dt.clamp(max=self.max_dt)

    def solve(
        self, inputs: torch.Tensor, grid: Grid, source: Callable[[float], torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Integrate each initial condition to the stored :attr:`times`.

        Samples needing the same number of steps per frame are integrated together, so a
        sample's trajectory does not depend on the rest of the batch. ``source(t)``, of shape
        ``(batch or 1, 2, *grid.shape)``, adds a forcing to the right-hand side
        (manufactured solutions).

        Shapes: ``(batch, 2, *grid.shape) -> (batch, frames, 2, *grid.shape)``, float64.
        """
        y0 = self._check_inputs(inputs, grid).to(torch.float64)
        frame_dt = self.t_end / (self.frames - 1)
        steps = torch.ceil(frame_dt / self.stable_dt(y0, grid) - 1e-9).long()
        out = torch.empty((y0.shape[0], self.frames, *y0.shape[1:]), dtype=torch.float64, device=y0.device)
        times = self.times.to(y0.device)
        groups = steps.unique().tolist()
        work = torch.cumsum(torch.tensor([0] + [m * int((steps == m).sum()) for m in groups], dtype=torch.float64), 0)
        for g, m in enumerate(groups):
            index = (steps == m).nonzero()[:, 0]
            rate = self._rate_with_source(grid, source, index)
            with part(float(work[g] / work[-1]), float(work[g + 1] / work[-1])):  # shares weighted by steps x samples
                out[index] = rk4_trajectory(rate, y0[index], times, int(m))
        return out

    def residual(
        self,
        outputs: torch.Tensor,
        inputs: torch.Tensor,
        grid: Grid,
        source: Callable[[float], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        r"""Trapezoidal residual between stored frames (differentiable).

        .. math::

            \frac{y_{i+1} - y_i}{t_{i+1} - t_i} - \frac{F(t_i, y_i) + F(t_{i+1}, y_{i+1})}{2},
            \qquad F = D \Delta_h y + R(y) (+ \text{source}).

        The stored frames are much sparser than the solver's steps, so at the solution this
        is the trapezoidal rule's error, second order in the frame spacing, not round-off.
        ``inputs`` (the initial condition) only fixes the shapes: frame 0 holds it.

        Shapes: ``outputs (batch, frames, 2, *grid.shape) -> (batch, frames - 1, 2, *grid.shape)``.
        """
        self._check_inputs(inputs, grid)
        expected = (inputs.shape[0], self.frames, 2, *grid.shape)
        if tuple(outputs.shape) != expected:
            raise ValueError(f"{self.name} outputs must have shape {expected}, got {tuple(outputs.shape)}")
        times = self.times.to(outputs.device, outputs.dtype)
        rate = self._rate_with_source(grid, source, None)
        f = torch.stack([rate(t, outputs[:, i]) for i, t in enumerate(times.tolist())], dim=1)
        dt = torch.diff(times).reshape(1, -1, 1, 1, 1)
        return torch.diff(outputs, dim=1) / dt - 0.5 * (f[:, 1:] + f[:, :-1])

    def _rate_with_source(
        self, grid: Grid, source: Callable[[float], torch.Tensor] | None, index: torch.Tensor | None
    ) -> Rate:
        if source is None:
            return lambda t, y: self.rate(y, grid)

        def rate(t: float, y: torch.Tensor) -> torch.Tensor:
            s = source(t).to(y)
            if s.shape[0] != 1 and index is not None:
                s = s[index]
            return self.rate(y, grid) + s

        return rate

    def _check_grid(self, grid: Grid) -> None:
        if grid.ndim != 2 or grid.periodic:
            raise ValueError(
                f"{self.name} needs a bounded 2D grid of cell centres, got shape {grid.shape} with periodic={grid.periodic}"
            )

    def _check_inputs(self, inputs: torch.Tensor, grid: Grid) -> torch.Tensor:
        self._check_grid(grid)
        if inputs.ndim != 4 or inputs.shape[1] != 2 or tuple(inputs.shape[2:]) != grid.shape:
            raise ValueError(f"{self.name} inputs must have shape (batch, 2, *{grid.shape}), got {tuple(inputs.shape)}")
        if not torch.isfinite(inputs).all():
            raise ValueError(f"{self.name} initial condition contains NaN or infinite values")
        return inputs
