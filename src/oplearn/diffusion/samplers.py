r"""Samplers: solvers of the probability-flow ODE of a denoiser, from noise to data.

With :math:`x_\sigma = x_0 + \sigma\varepsilon` (white or Gaussian-random-field
:math:`\varepsilon`) and the denoiser :math:`D(x; \sigma) \approx E[x_0 \mid x_\sigma = x]`, the
probability-flow ODE (Karras et al. 2022) is

.. math:: \frac{dx}{d\sigma} = \frac{x - D(x; \sigma)}{\sigma}.

In :math:`\lambda = -\log\sigma` its exact solution from :math:`s` to :math:`t < s` is

.. math:: x_t = \frac{t}{s} x_s + t \int_{\lambda_s}^{\lambda_t} e^{\lambda} D(x_\lambda; e^{-\lambda})\, d\lambda,

and the solvers differ in how they approximate :math:`D` along the step
(:math:`h = \log(s / t)`, :math:`\varphi_1 = 1 - e^{-h} = 1 - t/s`):

============  ===============================================  =====  ===========================
name          method                                           order  denoiser evaluations
============  ===============================================  =====  ===========================
``euler``     DDIM = DPM-Solver++(1): :math:`D` constant        1      ``N``
``heun``      EDM Heun (trapezoidal), Euler step to 0           2      ``2N - 1`` (``2N`` if the last level is > 0)
``dpmpp2m``   DPM-Solver++(2M): linear in :math:`\lambda`       2      ``N``
              through the previous step's :math:`D`
``dpmpp3m``   DPM-Solver++(3M): quadratic in :math:`\lambda`    3      ``N``
              through the last two steps' :math:`D`
============  ===============================================  =====  ===========================

for ``N = len(sigmas) - 1`` steps. The multistep solvers start with lower orders (first
step order 1, second step of ``dpmpp3m`` order 2) and every solver's step to
:math:`\sigma = 0` returns :math:`D` (the limit of the first-order step).

Samplers see the denoiser only through calls ``denoise(x, sigma)``: guidance composes by
wrapping the denoiser (a guided denoiser is a denoiser), so samplers stay guidance-agnostic.
A denoiser may also offer ``split(x, sigma) -> (smooth, stiff)`` with ``smooth + stiff`` its
output, where ``stiff`` is a correction that changes abruptly from one call to the next (the
step-matched observation guidance of :class:`oplearn.inverse.guidance.GuidedDenoiser`). The
multistep solvers then extrapolate only the smooth part through their history and take the
stiff part at first order, :math:`\varphi_1` times its value at :math:`s`: extrapolating a
correction that is large on one step and small on the next amplifies it, and a step-matched
correction is already integrated over its step. The one-step solvers use the sum.

Stochastic churn (EDM, Algorithm 2) is available for ``euler`` and ``heun``: before each
step the state is moved up from :math:`\sigma` to :math:`\hat\sigma = (1 + \gamma)\sigma`,
:math:`\gamma = \min(S_{churn} / N, \sqrt 2 - 1)`, by adding
:math:`\sqrt{\hat\sigma^2 - \sigma^2}\,\varepsilon` (fresh noise of the forward process), then
stepped from :math:`\hat\sigma`. Multistep solvers assume one smooth trajectory and refuse churn.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar

import torch

from oplearn.errors import ConfigError
from oplearn.progress import progress as progress_bar

#: ``denoise(x: (batch, C, *spatial), sigma: (batch,)) -> (batch, C, *spatial)``.
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Sampler:
    """One ODE solver: :meth:`step` moves ``x`` from level ``s`` to level ``t < s``.

    A sampler object is used for one trajectory (multistep solvers keep the history of
    their denoiser outputs); :func:`sample` creates a fresh one per call.
    """

    name: ClassVar[str]
    order: ClassVar[int]
    #: Whether stochastic churn may be applied before a step.
    allows_churn: ClassVar[bool] = False

    def evaluations(self, sigmas: torch.Tensor) -> int:
        """Denoiser evaluations for a whole schedule ``sigmas`` (one per step)."""
        return len(sigmas) - 1

    def plan(self, levels: list[float]) -> None:
        """Called by :func:`sample` with the whole schedule before the first step."""

    def step(self, denoise: Denoiser, x: torch.Tensor, s: float, t: float) -> torch.Tensor:
        raise NotImplementedError


def _call(denoise: Denoiser, x: torch.Tensor, sigma: float) -> torch.Tensor:
    return denoise(x, torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device))


def _call_split(denoise: Denoiser, x: torch.Tensor, sigma: float) -> tuple[torch.Tensor, torch.Tensor | float]:
    """``(smooth, stiff)`` parts of the denoiser's output (module docstring); ``stiff = 0`` for a plain denoiser."""
    if not hasattr(denoise, "split"):
        return _call(denoise, x, sigma), 0.0
    return denoise.split(x, torch.full((x.shape[0],), sigma, dtype=x.dtype, device=x.device))


