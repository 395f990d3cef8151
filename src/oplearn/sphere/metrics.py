r"""Area-weighted errors of fields on the sphere, over the whole sphere and per latitude band.

For one sample with prediction :math:`p`, truth :math:`t` and error :math:`e = p - t` on a
:class:`~oplearn.sphere.grid.SphereGrid` with node weights :math:`w` (area elements), the
relative L2 error over a region :math:`B` (all channels together) is

.. math:: \sqrt{\frac{\sum_{x \in B} w_x \sum_c e_c(x)^2}{\sum_{x \in B} w_x \sum_c t_c(x)^2}},

the ratio of integrals over :math:`B`, so a band counts by its area and not by its number of
grid rows (which crowd towards the poles on a latitude-longitude grid).
"""

from __future__ import annotations

import torch

from oplearn.sphere.grid import SphereGrid

#: Latitude bands (degrees, south edge included, north edge included for the last band).
LATITUDE_BANDS = {
    "90S-60S": (-90.0, -60.0),
    "60S-30S": (-60.0, -30.0),
    "30S-30N": (-30.0, 30.0),
    "30N-60N": (30.0, 60.0),
    "60N-90N": (60.0, 90.0),
}


def band_masks(grid: SphereGrid) -> dict[str, torch.Tensor]:
    """The rows of each band of :data:`LATITUDE_BANDS`: name -> bool ``(nlat,)``; every row is in one band."""
    lat = torch.as_tensor(grid.latitude_degrees().copy())
    masks = {}
    for i, (name, (lo, hi)) in enumerate(LATITUDE_BANDS.items()):
        last = i == len(LATITUDE_BANDS) - 1
        masks[name] = (lat >= lo) & ((lat <= hi) if last else (lat < hi))
    return masks


def area_relative_l2(
    pred: torch.Tensor, true: torch.Tensor, grid: SphereGrid, rows: torch.Tensor | None = None
) -> torch.Tensor:
    """The area-weighted relative L2 error per sample, over the rows ``rows`` (all when ``None``).

    Shapes: ``pred, true: (batch, ..., nlat, nlon) -> (batch,)``.
    """
    if pred.shape != true.shape or tuple(pred.shape[-2:]) != grid.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and true {tuple(true.shape)} must match and end with {grid.shape}")
    weights = grid.area_weights(torch.float64, pred.device)
    if rows is not None:
        weights = weights * rows.to(pred.device)[:, None]
    error = ((pred.double() - true.double()) ** 2 * weights).flatten(1).sum(1)
    norm = (true.double() ** 2 * weights).flatten(1).sum(1)
    return (error / norm).sqrt()


def latitude_band_errors(pred: torch.Tensor, true: torch.Tensor, grid: SphereGrid) -> dict[str, float]:
    """Sample means of :func:`area_relative_l2` over the whole sphere (``"global"``) and over each
    band of :data:`LATITUDE_BANDS` that holds grid rows.

    Shapes: ``pred, true: (batch, channels, nlat, nlon)`` or ``(batch, time, channels, nlat, nlon)``
    (time steps are scored as samples).
    """
    if pred.ndim == 5:
        pred, true = pred.flatten(0, 1), true.flatten(0, 1)
    out = {"global": area_relative_l2(pred, true, grid).mean().item()}
    for name, rows in band_masks(grid).items():
        if rows.any():
            out[name] = area_relative_l2(pred, true, grid, rows).mean().item()
    return out
