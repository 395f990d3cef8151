r"""The rotating shallow-water equations on the sphere, in vorticity-divergence form.

.. math::

    \partial_t \zeta &= -\nabla\cdot(\eta \mathbf u), \\
    \partial_t \delta &= \mathbf k\cdot\nabla\times(\eta \mathbf u) - \nabla^2\left(\Phi + \Phi_s + \tfrac12|\mathbf u|^2\right), \\
    \partial_t \Phi &= -\nabla\cdot(\Phi \mathbf u),

with the relative vorticity :math:`\zeta`, the divergence :math:`\delta`, the absolute
vorticity :math:`\eta = \zeta + f`, the geopotential of the fluid depth :math:`\Phi = g(h - h_s)`,
that of the topography :math:`\Phi_s = g h_s`, and the velocity
:math:`\mathbf u = \mathbf k\times\nabla\psi + \nabla\chi` with :math:`\nabla^2\psi = \zeta`,
:math:`\nabla^2\chi = \delta`, on a sphere of radius :math:`a` (SI units throughout).
A hyperdiffusion :math:`-\nu\nabla^4` acts on all three fields when ``diffusion_time > 0``.

Solver: spectral transform method. The state is the spherical-harmonic coefficients of
:math:`(\Phi, \zeta, \delta)` for degrees :math:`l < L` (triangular truncation); products are
formed on a Gauss-Legendre grid of :math:`\lceil (3L + 1)/2 \rceil` latitudes (quadratic terms
alias-free) and transformed back; time stepping by :class:`~oplearn.solvers.stepping.ETDRK4`
(fourth order, the hyperdiffusion integrated exactly).

Conservation: the global mass :math:`\int \Phi\, dA / g` is the degree-0 coefficient of
:math:`\Phi`, whose tendency is a divergence, zero at :math:`l = 0`: mass is conserved to
round-off, with or without diffusion. The total energy
:math:`\frac1g\int \tfrac12\Phi|\mathbf u|^2 + \tfrac12\Phi^2 + \Phi\Phi_s\, dA` is conserved by
the equations without diffusion; the discrete energy changes by the fourth-order time error
plus the spatial truncation error (spectrally small for smooth flows).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from oplearn.derivatives import time_derivative
from oplearn.grids import Grid
from oplearn.pdes.base import PDE
from oplearn.pdes.evolution import check_positive
from oplearn.pdes.williamson import CASES, GRAVITY, RADIUS, InitialState, coriolis
from oplearn.solvers.stepping import ETDRK4, integrate
from oplearn.sphere.grid import LATITUDES, SphereGrid
from oplearn.sphere.harmonics import laplacian_eigenvalues, spherical_transform

#: The unit of the stored height channel (m: kilometres) and of the stored vorticity and divergence
#: (1/s), chosen so that the three channels of random flows have standard deviations within a factor
#: of ten of each other (a relative L2 loss over all channels then weighs each of them).
HEIGHT_UNIT = 1000.0
VORTICITY_UNIT = 1e-5
#: One hour in seconds (times are given in hours).
HOUR = 3600.0


class ShallowWater(PDE):
    r"""Rotating shallow water on the sphere (see the module docstring for the equations and solver).

    Stored fields, channels ``("h", "vorticity", "divergence")``: the free-surface height minus
    the case's reference depth, in units of :data:`HEIGHT_UNIT` (km), and the relative
    vorticity and divergence in units of :data:`VORTICITY_UNIT` (1e-5 / s), on a
    :class:`~oplearn.sphere.grid.SphereGrid` of ``resolution`` latitudes and twice as many
    longitudes. Inputs are the state at ``t = 0``, outputs the states at :attr:`times` (hours).

    Parameters
    ----------
    case : str
        ``"random"`` (the dataset: random balanced flows) or a test case of
        :mod:`oplearn.pdes.williamson`: ``"williamson2"``, ``"williamson5"``, ``"williamson6"``.
    t_final : float
        Last stored time, in hours; frames at ``t_final * (1..n_times) / n_times``.
    n_times : int
        Number of stored frames.
    dt : float
        Largest time step, in seconds.
    degrees : int, optional
        The truncation :math:`L` (degrees ``l < L``); defaults to what the stored grid resolves.
    diffusion_time : float
        e-folding time (hours) of the highest degree under the :math:`\nabla^4` hyperdiffusion;
        0 switches it off.
    depth : float
        ``"random"``: the mean fluid depth (m) and the reference depth of the stored height.
    vorticity_rms : float
        ``"random"``: the root-mean-square initial vorticity (1/s).
    modes : int
        ``"random"``: the initial vorticity has degrees ``1 <= l < modes``, all with the same
        variance, independent of the resolution; the height balances it (zero initial
        divergence tendency), the initial divergence is zero.
    alpha : float
        ``"williamson2"``: the tilt of the flow from the poles (radians).
    latitudes : str
        The stored grid's latitudes: ``"equiangular"`` (poles included) or ``"legendre-gauss"``.

    Shapes
    ------
    inputs ``(batch, 3, nlat, nlon)``, outputs ``(batch, n_times, 3, nlat, nlon)``.

    References
    ----------
    J. J. Hack, R. Jakob, Description of a global shallow water model based on the spectral
    transform method, NCAR/TN-343+STR (1992). Test cases: see :mod:`oplearn.pdes.williamson`.
    """

    name = "shallow_water"
    input_names = ("h", "vorticity", "divergence")
    output_names = ("h", "vorticity", "divergence")
    periodic = True
    ndim = 2

    def __init__(
        self,
        case: str = "random",
        t_final: float = 30.0,
        n_times: int = 10,
        dt: float = 600.0,
        degrees: int | None = None,
        diffusion_time: float = 3.0,
        depth: float = 5000.0,
        vorticity_rms: float = 2e-5,
        modes: int = 10,
        alpha: float = 0.0,
        latitudes: str = "equiangular",
    ) -> None:
        if case != "random" and case not in CASES:
            raise ValueError(f"case must be 'random' or one of {', '.join(CASES)}, got {case!r}")
        if latitudes not in LATITUDES:
            raise ValueError(f"latitudes must be one of {', '.join(LATITUDES)}, got {latitudes!r}")
        if int(n_times) != n_times or n_times < 1:
            raise ValueError(f"n_times must be a positive integer, got {n_times}")
        if degrees is not None and (int(degrees) != degrees or degrees < 3):
            raise ValueError(f"degrees must be an integer >= 3, got {degrees}")
        if int(modes) != modes or modes < 2:
            raise ValueError(f"modes must be an integer >= 2, got {modes}")
        if not (diffusion_time >= 0 and math.isfinite(diffusion_time)):
            raise ValueError(f"diffusion_time must be >= 0 (0: no diffusion), got {diffusion_time}")
        if not math.isfinite(alpha):
            raise ValueError(f"alpha must be finite, got {alpha}")
        self.case, self.latitudes = case, latitudes
        self.t_final, self.n_times = check_positive("t_final", t_final), int(n_times)
        self.times = self.t_final * torch.arange(1, self.n_times + 1, dtype=torch.float64) / self.n_times
        self.dt = check_positive("dt", dt)
        self.degrees = None if degrees is None else int(degrees)
        self.diffusion_time = float(diffusion_time)
        self.depth = check_positive("depth", depth)
        self.vorticity_rms = check_positive("vorticity_rms", vorticity_rms)
        self.modes, self.alpha = int(modes), float(alpha)

    def grid(self, resolution: int) -> SphereGrid:
        """``resolution`` latitudes and ``2 * resolution`` longitudes."""
        return SphereGrid.regular(resolution, self.latitudes)

    def params(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "t_final": self.t_final,
            "n_times": self.n_times,
            "dt": self.dt,
            "degrees": self.degrees,
            "diffusion_time": self.diffusion_time,
            "depth": self.depth,
            "vorticity_rms": self.vorticity_rms,
            "modes": self.modes,
            "alpha": self.alpha,
            "latitudes": self.latitudes,
            "solver": "spectral transform, vorticity-divergence form, triangular truncation with alias-free "
            "quadratic products, ETDRK4 with exact del^4 hyperdiffusion",
        }

    # -- the discretisation ------------------------------------------------------------------

    def dynamics(self, grid: SphereGrid, device: torch.device | str | None = None) -> SpectralDynamics:
        """The spectral model for data stored on ``grid``."""
        degrees = self.degrees or grid.max_degree
        return SpectralDynamics(degrees, self.case, self.alpha, self.depth, self.diffusion_time, device)

    # -- the PDE interface -------------------------------------------------------------------

    def sample_input(self, n: int, grid: SphereGrid, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` initial states on ``grid``: ``(n, 3, nlat, nlon)`` float64 (stored units)."""
        model = self.dynamics(self._check_grid(grid))
        return model.observe(self.initial_state(model, n, generator), grid)

    def initial_state(self, model: SpectralDynamics, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The spectral initial states ``(n, 3, L, L)`` of the case (the same ``n`` times for a test case)."""
        if self.case != "random":
            return model.case_state.expand(n, *model.case_state.shape[1:]).clone()
        return model.random_state(n, self.modes, self.vorticity_rms, generator)

    def generate(
        self, n: int, resolution: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial states and trajectories on ``self.grid(resolution)``, solved from the exact spectral
        initial state (not from its samples on the grid)."""
        grid = self.grid(resolution)
        model = self.dynamics(grid)
        state = self.initial_state(model, n, generator)
        return model.observe(state, grid), self._integrate(model, state, grid)

    def solve(self, inputs: torch.Tensor, grid: SphereGrid) -> torch.Tensor:
        """Integrate stored initial states: ``(batch, 3, nlat, nlon) -> (batch, n_times, 3, nlat, nlon)``,
        in float64 on the device of ``inputs``, returned in their dtype."""
        grid = self._check_grid(grid)
        self._check_fields(inputs, grid, 4)
        model = self.dynamics(grid, inputs.device)
        return self._integrate(model, model.state_of(inputs.double(), grid), grid).to(inputs.dtype)

    def residual(self, outputs: torch.Tensor, inputs: torch.Tensor, grid: SphereGrid) -> torch.Tensor:
        r"""The time derivative of the stored frames (second-order differences over the initial state
        and the frames, per hour, stored units) minus the right-hand side, hyperdiffusion included,
        evaluated on them with the grid's own transforms (differentiable).

        Small for :meth:`solve`'s output but not zero: :math:`O(\Delta t^2)` in the frame spacing,
        plus the truncation of the grid's transforms. Shapes: ``outputs (batch, n_times, 3, nlat, nlon)``,
        ``inputs (batch, 3, nlat, nlon) -> (batch, n_times, 3, nlat, nlon)``.
        """
        grid = self._check_grid(grid)
        self._check_fields(inputs, grid, 4)
        self._check_fields(outputs, grid, 5)
        frames = torch.cat([inputs.unsqueeze(1), outputs], dim=1).double()
        times = torch.cat([self.times.new_zeros(1), self.times]).to(frames.device)
        model = self.dynamics(grid, frames.device)
        state = model.state_of(frames.flatten(0, 1), grid)
        rates = model.observe_rate(model.tendency(state) + model.linear * state, grid).view(frames.shape)
        return (time_derivative(frames, times, dim=1) - rates * HOUR)[:, 1:].to(outputs.dtype)

    def _integrate(self, model: SpectralDynamics, state: torch.Tensor, grid: SphereGrid) -> torch.Tensor:
        stepper = ETDRK4(model.linear, lambda s, t: model.tendency(s))
        frames = integrate(stepper, state, self.times * HOUR, self.dt, observe=lambda s: model.observe(s, grid))
        return frames

    def _check_grid(self, grid: Grid) -> SphereGrid:
        if not isinstance(grid, SphereGrid):
            raise ValueError(f"{self.name} lives on a SphereGrid, got {grid}")
        return grid

    def _check_fields(self, x: torch.Tensor, grid: SphereGrid, ndim: int) -> None:
        if x.ndim != ndim or x.shape[-3] != 3 or tuple(x.shape[-2:]) != grid.shape:
            raise ValueError(
                f"{self.name} fields must have shape ({'batch, time, ' if ndim == 5 else 'batch, '}3, "
                f"{grid.nlat}, {grid.nlon}), got {tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise ValueError(f"{self.name} fields contain NaN or infinite values")


class SpectralDynamics:
    r"""The spectral transform model of :class:`ShallowWater` at truncation :math:`L`.

    State: coefficients of :math:`(\Phi, \zeta, \delta)`, ``(batch, 3, L, L)`` complex128.

    Parameters
    ----------
    degrees : int
        :math:`L`.
    case : str
        A test case of :data:`oplearn.pdes.williamson.CASES` (its Coriolis field, topography and
        initial state), or ``"random"``: random flows with :math:`f = 2\Omega\sin\theta`, no topography.
    alpha : float
        Passed to case 2.
    depth : float
        The mean depth (m) of random flows.
    diffusion_time : float
        Hours; 0 for none.
    """

    def __init__(
        self,
        degrees: int,
        case: str,
        alpha: float,
        depth: float,
        diffusion_time: float,
        device: torch.device | str | None = None,
    ) -> None:
        self.degrees = degrees
        nlat = (3 * degrees + 1) // 2 + 1
        self.grid = SphereGrid.regular(nlat, "legendre-gauss")
        self.transform = spherical_transform(self.grid, degrees, vector=True, device=device or "cpu")
        theta, lon = self.grid.axes(torch.float64, device)
        lat, lon = torch.meshgrid(math.pi / 2 - theta, lon, indexing="ij")
        if case == "random":
            initial = InitialState(
                torch.full_like(lat, depth),
                torch.zeros_like(lat),
                torch.zeros_like(lat),
                torch.zeros_like(lat),
                coriolis(lat, lon),
                depth,
            )
        else:
            initial = CASES[case](lat, lon, **({"alpha": alpha} if case == "williamson2" else {}))
        self.h_ref = initial.h_ref
        self.f = initial.f
        self.phi_s = GRAVITY * initial.h_s
        self.phi_s_hat = self.transform(self.phi_s)
        self.lap = laplacian_eigenvalues(degrees, device=device) / RADIUS**2
        self.inverse_lap = torch.where(self.lap == 0, 0.0, 1 / torch.where(self.lap == 0, 1.0, self.lap))
        rate = 0.0 if diffusion_time == 0 else 1 / (diffusion_time * HOUR)
        damping = rate * (self.lap / self.lap[-1]) ** 2
        self.linear = (
            -damping.expand(3, degrees, degrees)
            if rate
            else torch.zeros(3, degrees, degrees, dtype=torch.float64, device=device)
        )
        self.case_state = self.state_of_velocity(initial.h - initial.h_s, initial.u, initial.v)

    def state_of_velocity(self, depth: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The spectral state of a depth and a velocity on the model grid: ``-> (batch, 3, L, L)``."""
        psi_chi = self.transform.vector_forward(torch.stack([u, v], dim=-3))  # (psi, chi) * ... / a
        vorticity_divergence = self.lap * psi_chi * RADIUS
        phi = self.transform(GRAVITY * depth)
        return torch.cat([phi.unsqueeze(-3), vorticity_divergence], dim=-3).reshape(-1, 3, self.degrees, self.degrees)

    def velocity(self, state: torch.Tensor) -> torch.Tensor:
        r"""``(u, v)`` on the model grid from :math:`(\zeta, \delta)`: ``(batch, 2, nlat, nlon)``."""
        return self.transform.vector_inverse(state[:, 1:] * self.inverse_lap / RADIUS)

    def tendency(self, state: torch.Tensor) -> torch.Tensor:
        r"""The right-hand side without diffusion, :math:`\partial_t(\Phi, \zeta, \delta)`: ``(batch, 3, L, L)``."""
        phi, zeta, _ = self.transform.inverse(state).unbind(1)
        uv = self.velocity(state)
        eta = zeta + self.f
        fluxes = torch.stack([eta.unsqueeze(1) * uv, phi.unsqueeze(1) * uv], dim=1)  # (batch, 2, 2, nlat, nlon)
        # curl and divergence of a flux: lap * a * (psi, chi) of its vector transform (oplearn.sphere.harmonics)
        flux_hat = self.lap * RADIUS * self.transform.vector_forward(fluxes)
        bernoulli = self.transform(phi + self.phi_s + 0.5 * (uv**2).sum(1))
        d_zeta = -flux_hat[:, 0, 1]
        d_delta = flux_hat[:, 0, 0] - self.lap * bernoulli
        d_phi = -flux_hat[:, 1, 1]
        return torch.stack([d_phi, d_zeta, d_delta], dim=1)

    def random_state(self, n: int, modes: int, vorticity_rms: float, generator: torch.Generator | None) -> torch.Tensor:
        r"""Random vorticity of degrees :math:`1 \le l <` ``modes`` (white spectrum, rms ``vorticity_rms``),
        no divergence, and the geopotential that makes the divergence tendency vanish."""
        modes = min(modes, self.degrees)
        real = torch.randn(n, modes, modes, generator=generator, dtype=torch.float64)
        imag = torch.randn(n, modes, modes, generator=generator, dtype=torch.float64)
        l = torch.arange(modes)[:, None]
        m = torch.arange(modes)[None, :]
        coefficients = torch.complex(real, torch.where(m > 0, imag, 0.0)) * torch.where(m > 0, math.sqrt(0.5), 1.0)
        coefficients = torch.where((m <= l) & (l >= 1), coefficients, 0)
        count = sum(2 * k + 1 for k in range(1, modes))
        sigma = vorticity_rms * math.sqrt(4 * math.pi / count)
        state = torch.zeros(n, 3, self.degrees, self.degrees, dtype=torch.complex128)
        state[:, 1, :modes, :modes] = sigma * coefficients
        state[:, 0, 0, 0] = self.case_state[0, 0, 0, 0]  # the mean depth
        state = state.to(self.lap.device)
        return self.balance(state)

    def balance(self, state: torch.Tensor) -> torch.Tensor:
        r"""``state`` with :math:`\Phi` (degrees :math:`l \ge 1`) such that :math:`\partial_t\delta = 0`."""
        tendency = self.tendency(state)[:, 2]  # = curl - lap (Phi + Phi_s + K); solve for Phi
        phi = state[:, 0] + tendency * self.inverse_lap
        return torch.stack([torch.where(self.lap == 0, state[:, 0], phi), state[:, 1], state[:, 2]], dim=1)

    def observe(self, state: torch.Tensor, grid: SphereGrid) -> torch.Tensor:
        """The stored fields on ``grid`` (see :class:`ShallowWater`): ``(batch, 3, nlat, nlon)`` float64."""
        output = spherical_transform(grid, self.degrees, device=state.device)
        fields = output.inverse(state + torch.stack([self.phi_s_hat, 0 * self.phi_s_hat, 0 * self.phi_s_hat]))
        h = (fields[:, 0] / GRAVITY - self.h_ref) / HEIGHT_UNIT
        return torch.stack([h, fields[:, 1] / VORTICITY_UNIT, fields[:, 2] / VORTICITY_UNIT], dim=1)

    def observe_rate(self, rate: torch.Tensor, grid: SphereGrid) -> torch.Tensor:
        """A tendency of the state in stored units per second on ``grid``: ``(batch, 3, nlat, nlon)``."""
        fields = spherical_transform(grid, self.degrees, device=rate.device).inverse(rate)
        return torch.stack(
            [fields[:, 0] / GRAVITY / HEIGHT_UNIT, fields[:, 1] / VORTICITY_UNIT, fields[:, 2] / VORTICITY_UNIT], dim=1
        )

    def state_of(self, fields: torch.Tensor, grid: SphereGrid) -> torch.Tensor:
        """The spectral state of stored fields ``(batch, 3, nlat, nlon)`` on ``grid`` (degrees beyond
        what the grid resolves are zero)."""
        degrees = min(self.degrees, grid.max_degree)
        coefficients = spherical_transform(grid, degrees, device=fields.device)(
            torch.stack(
                [
                    (fields[:, 0] * HEIGHT_UNIT + self.h_ref) * GRAVITY,
                    fields[:, 1] * VORTICITY_UNIT,
                    fields[:, 2] * VORTICITY_UNIT,
                ],
                dim=1,
            )
        )
        state = torch.zeros(len(fields), 3, self.degrees, self.degrees, dtype=coefficients.dtype, device=fields.device)
        state[..., :degrees, :degrees] = coefficients
        state[:, 0] -= self.phi_s_hat
        return state

    def mass(self, state: torch.Tensor) -> torch.Tensor:
        r""":math:`\int \Phi\, dA / g` per unit density (m^3): ``(batch, 3, L, L) -> (batch,)``."""
        return state[:, 0, 0, 0].real * math.sqrt(4 * math.pi) * RADIUS**2 / GRAVITY

    def energy(self, state: torch.Tensor) -> torch.Tensor:
        r""":math:`\frac1g\int \tfrac12\Phi|\mathbf u|^2 + \tfrac12\Phi^2 + \Phi\Phi_s\, dA` (per unit density),
        by quadrature on the model grid: ``(batch,)``."""
        phi = self.transform.inverse(state[:, 0])
        speed2 = (self.velocity(state) ** 2).sum(1)
        density = 0.5 * phi * speed2 + 0.5 * phi**2 + phi * self.phi_s
        return self.grid.integrate(density) * RADIUS**2 / GRAVITY
