"""Fields on the sphere drawn as maps: longitude and latitude in a Mollweide projection (no coastlines)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from oplearn.sphere.grid import SphereGrid


def _cell_edges(centres: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Edges between sorted node coordinates, closed by ``lo`` and ``hi``."""
    return np.concatenate([[lo], (centres[1:] + centres[:-1]) / 2, [hi]])


def plot_sphere_samples(
    inputs: torch.Tensor,
    truth: torch.Tensor,
    pred: torch.Tensor,
    grid: SphereGrid,
    title: str,
    n_samples: int = 3,
    channel: int = 0,
    name: str | None = None,
) -> Figure:
    """Input, truth, prediction and absolute error of channel ``channel`` for the first samples, as
    Mollweide maps (longitude -180..180 degrees, the input's column 0 at longitude 0).

    Shapes: ``inputs, truth, pred: (n, channels, nlat, nlon)`` on ``grid``.
    """
    n = min(n_samples, len(truth))
    lat = np.radians(grid.latitude_degrees())[::-1]  # south to north
    lon = 2 * math.pi * np.arange(grid.nlon) / grid.nlon
    lon = np.where(lon >= math.pi, lon - 2 * math.pi, lon)
    order = np.argsort(lon)
    lat_edges = _cell_edges(lat, -math.pi / 2, math.pi / 2)
    lon_edges = _cell_edges(lon[order], -math.pi, math.pi)
    fig = plt.figure(figsize=(15, 2.8 * n))
    label = f" ({name})" if name else ""
    for i in range(n):
        err = (pred[i, channel] - truth[i, channel]).abs()
        vmin, vmax = float(truth[i, channel].min()), float(truth[i, channel].max())
        panels = [
            (inputs[i, min(channel, inputs.shape[1] - 1)], "input", "viridis", None, None),
            (truth[i, channel], "truth", "magma", vmin, vmax),
            (pred[i, channel], "prediction", "magma", vmin, vmax),
            (err, "|error|", "inferno", None, None),
        ]
        for j, (field, what, cmap, lo, hi) in enumerate(panels):
            ax = fig.add_subplot(n, 4, 4 * i + j + 1, projection="mollweide")
            values = field.detach().cpu().double().numpy()[::-1][:, order]
            mesh = ax.pcolormesh(lon_edges, lat_edges, values, cmap=cmap, vmin=lo, vmax=hi, shading="flat")
            ax.set_title(f"{what}{label} (sample {i})", fontsize=9)
            ax.set_xticklabels([])
            ax.set_yticklabels([])
            ax.grid(True, alpha=0.3)
            fig.colorbar(mesh, ax=ax, fraction=0.03, pad=0.03, orientation="horizontal")
    fig.suptitle(title)
    return fig


def plot_band_errors(rows: list[dict]) -> Figure:
    """The area-weighted relative L2 error per latitude band, one bar group per evaluated file."""
    bands = [b for b in rows[0]["latitude_bands"] if b != "global"]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(rows)
    for k, row in enumerate(rows):
        ax.bar(
            np.arange(len(bands)) + k * width,
            [row["latitude_bands"].get(b, np.nan) for b in bands],
            width,
            label=row["label"],
        )
    ax.set_xticks(np.arange(len(bands)) + 0.4 - width / 2, bands)
    ax.set_xlabel("latitude band")
    ax.set_ylabel("relative L2 (area-weighted)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    return fig
