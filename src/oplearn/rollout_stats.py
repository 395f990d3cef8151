r"""Statistics of long rollouts of chaotic systems, and their errors against a reference.

After a few Lyapunov times a pointwise error stops meaning anything: two runs of the same
solver from nearby states decorrelate. What a surrogate must then reproduce is the
statistics of the attractor. This module measures, on trajectories
``(batch, time, channels, *spatial)`` of a periodic :class:`~oplearn.grids.Grid`:

* against the true trajectory from the same initial state: the per-step error
  (:func:`per_step_error`), the Pearson correlation per step and the *correlation time*
  (:func:`correlation_time`, PDE-Refiner's metric);
* on the rollout alone: the time to blow-up (:func:`blow_up_step`), the kinetic energy and
  its fluctuating part (TKE), the dissipation, the energy spectrum, the PDF of the field
  and its temporal auto-correlation (:func:`long_run_statistics`);
* :func:`compare_statistics` turns two such summaries into relative errors, and
  :func:`diagnose` flags a run as ``exploding``, ``damped``, ``inflated`` or ``ok``.

The field is the velocity itself for a scalar 1D field (Kuramoto-Sivashinsky: ``u``), or
the vorticity of a 2D flow (``vorticity=True``: the velocity follows from the stream
function, :func:`oplearn.pdes.navier_stokes.velocity`).

Time averages of a chaotic series are correlated in time; :func:`mean_and_error` gives the
standard error by batch means (blocks longer than the correlation time are nearly
independent), which is what "agree within sampling error" means in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from oplearn.grids import Grid
from oplearn.metrics import radial_power_spectrum
from oplearn.pdes.navier_stokes import velocity
from oplearn.solvers.spectral import Fourier

#: PDE-Refiner's correlation thresholds.
CORRELATION_THRESHOLDS = (0.8, 0.9, 0.95)


def _check_trajectories(u: torch.Tensor, grid: Grid) -> None:
    if u.ndim != grid.ndim + 3 or tuple(u.shape[3:]) != grid.shape:
        raise ValueError(f"expected trajectories (batch, time, channels, *{grid.shape}), got shape {tuple(u.shape)}")


def pearson_correlation(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    r"""Pearson correlation of each predicted frame with the true one, over channels and space.

    .. math:: \rho = \frac{\sum_x (p - \bar p)(t - \bar t)}{\sqrt{\sum_x (p - \bar p)^2 \sum_x (t - \bar t)^2}}

    Non-finite predictions score 0.

    Shapes: ``(batch, time, ...) -> (batch, time)``.
    """
    if pred.shape != true.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and true {tuple(true.shape)} differ in shape")
    p, t = pred.flatten(2).double(), true.flatten(2).double()
    p, t = p - p.mean(-1, keepdim=True), t - t.mean(-1, keepdim=True)
    rho = (p * t).sum(-1) / (p.norm(dim=-1) * t.norm(dim=-1)).clamp_min(1e-300)
    return torch.where(torch.isfinite(rho), rho, torch.zeros_like(rho))


def correlation_time(
    pred: torch.Tensor, true: torch.Tensor, thresholds: Sequence[float] = CORRELATION_THRESHOLDS
) -> dict[float, int]:
    r"""The number of rollout steps before the sample-mean Pearson correlation with the truth
    first drops to or below each threshold (PDE-Refiner's metric; the full length if it never does).

    PDE-Refiner counts the steps whose mean correlation exceeds the threshold; the two agree
    while the correlation decays monotonically, and this one ignores chance recoveries later on.

    Shapes: ``pred, true: (batch, time, ...) -> {threshold: steps}``.
    """
    rho = pearson_correlation(pred, true).mean(0)
    out = {}
    for threshold in thresholds:
        below = torch.nonzero(rho <= threshold)
        out[float(threshold)] = int(below[0, 0]) if len(below) else len(rho)
    return out


def per_step_error(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Relative L2 error of each step, averaged over the batch (``inf`` once a sample is not finite).

    Shapes: ``(batch, time, ...) -> (time,)``.
    """
    e = (pred - true).flatten(2).double().norm(dim=-1) / true.flatten(2).double().norm(dim=-1)
    return torch.where(torch.isfinite(e), e, torch.full_like(e, math.inf)).mean(0)


def blow_up_step(u: torch.Tensor, scale: float, factor: float = 10.0) -> torch.Tensor:
    """The first step at which each trajectory is not finite or its RMS exceeds ``factor * scale``
    (``scale``: the reference RMS); the trajectory length when it never does.

    Shapes: ``(batch, time, ...) -> (batch,)`` int64.
    """
    rms = u.flatten(2).double().square().mean(-1).sqrt()
    bad = ~torch.isfinite(rms) | (rms > factor * scale)
    steps = torch.full((u.shape[0],), u.shape[1], dtype=torch.long)
    first = bad.float().argmax(1)
    return torch.where(bad.any(1).cpu(), first.cpu(), steps)


def velocity_of(u: torch.Tensor, grid: Grid, vorticity: bool) -> torch.Tensor:
    """The velocity field of the stored field: the field itself (1D scalar), or the velocity of a 2D
    vorticity.

    Shapes: ``(..., 1, *grid.shape) -> (..., d, *grid.shape)``.
    """
    if not vorticity:
        return u
    fourier = Fourier(grid, u.device, dealias=False)
    u_hat, v_hat = velocity(fourier.forward(u[..., 0, :, :].double()), fourier)
    return torch.stack([fourier.inverse(u_hat), fourier.inverse(v_hat)], dim=-3)


def energy(u: torch.Tensor, grid: Grid, vorticity: bool = False) -> torch.Tensor:
    r"""Kinetic energy per unit volume of each frame, :math:`\tfrac12 \langle |\mathbf u|^2 \rangle_x`.

    Shapes: ``(batch, time, channels, *spatial) -> (batch, time)``.
    """
    return 0.5 * velocity_of(u, grid, vorticity).double().square().flatten(2).sum(-1) / math.prod(grid.shape)


def dissipation(u: torch.Tensor, grid: Grid, vorticity: bool = False, viscosity: float = 1.0) -> torch.Tensor:
    r"""Viscous dissipation rate of each frame, :math:`\nu \langle |\nabla \mathbf u|^2 \rangle_x`
    (for a periodic 2D flow, :math:`\nu \langle w^2 \rangle_x`).

    Shapes: ``(batch, time, channels, *spatial) -> (batch, time)``.
    """
    if vorticity:
        return viscosity * u.double().square().flatten(2).sum(-1) / math.prod(grid.shape)
    fourier = Fourier(grid, u.device, dealias=False)
    u_hat = fourier.forward(u.double())
    squared = sum(fourier.inverse(ik * u_hat).square() for ik in fourier.ik)
    return viscosity * squared.flatten(2).sum(-1) / math.prod(grid.shape)


def energy_spectrum(u: torch.Tensor, grid: Grid, vorticity: bool = False) -> torch.Tensor:
    r""":math:`E(r) = \tfrac12 \sum_{\lfloor |k| \rfloor = r} |\hat{\mathbf u}(k)|^2`, averaged over
    samples and frames (:func:`oplearn.metrics.radial_power_spectrum` of the velocity); sums to the energy.

    Shapes: ``(batch, time, channels, *spatial) -> (r_max + 1,)``.
    """
    velocity = velocity_of(u, grid, vorticity).double().flatten(0, 1)
    return 0.5 * radial_power_spectrum(velocity).sum(0)


def autocorrelation(u: torch.Tensor, max_lag: int) -> torch.Tensor:
    r"""Temporal auto-correlation of the field, averaged over samples, channels and points:
    :math:`C(\tau) = \langle u'(t) u'(t + \tau) \rangle / \langle u'^2 \rangle` with
    :math:`u' = u - \langle u \rangle_{t}` (the time mean at each point).

    Shapes: ``(batch, time, ...) -> (max_lag + 1,)``.
    """
    x = u.flatten(2).double()
    x = x - x.mean(1, keepdim=True)
    var = x.square().mean()
    lags = min(max_lag, u.shape[1] - 1)
    return torch.stack([(x[:, : x.shape[1] - lag] * x[:, lag:]).mean() / var for lag in range(lags + 1)])


def value_quantiles(u: torch.Tensor, levels: int = 99) -> torch.Tensor:
    """Quantiles of the field's point values at probabilities ``1/(levels+1) .. levels/(levels+1)``
    (the PDF, summarised).

    Shapes: ``(...) -> (levels,)``.
    """
    values = u.flatten().double()
    values = values[torch.isfinite(values)]
    if values.numel() > 2_000_000:  # quantile has a size limit; a strided subset is plenty
        values = values[:: values.numel() // 1_000_000 + 1]
    q = torch.arange(1, levels + 1, dtype=torch.float64) / (levels + 1)
    return torch.quantile(values, q) if values.numel() else torch.full((levels,), math.nan, dtype=torch.float64)


def mean_and_error(series: torch.Tensor, blocks: int = 8) -> tuple[float, float]:
    """Mean of a time series and its standard error by batch means.

    ``series (batch, time)``: the time axis is cut into ``blocks`` equal blocks; the block
    means of every sample are treated as independent draws (valid when a block is longer
    than the correlation time).
    """
    n = series.shape[1] // blocks * blocks
    if n == 0:
        raise ValueError(f"a series of {series.shape[1]} steps is shorter than {blocks} blocks")
    means = series[:, :n].reshape(series.shape[0], blocks, -1).mean(-1).flatten()
    return float(means.mean()), float(means.std() / math.sqrt(len(means)))


def long_run_statistics(
    u: torch.Tensor, grid: Grid, vorticity: bool = False, viscosity: float = 1.0, max_lag: int = 20
) -> dict:
    """The long-term statistics of trajectories: JSON-able numbers and lists.

    Keys: ``energy`` and ``tke`` (mean and standard error), ``dissipation`` (likewise),
    ``rms``, ``spectrum`` (:func:`energy_spectrum` over the shells below a third of the grid
    size: the band a 2/3-dealiased solver on this grid resolves, where coarse models and the
    subsampled resolved solution can be compared), ``quantiles`` (:func:`value_quantiles`),
    ``autocorrelation`` (:func:`autocorrelation`), ``frames``. Non-finite frames are left out
    (see :func:`blow_up_step`).

    Shapes: ``u: (batch, time, channels, *spatial)``.
    """
    _check_trajectories(u, grid)
    finite = torch.isfinite(u.flatten(1)).all(1)
    u = u[finite].double() if finite.any() else u[:1].nan_to_num(0.0).double()
    e = energy(u, grid, vorticity)
    fluctuation = u - u.mean(dim=(0, 1), keepdim=True)
    tke = energy(fluctuation, grid, vorticity)
    eps = dissipation(u, grid, vorticity, viscosity)
    blocks = max(1, min(8, u.shape[1] // 2))
    stats = {
        "frames": int(u.shape[1]),
        "samples": int(u.shape[0]),
        "rms": float(u.square().mean().sqrt()),
        "spectrum": energy_spectrum(u, grid, vorticity)[: -(-min(grid.shape) // 3)].tolist(),
        "quantiles": value_quantiles(u).tolist(),
        "autocorrelation": autocorrelation(u, max_lag).tolist(),
    }
    for name, series in (("energy", e), ("tke", tke), ("dissipation", eps)):
        mean, error = mean_and_error(series, blocks)
        stats[name], stats[f"{name}_error"] = mean, error
    return stats


def spectrum_error(pred: list[float] | torch.Tensor, true: list[float] | torch.Tensor) -> float:
    r"""Mean absolute difference of the log energy spectra over the shells where the reference
    holds energy, :math:`\mathrm{mean}_r |\log E_p(r) - \log E_t(r)|` (0.1: about 10 % per shell)."""
    p, t = torch.as_tensor(pred, dtype=torch.float64), torch.as_tensor(true, dtype=torch.float64)
    n = min(len(p), len(t))
    p, t = p[1:n], t[1:n]  # shell 0 holds the mean flow only
    floor = t.max() * 1e-12
    keep = t > floor
    if not keep.any():
        return math.nan
    ratio = torch.log(p[keep].clamp_min(floor) / t[keep])  # a shell without energy counts as the floor
    return float(ratio.abs().mean())


def compare_statistics(pred: dict, true: dict) -> dict[str, float]:
    """Errors of the statistics ``pred`` against ``true`` (two :func:`long_run_statistics` results).

    Relative errors of the mean energy, TKE and dissipation; :func:`spectrum_error`; the
    PDF distance, the mean absolute difference of the value quantiles over the reference
    RMS (a scaled Wasserstein-1 distance); and the mean absolute difference of the
    auto-correlation functions over their common lags.
    """
    out = {
        f"{name}_relative_error": abs(pred[name] - true[name]) / abs(true[name])
        for name in ("energy", "tke", "dissipation")
    }
    out["spectrum_log_error"] = spectrum_error(pred["spectrum"], true["spectrum"])
    qp, qt = torch.tensor(pred["quantiles"]), torch.tensor(true["quantiles"])
    out["pdf_distance"] = float((qp - qt).abs().mean() / true["rms"])
    lags = min(len(pred["autocorrelation"]), len(true["autocorrelation"]))
    ap, at = torch.tensor(pred["autocorrelation"][:lags]), torch.tensor(true["autocorrelation"][:lags])
    out["autocorrelation_error"] = float((ap - at).abs().mean())
    return out


def diagnose(
    u: torch.Tensor, true_stats: dict, grid: Grid, vorticity: bool = False, band: float = 2.0, factor: float = 10.0
) -> str:
    """``"exploding"`` if a trajectory blows up (:func:`blow_up_step` against the reference RMS);
    else, from the mean energy of the last half of the rollout against the reference energy,
    ``"damped"`` below ``1 / band`` times it, ``"inflated"`` above ``band`` times it, and
    ``"ok"`` in between.

    Shapes: ``u: (batch, time, channels, *spatial)``.
    """
    _check_trajectories(u, grid)
    if (blow_up_step(u, true_stats["rms"], factor) < u.shape[1]).any():
        return "exploding"
    ratio = float(energy(u[:, u.shape[1] // 2 :], grid, vorticity).mean()) / true_stats["energy"]
    return "damped" if ratio < 1 / band else "inflated" if ratio > band else "ok"