class Euler(Sampler):
    r"""DDIM / DPM-Solver++(1) / EDM Euler: :math:`x_t = \frac{t}{s} x_s + (1 - \frac{t}{s}) D(x_s; s)`."""

    name = "euler"
    order = 1
    allows_churn = True

    def step(self, denoise: Denoiser, x: torch.Tensor, s: float, t: float) -> torch.Tensor:
        d = _call(denoise, x, s)
        return (t / s) * x + (1 - t / s) * d


class Heun(Sampler):
    r"""EDM Heun: an Euler predictor :math:`\tilde x = x + (t - s) d_s`, :math:`d = (x - D) / \sigma`,
    corrected with the trapezoidal rule :math:`x_t = x + (t - s)(d_s + \tilde d_t) / 2`;
    the step to :math:`t = 0` is the Euler step (the slope at 0 is undefined)."""

    name = "heun"
    order = 2
    allows_churn = True

    def evaluations(self, sigmas: torch.Tensor) -> int:
        steps = len(sigmas) - 1
        return 2 * steps - int(float(sigmas[-1]) == 0.0)

    def step(self, denoise: Denoiser, x: torch.Tensor, s: float, t: float) -> torch.Tensor:
        slope = (x - _call(denoise, x, s)) / s
        predicted = x + (t - s) * slope
        if t == 0:
            return predicted
        corrected = (predicted - _call(denoise, predicted, t)) / t
        return x + (t - s) * 0.5 * (slope + corrected)


class DPMSolverPP2M(Sampler):
    r"""DPM-Solver++(2M) (Lu et al. 2022): the first-order step with :math:`D` replaced by

    .. math:: \hat D = D_s + \frac{D_s - D_{prev}}{2 r}, \qquad r = h_{prev} / h,

    where :math:`D_{prev}` is the previous step's denoiser output and :math:`h_{prev}` that
    step's :math:`\log` ratio; the first step is first order. A split denoiser's stiff part
    is added to :math:`\hat D` unextrapolated (module docstring)."""

    name = "dpmpp2m"
    order = 2

    def __init__(self) -> None:
        self._previous: tuple[torch.Tensor, float] | None = None  # (smooth D, h) of the last step

    def step(self, denoise: Denoiser, x: torch.Tensor, s: float, t: float) -> torch.Tensor:
        d, stiff = _call_split(denoise, x, s)
        if t == 0:
            return d + stiff
        h = math.log(s / t)
        estimate = d + stiff
        if self._previous is not None:
            d_prev, h_prev = self._previous
            estimate = estimate + (d - d_prev) / (2 * h_prev / h)
        self._previous = (d, h)
        return (t / s) * x + (1 - t / s) * estimate


