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
from oplearn.sde.solvers import Path
from oplearn.sde.terms import SDE


def _full(path: Path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Times ``(steps + 1, batch)``, positions ``(steps + 1, batch, d)`` and steps ``(steps, batch, 1)``."""
    xs = path.xs
    if xs.shape[0] != path.times.shape[0]:
        raise OplearnError("path log-density: the path was not kept (solve with keep_path=True)")
    t = path.times if path.times.ndim == 2 else path.times[:, None].expand(-1, xs.shape[1])
    return t, xs, path.step_sizes().expand(-1, xs.shape[1], 1)


def _gaussian_steps(sde: SDE, t, x, y, h) -> torch.Tensor:
    """``sum_k log N(y_k; x_k + f(t_k, x_k) h_k, sigma sigma^T h_k)`` with everything flattened over steps."""
    steps, batch, d = x.shape
    t, x, y, h = t.reshape(-1), x.reshape(-1, d), y.reshape(-1, d), h.reshape(-1, 1)
    sigma = sde.diffusion(t, x)
    mean = x + sde.drift(t, x) * h
    return sde.noise.log_normal(y - mean, sigma, h).reshape(steps, batch).sum(0)


def forward_log_density(sde: SDE, path: Path) -> torch.Tensor:
    """:math:`\\log p_F(x_{1:N} \\mid x_0)` under the Euler-Maruyama transitions of ``sde`` (module docstring)."""
    t, xs, h = _full(path)
    return _gaussian_steps(sde, t[:-1], xs[:-1], xs[1:], h)


def backward_log_density(sde: SDE, path: Path) -> torch.Tensor:
    """:math:`\\log p_B(x_{0:N-1} \\mid x_N)` for a backward-pointing drift (module docstring)."""
    t, xs, h = _full(path)
    return _gaussian_steps(sde, t[1:], xs[1:], xs[:-1], h)


def noise_log_density(sde: SDE, path: Path) -> torch.Tensor:
    """:math:`\\sum_k \\log\\mathcal N(\\sigma\\Delta W_k; 0, \\sigma\\sigma^\\top h_k)`: the forward density of
    the path ``sde`` itself generated with Euler-Maruyama, from its normals (``keep_noise=True``)."""
    t, xs, h = _full(path)
    dw = path.increments()
    steps, batch, d = xs[:-1].shape
    tt, x, hh = t[:-1].reshape(-1), xs[:-1].reshape(-1, d), h.reshape(-1, 1)
    sigma = sde.diffusion(tt, x)
    step = sde.noise.apply(sigma, dw.reshape(steps * batch, -1))
    return sde.noise.log_normal(step, sigma, hh).reshape(steps, batch).sum(0)


def girsanov_log_ratio(controls: torch.Tensor, increments: torch.Tensor, step_sizes: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_k u_k\cdot\Delta W_k + \tfrac12 |u_k|^2 h_k` (module docstring).

    Shapes: ``controls, increments (steps, batch, m)``, ``step_sizes`` broadcastable to
    ``(steps, batch, 1)`` (:meth:`Path.step_sizes`) -> ``(batch,)``.
    """
    return ((controls * increments).sum(-1) + 0.5 * controls.square().sum(-1) * step_sizes[..., 0]).sum(0)
