r"""Log-likelihoods and Radon-Nikodym derivatives of discretised paths.

For an Euler-Maruyama path :math:`x_0, \dots, x_N` on a grid with steps :math:`h_k`:

- forward (in the grid's direction) transition densities of an SDE
  :math:`dX = f\,dt + \sigma\,dW`,

  .. math:: \log p_F(x_{1:N} \mid x_0) = \sum_{k=0}^{N-1} \log\mathcal N\big(x_{k+1};\,
            x_k + f(t_k, x_k) h_k,\; \sigma\sigma^\top(t_k, x_k)\,h_k\big)
            \qquad\text{(:func:`forward_log_density`)};

- backward transition densities of a process running from :math:`t_N` to :math:`t_0` whose
  drift :math:`f_B(t, x)` points backwards in time,

  .. math:: \log p_B(x_{0:N-1} \mid x_N) = \sum_{k=0}^{N-1} \log\mathcal N\big(x_k;\,
            x_{k+1} + f_B(t_{k+1}, x_{k+1}) h_k,\; \sigma_B\sigma_B^\top(t_{k+1}, x_{k+1})\,h_k\big)
            \qquad\text{(:func:`backward_log_density`)};

  the discrete-time Radon-Nikodym derivative of two path measures is the difference of such
  sums plus the log-densities of the end points;

- on the path that was sampled, the forward density from the normals alone, without any drift
  evaluation, :math:`\log\mathcal N(\sigma\Delta W_k; 0, \sigma\sigma^\top h_k)`
  (:func:`noise_log_density`);

- the continuous-time (Girsanov) form of the density of :math:`dX = (f + \sigma u)\,dt + \sigma\,dW`
  with respect to :math:`dX = f\,dt + \sigma\,dW`, evaluated on the first process's path with its
  Brownian motion :math:`W`,

  .. math:: \log\frac{dQ^u}{dQ^0}(X) = \int_0^T u(t, X_t)\cdot dW_t + \frac12 \int_0^T |u(t, X_t)|^2\,dt
            \approx \sum_k u_k\cdot\Delta W_k + \tfrac12 |u_k|^2 h_k
            \qquad\text{(:func:`girsanov_log_ratio`)}.

  On Euler-Maruyama paths with a state-independent :math:`\sigma` the Itô sum equals the
  discrete ratio :math:`\log p_F^u - \log p_F^0` exactly.

Shapes: paths ``(steps + 1, batch, d)``; every function returns ``(batch,)``.

References
----------
Richter, Berner, "Improved sampling via learned diffusions", ICLR 2024 (path-space
divergences, log-variance loss). Vargas, Grathwohl, Doucet, "Denoising Diffusion Samplers",
ICLR 2023, and Berner, Richter, Ullrich, "An optimal control perspective on diffusion-based
generative modeling", TMLR 2024 (discrete-time Radon-Nikodym derivatives).
"""

from __future__ import annotations

import torch

from oplearn.errors import OplearnError
from oplearn.sde.solvers import EulerMaruyama, Path, Solver
from oplearn.sde.terms import SDE, UnderdampedSDE


def forward_log_density(sde: SDE | UnderdampedSDE, path: Path, solver: Solver | None = None) -> torch.Tensor:
    """:math:`\\log p_F`: the log-density of ``path``'s transitions under the kernels of ``sde`` and
    ``solver`` (default Euler-Maruyama), drift evaluated along the path (module docstring)."""
    solver = solver or EulerMaruyama()
    tr = solver.transitions(path)
    mean, sigma, variance = solver.kernel(sde, tr.t_forward, tr.given_forward, tr.start, tr.h)
    return _per_sample(solver.kernel_noise(sde).log_normal(tr.end - mean, sigma, variance), path)


def backward_log_density(sde: SDE | UnderdampedSDE, path: Path, solver: Solver | None = None) -> torch.Tensor:
    """:math:`\\log p_B`: the log-density of the reversed transitions (``end`` back to ``start``) under the
    kernels of a backward-pointing ``sde`` (module docstring)."""
    solver = solver or EulerMaruyama()
    tr = solver.transitions(path)
    mean, sigma, variance = solver.kernel(sde, tr.t_backward, tr.given_backward, tr.end, tr.h)
    return _per_sample(solver.kernel_noise(sde).log_normal(tr.start - mean, sigma, variance), path)


def noise_log_density(sde: SDE | UnderdampedSDE, path: Path, solver: Solver | None = None) -> torch.Tensor:
    """:math:`\\log p_F` of the path ``sde`` itself generated, from its normals (``keep_noise=True``) and
    the kernels' coefficients alone: no drift or control is evaluated when the coefficient does
    not depend on them. Equal to :func:`forward_log_density` on such a path."""
    solver = solver or EulerMaruyama()
    tr = solver.transitions(path)
    if tr.noise is None:
        raise OplearnError("path log-density: the normals were not kept (solve with keep_noise=True)")
    noise = solver.kernel_noise(sde)
    sigma, variance = solver.kernel_scale(sde, tr.t_forward, tr.given_forward, tr.start, tr.h)
    step = noise.apply(sigma, torch.sqrt(variance) * tr.noise)
    return _per_sample(noise.log_normal(step, sigma, variance), path)


def _per_sample(log_densities: torch.Tensor, path: Path) -> torch.Tensor:
    """Sum flattened transition log-densities ``(n,)`` into ``(batch,)``."""
    return log_densities.reshape(-1, path.xs.shape[1]).sum(0)


def girsanov_log_ratio(controls: torch.Tensor, increments: torch.Tensor, step_sizes: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_k u_k\cdot\Delta W_k + \tfrac12 |u_k|^2 h_k` (module docstring).

    Shapes: ``controls, increments (steps, batch, m)``, ``step_sizes`` broadcastable to
    ``(steps, batch, 1)`` (:meth:`Path.step_sizes`) -> ``(batch,)``.
    """
    return ((controls * increments).sum(-1) + 0.5 * controls.square().sum(-1) * step_sizes[..., 0]).sum(0)