class DPMSolverPP3M(Sampler):
    r"""DPM-Solver++(3M): the exponential integrator with :math:`D` interpolated by a quadratic
    in :math:`\lambda` through the current and the last two outputs:

    .. math::

        D(\lambda_s + \tau) \approx D_s + D' \tau + D'' \tau^2 / 2, \qquad
        x_t = \frac{t}{s} x_s + \varphi_1 D_s + (h - \varphi_1) D' + (h^2/2 - h + \varphi_1) D'',

    with :math:`D' = \delta_{01} + f_2 h_1`, :math:`D'' = 2 f_2` from the divided differences
    :math:`\delta_{01} = (D_s - D_{-1}) / h_1`, :math:`\delta_{12} = (D_{-1} - D_{-2}) / h_2`,
    :math:`f_2 = (\delta_{01} - \delta_{12}) / (h_1 + h_2)` (:math:`h_1, h_2` the previous
    steps' :math:`\lambda` increments). With one previous output the quadratic term is dropped
    and :math:`D' = \delta_{01}` (second order); the first step is first order. A split
    denoiser's stiff part joins :math:`D_s` in the :math:`\varphi_1` term only (module docstring)."""

    name = "dpmpp3m"
    order = 3

    def __init__(self) -> None:
        self._history: list[tuple[torch.Tensor, float]] = []  # (smooth D, lambda), newest last, at most 2

    def step(self, denoise: Denoiser, x: torch.Tensor, s: float, t: float) -> torch.Tensor:
        d, stiff = _call_split(denoise, x, s)
        if t == 0:
            return d + stiff
        lam = -math.log(s)
        h = math.log(s / t)
        phi1 = -math.expm1(-h)
        out = (t / s) * x + phi1 * (d + stiff)
        if self._history:
            d1, lam1 = self._history[-1]
            h1 = lam - lam1
            slope = (d - d1) / h1
            if len(self._history) == 2:
                d2, lam2 = self._history[0]
                h2 = lam1 - lam2
                curvature = (slope - (d1 - d2) / h2) / (h1 + h2)  # f_2
                slope = slope + curvature * h1
                out = out + (h * h / 2 - h + phi1) * (2 * curvature)
            out = out + (h - phi1) * slope
        self._history = [*self._history[-1:], (d, lam)]
        return out


def _exponential_weights(nodes: list[float], h: float) -> list[float]:
    r"""Weights :math:`W_j` with :math:`\sum_j W_j P(h u_j) = \int_0^h e^{\tau - h} P(\tau)\, d\tau`
    for every polynomial :math:`P` of degree ``< len(nodes)``; nodes :math:`u_j` in units of ``h``.

    They solve :math:`\sum_j w_j u_j^k = M_k`, :math:`W_j = h w_j`, with the moments
    :math:`M_k = \int_0^1 e^{h(u - 1)} u^k du`: :math:`M_0 = (1 - e^{-h}) / h`,
    :math:`M_k = (1 - k M_{k-1}) / h` (the recursion loses about :math:`k \log_{10}(1/h)` digits,
    harmless in float64 for the step sizes of a sampler).
    """
    moments = [-math.expm1(-h) / h]
    for k in range(1, len(nodes)):
        moments.append((1 - k * moments[-1]) / h)
    vandermonde = torch.tensor([[u**k for u in nodes] for k in range(len(nodes))], dtype=torch.float64)
    weights = torch.linalg.solve(vandermonde, torch.tensor(moments, dtype=torch.float64))
    return [h * float(w) for w in weights]


class UniPC(Sampler):
    r"""UniPC (Zhao et al. 2023) in data-prediction form: a multistep predictor (UniP) and a
    corrector (UniC) that raises its order by one at no extra denoiser evaluation.

    Both integrate :math:`x_t = \frac{t}{s} x_s + \int_0^h e^{\tau - h} D(\lambda_s + \tau)\, d\tau`
    exactly for a polynomial :math:`D` in :math:`\lambda` (:func:`_exponential_weights`):

    * predictor: the line through :math:`D_s` and the previous level's output (order 2; the first
      step order 1), giving :math:`\tilde x_t`;
    * corrector: the quadratic through those and :math:`D_t = D(\tilde x_t; t)` (order 3).

    :math:`D_t` is the next step's :math:`D_s`, so each step costs one evaluation. Into the last
    level above 0 the corrector is skipped (its evaluation would not be reused), and the step to
    :math:`\sigma = 0` returns :math:`D` at the final state, like every solver here. A split
    denoiser's stiff part enters both at first order, :math:`\varphi_1` times its value at
    :math:`s` (module docstring)."""

    name = "unipc"
    order = 3

    def __init__(self) -> None:
        self._previous: tuple[torch.Tensor, float] | None = None  # (smooth D, lambda) of the previous level
        self._pending: tuple[torch.Tensor, torch.Tensor | float] | None = None  # split D at the current state
        self._last_level: float | None = None

    def plan(self, levels: list[float]) -> None:
        self._last_level = min(v for v in levels if v > 0)

    def step(self, denoise: Denoiser, x: torch.Tensor, s: float, t: float) -> torch.Tensor:
        d, stiff = self._pending if self._pending is not None else _call_split(denoise, x, s)
        self._pending = None
        if t == 0:
            return d + stiff
        lam, h = -math.log(s), math.log(s / t)
        nodes, values = [0.0], [d]
        if self._previous is not None:
            nodes, values = [(self._previous[1] - lam) / h, 0.0], [self._previous[0], d]
        base = (t / s) * x - math.expm1(-h) * stiff
        predicted = base + sum(w * v for w, v in zip(_exponential_weights(nodes, h), values))
        self._previous = (d, lam)
        if t == self._last_level:
            return predicted
        self._pending = _call_split(denoise, predicted, t)
        weights = _exponential_weights([*nodes, 1.0], h)
        return base + sum(w * v for w, v in zip(weights, [*values, self._pending[0]]))


