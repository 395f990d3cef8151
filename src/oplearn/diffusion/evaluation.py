r"""How well a diffusion prior's samples match its data: statistics, and the report's figures.

A prior is judged by the law of its samples, not sample by sample. With :math:`m` and
:math:`s` the pointwise mean and standard deviation over samples of one channel (physical
units), :math:`\operatorname{rms}_x` the root mean square over the grid, :math:`P(r)` the
radial power spectrum (:func:`oplearn.metrics.radial_power_spectrum`) and :math:`W_1` the
Wasserstein-1 distance between the pooled values of all nodes (``scipy.stats.wasserstein_distance``):

.. math::

    \mathrm{mean\_error} = \frac{\operatorname{rms}_x(m_{\text{prior}} - m_{\text{data}})}{\operatorname{rms}_x(s_{\text{data}})},
    \qquad
    \mathrm{std\_error} = \frac{\operatorname{rms}_x(s_{\text{prior}} - s_{\text{data}})}{\operatorname{rms}_x(s_{\text{data}})},

.. math::

    \mathrm{spectrum\_error} = \operatorname{mean}_{r \ge 1} \bigl\lvert \log_{10} P_{\text{prior}}(r) - \log_{10} P_{\text{data}}(r) \bigr\rvert,
    \qquad
    \mathrm{value\_w1} = \frac{W_1(\text{values}_{\text{prior}}, \text{values}_{\text{data}})}{\operatorname{rms}_x(s_{\text{data}})}.

Each is also computed between as many data samples as prior samples and the rest of the data
(``*_floor``): the part of the figure that finite samples alone explain, to read the prior's
numbers against.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch
from scipy.stats import wasserstein_distance

from oplearn.data.files import load_fields, read_meta
from oplearn.errors import OplearnError
from oplearn.metrics import radial_power_spectrum

if TYPE_CHECKING:
    from oplearn.report import Report
    from oplearn.training.rundir import Run
    from oplearn.training.tasks import EvaluateOptions

#: Default number of prior samples an evaluation draws, and the sampler settings.
SAMPLES, STEPS, SAMPLER = 32, 20, "dpmpp2m"


def sample_statistics(samples: torch.Tensor, data: torch.Tensor) -> dict[str, list[float]]:
    """The statistics of the module docstring, one value per channel.

    Shapes: ``samples (m, C, *spatial)``, ``data (n, C, *spatial)`` on the same grid ``->``
    ``{"mean_error", "std_error", "spectrum_error", "value_w1"}: list of C floats``.
    """
    samples, data = samples.double(), data.double()
    scale = data.std(dim=0).flatten(1).square().mean(dim=1).sqrt().clamp_min(1e-12)  # rms_x of s_data, (C,)

    def rms(field: torch.Tensor) -> torch.Tensor:
        return field.flatten(1).square().mean(dim=1).sqrt()

    spectra = [radial_power_spectrum(x)[:, 1:].clamp_min(1e-30).log10() for x in (samples, data)]
    w1 = [
        wasserstein_distance(samples[:, c].flatten().numpy(), data[:, c].flatten().numpy())
        for c in range(data.shape[1])
    ]
    return {
        "mean_error": (rms(samples.mean(0) - data.mean(0)) / scale).tolist(),
        "std_error": (rms(samples.std(0) - data.std(0)) / scale).tolist(),
        "spectrum_error": (spectra[0] - spectra[1]).abs().mean(dim=1).tolist(),
        "value_w1": (torch.tensor(w1, dtype=torch.float64) / scale).tolist(),
    }


def reference_fields(run: Run, paths: list[Path]) -> tuple[torch.Tensor, dict]:
    """The data a prior is compared with: the first of ``paths``, else the run's validation samples
    (its training samples when it has none), with the prior's channels (``diffusion.fields``).

    Returns ``(fields (n, C, *spatial), where)`` with ``where = {"path", "start", "stop", "label"}``.
    """
    config = run.config
    if paths:
        where = {"path": str(paths[0]), "start": 0, "stop": read_meta(paths[0])["n"], "label": paths[0].name}
    else:
        path = Path(config.data.path)
        n_file = read_meta(path)["n"]
        n_val = config.data.n_val
        n_train = config.data.n_train if config.data.n_train is not None else n_file - n_val
        start, stop = (n_train, n_train + n_val) if n_val else (0, n_train)
        kind = "validation" if n_val else "training"
        where = {
            "path": str(path),
            "start": start,
            "stop": stop,
            "label": f"{path.name} [{start}:{stop}] ({kind} samples)",
        }
    return load_reference(run, where), where


def load_reference(run: Run, where: dict) -> torch.Tensor:
    """The prior's channels of the samples ``where`` describes: ``(n, C, *spatial)``."""
    data = (
        load_fields(where["path"], limit=where["stop"]).time_as_channels().select(slice(where["start"], where["stop"]))
    )
    fields = {"inputs": data.inputs, "outputs": data.outputs}.get(run.info["fields"])
    if fields is None:
        fields = torch.cat([data.inputs, data.outputs], dim=1)
    if fields.shape[1] != run.info["channels"] or data.grid.ndim != len(run.info["grid"]["shape"]):
        raise OplearnError(
            f"'{where['path']}' holds {fields.shape[1]} {run.info['fields']} channels on a {data.grid.ndim}D "
            f"grid; the prior models {run.info['channels']} on a {len(run.info['grid']['shape'])}D grid"
        )
    return fields


