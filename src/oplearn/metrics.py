r"""Error metrics between predicted and true fields, each defined exactly by its formula.

Every metric acts per sample: ``pred, true: (batch, channels, *spatial) -> (batch,)``
(:func:`frmse` returns a dict of such tensors). Notation: for one sample, :math:`p` and
:math:`t` are the predicted and true fields, :math:`e = p - t`, :math:`\sum_x` runs over
the :math:`N` grid points, :math:`\mathrm{mean}_x = \frac{1}{N}\sum_x`, and :math:`c` indexes
the :math:`C` channels. Metrics are meant for physical (un-normalised) units.

Trajectories ``(batch, time, channels, *spatial)`` are scored per time step with
:func:`per_time_step`, which returns ``(batch, time)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from oplearn.derivatives import gradient
from oplearn.grids import Grid

Metric = Callable[..., "torch.Tensor | dict[str, torch.Tensor]"]

#: Radial Fourier-mode bands of :func:`frmse`: ``name -> [lo, hi)`` in mode index.
FRMSE_BANDS = {"low": (0, 4), "mid": (4, 12), "high": (12, math.inf)}

#: Variance floor of :func:`vrmse` (as in The Well).
VRMSE_EPS = 1e-7


def _check(pred: torch.Tensor, true: torch.Tensor, min_ndim: int = 2) -> None:
    if pred.shape != true.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and true {tuple(true.shape)} differ in shape")
    if pred.ndim < min_ndim:
        raise ValueError(f"expected (batch, channels, *spatial) fields, got shape {tuple(pred.shape)}")


def relative_l2(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    r"""Relative L2 error over all points and channels (the FNO papers' metric).

    .. math:: \frac{\lVert p - t \rVert_2}{\lVert t \rVert_2}, \qquad
              \lVert f \rVert_2^2 = \sum_c \sum_x f_c(x)^2

    On a uniform grid the ratio of sums equals the ratio of integrals (the cell volume
    cancels), so the value does not depend on the resolution.

    Shapes: ``(batch, ...) -> (batch,)``.
    """
    _check(pred, true)
    return (pred - true).flatten(1).norm(dim=1) / true.flatten(1).norm(dim=1)


def relative_l2_on_mesh(pred: torch.Tensor, true: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    r"""Relative L2 error of fields at the nodes of one mesh or point cloud, with quadrature weights.

    .. math:: \frac{\sqrt{\sum_i \mu_i \sum_c e_c(x_i)^2}}{\sqrt{\sum_i \mu_i \sum_c t_c(x_i)^2}}

    With the lumped weights :math:`\mu_i` of a triangle mesh
    (:attr:`oplearn.geometry.mesh.TriangleMesh.node_weights`) it is the ratio of the
    :math:`L^2(\Omega)` norms of the piecewise-linear fields up to mass lumping, so it does not
    depend on how finely or how unevenly the domain is meshed.

    Shapes: ``pred, true (N, channels)``, ``weights (N,) -> ()``.
    """
    if pred.shape != true.shape or pred.ndim != 2 or weights.shape != pred.shape[:1]:
        raise ValueError(
            f"expected pred and true (N, channels) and weights (N,), got {tuple(pred.shape)}, {tuple(true.shape)}, {tuple(weights.shape)}"
        )
    w = weights.to(pred)[:, None]
    return ((pred - true).square() * w).sum().sqrt() / (true.square() * w).sum().sqrt()


def relative_h1(pred: torch.Tensor, true: torch.Tensor, grid: Grid) -> torch.Tensor:
    r"""Relative H1 error over all points and channels.

    .. math:: \sqrt{\frac{\lVert e \rVert^2 + \lVert \nabla e \rVert^2}
                         {\lVert t \rVert^2 + \lVert \nabla t \rVert^2}}, \qquad
              \lVert f \rVert^2 = h^d \sum_c \sum_x f_c(x)^2,

    with :math:`h^d` the grid's cell volume (it cancels) and :math:`\nabla` from
    :func:`oplearn.derivatives.gradient` (spectral on periodic grids, second-order finite
    differences otherwise) in the grid's physical units, so the value does not depend on
    the resolution.

    Shapes: ``(batch, ..., *grid.shape) -> (batch,)``.
    """
    _check(pred, true)
    e = pred - true

    def squared_norm(f: torch.Tensor) -> torch.Tensor:
        return f.flatten(1).square().sum(dim=1) + gradient(f, grid).flatten(1).square().sum(dim=1)

    return torch.sqrt(squared_norm(e) / squared_norm(true))


def rmse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    r"""Root-mean-square error over all points and channels.

    .. math:: \sqrt{\frac{1}{C}\sum_c \mathrm{mean}_x\, e_c(x)^2}

    Shapes: ``(batch, ...) -> (batch,)``.
    """
    _check(pred, true)
    return (pred - true).flatten(1).square().mean(dim=1).sqrt()


def nrmse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    r"""Normalised RMSE (PDEBench's nRMSE), per channel then averaged over channels.

    .. math:: \frac{1}{C}\sum_c \frac{\sqrt{\mathrm{mean}_x\, e_c(x)^2}}{\sqrt{\mathrm{mean}_x\, t_c(x)^2}}

    For trajectories PDEBench averages this over time steps: use :func:`per_time_step`.

    Shapes: ``(batch, channels, *spatial) -> (batch,)``.
    """
    _check(pred, true, 3)
    e2 = (pred - true).flatten(2).square().mean(dim=2)
    t2 = true.flatten(2).square().mean(dim=2)
    return (e2.sqrt() / t2.sqrt()).mean(dim=1)


def max_error(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    r"""Largest absolute error over all points and channels.

    .. math:: \max_{c, x} \lvert e_c(x) \rvert

    Shapes: ``(batch, ...) -> (batch,)``.
    """
    _check(pred, true)
    return (pred - true).flatten(1).abs().amax(dim=1)


def vrmse_per_channel(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    r"""Variance-scaled RMSE of each channel, as The Well computes it.

    .. math:: \mathrm{VRMSE}_c = \sqrt{\frac{\mathrm{mean}_x\, e_c(x)^2}{s_c^2 + 10^{-7}}}, \qquad
              s_c^2 = \frac{1}{N - 1}\sum_x \big(t_c(x) - \mathrm{mean}_x\, t_c\big)^2

    (The Well's ``VRMSE``: ``torch.std`` over the spatial axes, which divides by :math:`N - 1`,
    and the floor :data:`VRMSE_EPS` on the variance). Predicting the spatial mean of the truth
    scores :math:`\sqrt{(N - 1) / N}`.

    Shapes: ``(batch, channels, *spatial) -> (batch, channels)``.
    """
    _check(pred, true, 3)
    e2 = (pred - true).flatten(2).square().mean(dim=2)
    var = true.flatten(2).var(dim=2, correction=1)
    return torch.sqrt(e2 / (var + VRMSE_EPS))


def vrmse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    r"""Variance-scaled RMSE (The Well's VRMSE) averaged over channels: :math:`\frac{1}{C}\sum_c
    \mathrm{VRMSE}_c` (:func:`vrmse_per_channel`).

    Shapes: ``(batch, channels, *spatial) -> (batch,)``.
    """
    return vrmse_per_channel(pred, true).mean(dim=1)


def brmse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    r"""RMSE at the boundary of the box (PDEBench's bRMSE), per channel then averaged over channels.

    .. math:: \frac{1}{C}\sum_c \sqrt{\frac{1}{\lvert \partial \rvert}\sum_{x \in \partial} e_c(x)^2}

    where :math:`\partial` lists the nodes of every face of the box, the first and the last
    node along each axis (an edge or corner node once per face it lies on), so
    :math:`\lvert \partial \rvert = \sum_d 2 \prod_{j \ne d} n_j` (2 nodes in 1D,
    :math:`2 n_x + 2 n_y` in 2D), as PDEBench's ``metric_func`` computes it in 1D and 2D (its 3D
    branch pools the channels) and on every grid, periodic ones included. PDEBench then
    averages over samples, channels and time steps, as :func:`evaluate_metrics` does.

    Shapes: ``(batch, channels, *spatial) -> (batch,)``.
    """
    _check(pred, true, 3)
    e2 = (pred - true).square()
    faces = [face for d in range(2, e2.ndim) for face in (e2.select(d, 0), e2.select(d, -1))]
    total = sum(face.reshape(*face.shape[:2], -1).sum(dim=2) for face in faces)
    count = sum(face[0, 0].numel() for face in faces)
    return (total / count).sqrt().mean(dim=1)


def crmse(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    r"""Error of the conserved quantity, the spatial mean of each channel (PDEBench's cRMSE), per sample.

    .. math:: \delta_c = \mathrm{mean}_x\, p_c - \mathrm{mean}_x\, t_c = \mathrm{mean}_x\, e_c, \qquad
              \mathrm{cRMSE} = \frac{1}{C}\sum_c \sqrt{\mathrm{mean}_b\, \delta_{bc}^2}

    This returns :math:`\delta_{bc}`; :func:`evaluate_metrics` takes the root mean square over
    samples and then the mean over channels (and time steps), as PDEBench's ``metric_func``
    does (:data:`RMS_OVER_SAMPLES`).

    Shapes: ``(batch, channels, *spatial) -> (batch, channels)``.
    """
    _check(pred, true, 3)
    return (pred - true).flatten(2).mean(dim=2)


def well_time_windows(steps: int, count: int = 5) -> list[tuple[int, int]]:
    r"""The Well's rollout windows ``[a, b)`` of a trajectory of ``steps`` predicted steps.

    With :math:`K = \min(\text{count}, \text{steps})` the bounds are :math:`0` and
    :math:`\lfloor e^{x_k} \rfloor` for :math:`K` points :math:`x_k` evenly spaced in
    :math:`[0, \log \text{steps}]`: geometric windows, short near the start of the rollout
    (``steps = 100``: ``0:1, 1:3, 3:10, 10:31, 31:100``), as The Well's trainer splits its
    rollout losses (``num_time_intervals = 5``; empty windows dropped). A single window when ``steps`` is 1.
    """
    k = min(count, steps)
    if k < 2:
        return [(0, steps)]
    bounds = [0] + [int(math.exp(x)) for x in torch.linspace(0, math.log(steps), k, dtype=torch.float64).tolist()]
    bounds[-1] = steps  # exp(log(steps)) may round below steps
    return [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


@torch.no_grad()
def vrmse_by_field(
    pred: torch.Tensor, true: torch.Tensor, names: list[str], windows: int = 5
) -> dict[str, dict[str, float]]:
    """VRMSE of each field (channel) and of their mean (``"full"``), over all steps (``"all"``)
    and in The Well's rollout windows (:func:`well_time_windows`, keys ``"a:b"``, when there are
    several): means over samples, then over the steps of each window, as The Well reports them.

    Shapes: ``(batch, time, channels, *spatial)`` (steady fields: ``time = 1``); ``names`` has
    one entry per channel.
    """
    if pred.ndim < 4 or pred.shape[2] != len(names):
        raise ValueError(
            f"expected (batch, time, {len(names)} channels, *spatial) fields, got shape {tuple(pred.shape)}"
        )
    per_step = per_time_step(vrmse_per_channel, pred.double(), true.double()).mean(dim=0)  # (time, channels)
    spans = well_time_windows(per_step.shape[0], windows)
    out = {}
    for name, column in [*zip(names, per_step.T), ("full", per_step.mean(dim=1))]:
        out[name] = {"all": column.mean().item()}
        if len(spans) > 1:
            out[name].update({f"{a}:{b}": column[a:b].mean().item() for a, b in spans})
    return out


def radial_mode_index(shape: tuple[int, ...], device: torch.device | str | None = None) -> torch.Tensor:
    r"""The radial index :math:`r(k) = \lfloor \lVert k \rVert_2 \rfloor` of every DFT mode.

    :math:`k` is the signed integer mode vector of ``torch.fft.fftn`` ordering
    (``fftfreq(n) * n`` per axis), i.e. the number of periods across the domain.

    Shapes: ``shape`` of the grid ``-> shape`` (int64).
    """
    ks = [torch.fft.fftfreq(n, d=1.0 / n, dtype=torch.float64, device=device) for n in shape]
    squared = sum(k.square() for k in torch.meshgrid(*ks, indexing="ij"))
    return torch.floor(torch.sqrt(squared)).long()


def radial_power_spectrum(fields: torch.Tensor) -> torch.Tensor:
    r"""The mean radially binned power spectrum of fields, per channel.

    .. math::

        P_c(r) = \frac{1}{B} \sum_b \sum_{k:\ \lfloor \lVert k \rVert \rfloor = r} \lvert \hat u_{bc}(k) \rvert^2,
        \qquad \hat u(k) = \frac{1}{N} \sum_x u(x)\, e^{-2\pi i\, k \cdot j(x) / n},

    over the full DFT of each sample (modes :math:`k` as in :func:`radial_mode_index`), so that
    :math:`\sum_r P_c(r)` is the mean square of channel :math:`c` (Parseval).

    Shapes: ``(batch, channels, *spatial) -> (channels, r_max + 1)``.
    """
    dims = tuple(range(2, fields.ndim))
    power = torch.fft.fftn(fields, dim=dims, norm="forward").abs().square().mean(dim=0)  # (C, *spatial)
    r = radial_mode_index(tuple(fields.shape[2:]), device=fields.device).flatten()
    out = torch.zeros(fields.shape[1], int(r.max()) + 1, dtype=power.dtype, device=fields.device)
    return out.index_add_(1, r, power.flatten(1))


def frmse(pred: torch.Tensor, true: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""RMSE carried by the low, mid and high Fourier bands (PDEBench's fRMSE bands).

    .. math::

        \hat e_c(k) = \frac{1}{N}\sum_x e_c(x)\, e^{-2\pi i\, k \cdot j(x) / n}, \qquad
        \mathrm{fRMSE}_B = \sqrt{\frac{1}{C}\sum_c \sum_{k:\ r(k) \in B} \lvert \hat e_c(k) \rvert^2},

    over the full (two-sided) spectrum, with :math:`r(k)` from :func:`radial_mode_index` and
    bands ``low`` :math:`[0, 4)`, ``mid`` :math:`[4, 12)`, ``high`` :math:`[12, \infty)`
    (:data:`FRMSE_BANDS`). By Parseval the bands split the RMSE exactly:
    :math:`\sum_B \mathrm{fRMSE}_B^2 = \mathrm{RMSE}^2`. A sinusoid error
    :math:`A \sin(2\pi k \cdot x / L)` scores :math:`A / \sqrt{2}` in the band of
    :math:`r(k)`. PDEBench's code normalises differently (it sums only the non-negative
    quadrant into shells and averages the shells' amplitudes within a band), so its
    numbers are not directly comparable.

    Shapes: ``(batch, channels, *spatial) -> {"low", "mid", "high"}: (batch,)``.
    """
    _check(pred, true, 3)
    spatial = tuple(pred.shape[2:])
    dims = tuple(range(2, pred.ndim))
    power = torch.fft.fftn(pred - true, dim=dims, norm="forward").abs().square()  # |e_hat_c(k)|^2
    r = radial_mode_index(spatial, device=pred.device)
    out = {}
    for name, (lo, hi) in FRMSE_BANDS.items():
        band = ((r >= lo) & (r < hi)).to(power.dtype)
        out[name] = (power * band).flatten(2).sum(dim=2).mean(dim=1).sqrt()
    return out


def per_time_step(
    metric: Metric, pred: torch.Tensor, true: torch.Tensor, *args: Grid
) -> torch.Tensor | dict[str, torch.Tensor]:
    """A metric of every time step of trajectories, each step scored as a sample.

    ``metric(pred[:, s], true[:, s], *args)`` for every step ``s``, computed in one call.

    Shapes: ``(batch, time, channels, *spatial) -> (batch, time)`` (or a dict of those; metrics
    with per-channel values give ``(batch, time, channels)``).
    """
    _check(pred, true, 4)
    batch, time = pred.shape[:2]
    value = metric(pred.flatten(0, 1), true.flatten(0, 1), *args)
    if isinstance(value, dict):
        return {k: v.view(batch, time, *v.shape[1:]) for k, v in value.items()}
    return value.view(batch, time, *value.shape[1:])


#: Name -> metric function. Metrics in :data:`GRID_METRICS` also take the grid.
METRICS: dict[str, Metric] = {
    "relative_l2": relative_l2,
    "relative_h1": relative_h1,
    "rmse": rmse,
    "nrmse": nrmse,
    "max_error": max_error,
    "vrmse": vrmse,
    "frmse": frmse,
    "brmse": brmse,
    "crmse": crmse,
}
GRID_METRICS = frozenset({"relative_h1"})
#: Metrics whose per-sample values :func:`evaluate_metrics` combines as PDEBench does: per
#: channel (and time step) the root mean square over samples, then the mean.
RMS_OVER_SAMPLES = frozenset({"crmse"})


@torch.no_grad()
def evaluate_metrics(pred: torch.Tensor, true: torch.Tensor, grid: Grid) -> dict[str, float]:
    """Every metric of :data:`METRICS`, averaged over samples, in double precision.

    Trajectories ``(batch, time, channels, *grid.shape)`` are scored per time step
    (:func:`per_time_step`) and averaged over samples and time steps (:data:`RMS_OVER_SAMPLES`:
    root mean square over samples). :func:`frmse` gives the keys ``frmse_low``, ``frmse_mid`` and
    ``frmse_high``.

    Shapes: ``pred, true: (batch, channels, *grid.shape)`` or
    ``(batch, time, channels, *grid.shape)``.
    """
    _check(pred, true, grid.ndim + 2)
    if tuple(pred.shape[-grid.ndim :]) != grid.shape:
        raise ValueError(f"fields of shape {tuple(pred.shape)} do not end with the grid shape {grid.shape}")
    if pred.ndim not in (grid.ndim + 2, grid.ndim + 3):
        raise ValueError(
            f"expected (batch, channels, *spatial) or (batch, time, channels, *spatial) fields on a "
            f"{grid.ndim}D grid, got shape {tuple(pred.shape)}"
        )
    pred, true = pred.double(), true.double()
    trajectory = pred.ndim == grid.ndim + 3
    out: dict[str, float] = {}
    for name, metric in METRICS.items():
        args = (grid,) if name in GRID_METRICS else ()
        value = per_time_step(metric, pred, true, *args) if trajectory else metric(pred, true, *args)
        if name in RMS_OVER_SAMPLES:
            out[name] = value.square().mean(dim=0).sqrt().mean().item()
        elif isinstance(value, dict):
            out.update({f"{name}_{band}": v.mean().item() for band, v in value.items()})
        else:
            out[name] = value.mean().item()
    return out