#: Sampler name -> class.
SAMPLERS: dict[str, type[Sampler]] = {c.name: c for c in (Euler, Heun, DPMSolverPP2M, DPMSolverPP3M, UniPC)}


def _check_sigmas(sigmas: torch.Tensor) -> list[float]:
    values = [float(v) for v in torch.as_tensor(sigmas).reshape(-1)]
    if len(values) < 2:
        raise ValueError(f"a schedule needs at least two levels (one step), got {len(values)}")
    if not all(math.isfinite(v) for v in values) or values[-1] < 0 or any(b >= a for a, b in zip(values, values[1:])):
        raise ValueError("sigmas must be finite, strictly decreasing and >= 0 (e.g. karras_sigmas(steps))")
    return values


def sample(
    denoise: Denoiser,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    method: str = "dpmpp2m",
    churn: float = 0.0,
    generator: torch.Generator | None = None,
    progress: bool = False,
    churn_noise: Callable[[tuple[int, ...], torch.Generator | None], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Integrate the probability-flow ODE of ``denoise`` along ``sigmas`` from ``noise``.

    Parameters
    ----------
    denoise : callable
        ``denoise(x, sigma) -> x0_hat``, ``x: (batch, C, *spatial)``, ``sigma: (batch,)``.
    noise : Tensor
        The initial state at ``sigmas[0]``, already scaled: ``sigmas[0] * eps``.
    sigmas : Tensor
        Strictly decreasing levels ``(steps + 1,)``, usually ending with 0
        (:mod:`oplearn.diffusion.schedules`).
    method : str
        A key of :data:`SAMPLERS`.
    churn : float
        EDM's :math:`S_{churn}` (0: deterministic); ``euler`` and ``heun`` only.
    generator : torch.Generator, optional
        Draws the churn noise.
    progress : bool
        Show a tqdm bar over the steps.
    churn_noise : callable, optional
        ``(shape, generator) -> eps`` of the forward process (default white noise); pass
        ``GRFNoise.sample`` when the model was trained with GRF noise.

    Shapes
    ------
    ``noise: (batch, C, *spatial) -> (batch, C, *spatial)``.
    """
    if method not in SAMPLERS:
        raise ConfigError(f"unknown sampler '{method}'; choose one of {', '.join(SAMPLERS)}")
    solver = SAMPLERS[method]()
    levels = _check_sigmas(sigmas)
    if churn < 0:
        raise ValueError(f"churn must be >= 0, got {churn}")
    if churn > 0 and not solver.allows_churn:
        raise ConfigError(
            f"sampler '{method}' is a multistep solver and takes no churn; use churn with "
            f"{', '.join(n for n, c in SAMPLERS.items() if c.allows_churn)}"
        )
    steps = len(levels) - 1
    gamma = min(churn / steps, math.sqrt(2) - 1)
    draw = churn_noise or (lambda shape, gen: torch.randn(shape, generator=gen, device=noise.device, dtype=noise.dtype))
    solver.plan(levels)
    x = noise
    for i in progress_bar(range(steps), desc=f"sample ({method})", unit="step", enabled=progress):
        s, t = levels[i], levels[i + 1]
        if gamma > 0 and s > 0:
            s_hat = s * (1 + gamma)
            x = x + math.sqrt(s_hat**2 - s**2) * draw(tuple(x.shape), generator).to(x)
            s = s_hat
        x = solver.step(denoise, x, s, t)
    return x