def draw(run: Run, n: int, shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    """``n`` physical samples of the run's prior on a grid of ``shape`` (default sampler settings),
    kept in ``run.scratch`` for the report."""
    from oplearn.diffusion.task import _settings, noise_for, sample_prior
    from oplearn.grids import Grid

    key = ("prior samples", n, shape, seed)
    if key not in run.scratch:
        grid = Grid.from_dict(run.info["grid"])
        meta = {"channels": run.info["channels"], "grid": grid, "noise": noise_for(_settings(run.config), grid)}
        run.scratch[key] = sample_prior(run.model, meta, n, STEPS, SAMPLER, resolution=shape, seed=seed)
    return run.scratch[key]


def evaluate_prior(run: Run, paths: list[Path], options: EvaluateOptions) -> list[dict]:
    """One row: the statistics of ``options.samples`` prior samples (default :data:`SAMPLES`)
    against the reference data (:func:`reference_fields`), per channel, with their floors."""
    data, where = reference_fields(run, paths)
    n = options.samples or SAMPLES
    samples = draw(run, n, tuple(data.shape[2:]))
    metrics = {}
    names = run.info["channel_names"]
    own = sample_statistics(samples, data)
    floor = sample_statistics(data[:n], data[n:]) if len(data) >= 2 * n else None
    for key, values in own.items():
        for c, name in enumerate(names):
            metrics[f"{key}[{name}]"] = values[c]
            if floor is not None:
                metrics[f"{key}_floor[{name}]"] = floor[key][c]
    return [
        {
            "key": f"prior samples vs {Path(where['path']).resolve()}[{where['start']}:{where['stop']}]",
            "label": f"{n} samples vs {where['label']}",
            "data": where,
            "n_samples": n,
            "sampler": {"method": SAMPLER, "steps": STEPS, "seed": 0},
            "metrics": metrics,
        }
    ]


def report_prior(run: Run, rows: list[dict], report: Report) -> None:
    """Prior samples beside data samples, value histograms and power spectra per channel (first row's data)."""
    import matplotlib.pyplot as plt

    if not rows:
        return
    data = load_reference(run, rows[0]["data"])
    samples = draw(run, rows[0]["n_samples"], tuple(data.shape[2:]))
    names = run.info["channel_names"]
    channels = len(names)
    if data.ndim == 4:
        cols = 4
        fig, axes = plt.subplots(2 * channels, cols, figsize=(2.8 * cols, 2.6 * 2 * channels), squeeze=False)
        for c in range(channels):
            lo, hi = float(data[:, c].min()), float(data[:, c].max())
            for i in range(cols):
                for row, (source, what) in enumerate(((data, "data"), (samples, "prior"))):
                    ax = axes[2 * c + row][i]
                    ax.imshow(source[i, c].T.numpy(), origin="lower", cmap="viridis", vmin=lo, vmax=hi)
                    ax.set_title(f"{what} {names[c]} #{i}", fontsize=8)
                    ax.set_xticks([]), ax.set_yticks([])
        report.figure("Prior samples beside data samples", fig, "samples")
    fig, axes = plt.subplots(2, channels, figsize=(4.6 * channels, 6.4), squeeze=False)
    spectra = [radial_power_spectrum(x.double()) for x in (data, samples)]
    for c in range(channels):
        ax = axes[0][c]
        ax.hist(data[:, c].flatten().numpy(), bins=60, density=True, alpha=0.5, label="data")
        ax.hist(samples[:, c].flatten().numpy(), bins=60, density=True, alpha=0.5, label="prior")
        ax.set_title(f"values of {names[c]}", fontsize=9)
        ax.legend(fontsize=8)
        ax = axes[1][c]
        for spectrum, what in zip(spectra, ("data", "prior")):
            ax.loglog(range(1, spectrum.shape[1]), spectrum[c, 1:].numpy(), label=what)
        ax.set_xlabel("radial wavenumber")
        ax.set_title(f"power spectrum of {names[c]}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    report.figure("Value distributions and power spectra", fig, "statistics")
