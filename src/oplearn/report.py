"""Figures and a self-contained HTML / Markdown report of any training run.

:func:`make_report` writes what every run has (what the run was, its training curves and its
test metrics) and asks the run's task to add its own sections
(:meth:`oplearn.training.tasks.Task.report`) to a :class:`Report`. The report is built in a
hidden folder beside its destination and swapped into place at the end, so a failure leaves
the previous report (or none) and never a half-written one.
"""

from __future__ import annotations

import base64
import html
import os
import re
import shutil
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from oplearn.data.readers import read_dataset
from oplearn.evaluate import evaluate_each, evaluate_fields, format_table, merge_results
from oplearn.grids import Grid
from oplearn.paths import output_dir
from oplearn.progress import format_seconds
from oplearn.sphere.grid import SphereGrid
from oplearn.sphere.plots import plot_band_errors, plot_sphere_samples
from oplearn.training.rundir import Run, checkpoint_path, open_run
from oplearn.training.tasks import EvaluateOptions, map_view

REPORT_METRICS = ("relative_l2", "relative_h1", "nrmse", "max_error", "vrmse")


def save_figure(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Lay out ``fig``, write it to ``path`` atomically (a hidden temporary file, then a rename) and close it."""
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)
    return path


class Report:
    """The sections of a report, in order: headings, text, tables and figures.

    Text is Markdown limited to paragraphs, ``code`` spans and ``**bold**``; tables are lists
    of rows (the first row the header) or markdown tables; figures are matplotlib figures,
    saved as PNG files in the report folder and embedded in the HTML.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.blocks: list[tuple[str, Any]] = []
        self._names: set[str] = set()

    def heading(self, title: str) -> None:
        self.blocks.append(("heading", title))

    def text(self, markdown: str) -> None:
        self.blocks.append(("text", markdown))

    def code(self, text: str) -> None:
        """A preformatted block (e.g. the config), collapsed in the HTML."""
        self.blocks.append(("code", text))

    def table(self, title: str | None, rows: list[list[Any]] | str) -> None:
        """A table under an optional heading: rows of cells (the first is the header) or markdown."""
        if title:
            self.heading(title)
        if isinstance(rows, str):
            lines = [line for line in rows.splitlines() if line.strip() and not line.startswith("|---")]
            rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
        self.blocks.append(("table", [[str(c) for c in row] for row in rows]))

    def figure(self, title: str, fig: Figure, name: str | None = None) -> Path:
        """Save ``fig`` as ``name.png`` (default: from the title) under a heading; returns its path."""
        stem = name or re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "figure"
        base, k = stem, 2
        while stem in self._names:
            stem, k = f"{base}_{k}", k + 1
        self._names.add(stem)
        path = save_figure(fig, self.folder / f"{stem}.png")
        self.heading(title)
        self.blocks.append(("figure", (title, path)))
        return path

    def markdown(self) -> str:
        out = ["# oplearn report", ""]
        for kind, value in self.blocks:
            if kind == "heading":
                out += [f"## {value}", ""]
            elif kind == "text":
                out += [value, ""]
            elif kind == "code":
                out += ["```", value.rstrip("\n"), "```", ""]
            elif kind == "table":
                out += ["| " + " | ".join(value[0]) + " |", "|" + "---|" * len(value[0])]
                out += ["| " + " | ".join(row) + " |" for row in value[1:]] + [""]
            else:
                title, path = value
                out += [f"![{title}]({path.name})", ""]
        return "\n".join(out)

    def html(self) -> str:
        body = ["<h1>oplearn report</h1>"]
        for kind, value in self.blocks:
            if kind == "heading":
                body.append(f"<h2>{html.escape(value)}</h2>")
            elif kind == "text":
                body.extend(f"<p>{_inline(p)}</p>" for p in value.split("\n\n"))
            elif kind == "code":
                body.append(f"<details><summary>show</summary><pre>{html.escape(value)}</pre></details>")
            elif kind == "table":
                head = "".join(f"<th>{_inline(c)}</th>" for c in value[0])
                rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in value[1:])
                body.append(f"<table><tr>{head}</tr>{rows}</table>")
            else:
                title, path = value
                data = base64.b64encode(path.read_bytes()).decode()
                body.append(f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>oplearn report</title>"
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}img{max-width:100%}"
            "pre{background:#f6f6f6;padding:8px}</style></head><body>" + "".join(body) + "</body></html>"
        )


def _inline(text: str) -> str:
    """Escaped text with ``code`` spans and **bold**."""
    escaped = html.escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", escaped)


def describe_run(run: Run) -> list[list[str]]:
    """What the run was, as table rows: task, model, data, epochs, training time, device, versions."""
    meta, log = run.meta(), run.log()
    config = run.config
    from oplearn.models import count_parameters

    sessions = meta.get("sessions", [])
    devices = sorted(
        {f"{s['device']} x{s['processes']}" if s.get("processes", 1) > 1 else s["device"] for s in sessions}
    )
    seconds = sum(r.get("seconds", 0.0) for r in log)
    best = [r["val_relative_l2"] for r in log if "val_relative_l2" in r]
    rows = [
        ["item", "value"],
        ["task", f"`{config.train.task}`"],
        [
            "model",
            f"`{config.model.name if config.model is not None else config.train.task}` "
            f"({count_parameters(run.model):,} parameters)",
        ],
        [
            "training data",
            f"`{config.data.path}`" if config.data.path else "drawn by the task itself (no dataset file)",
        ],
        ["epochs", f"{len(log) or run.epoch} of {config.train.epochs}"],
        ["training time", f"{format_seconds(seconds)} over {max(len(sessions), 1)} session(s)" if log else "unknown"],
        ["device", ", ".join(devices) or "unknown"],
        ["seed", str(config.seed)],
    ]
    if best:
        rows.append(["best validation relative L2", f"{min(best):.4g}"])
    if meta.get("versions"):
        rows.append(["versions", ", ".join(f"{k} {v}" for k, v in meta["versions"].items())])
    return rows


def vrmse_table(by_field: dict[str, dict[str, float]]) -> list[list[str]]:
    """Rows (header first) of :func:`oplearn.metrics.vrmse_by_field`: one per field, one column per window."""
    windows = list(next(iter(by_field.values())))
    return [
        ["field", *(f"T={w}" for w in windows)],
        *([name, *(f"{values[w]:.4g}" for w in windows)] for name, values in by_field.items()),
    ]


def plot_training_curves(log: list[dict]) -> Figure:
    """Every logged quantity against the epoch, one panel each (log scale where all values are positive)."""
    keys = [
        k
        for k in dict.fromkeys(k for r in log for k in r)
        if k not in ("epoch", "seconds", "lr") and all(isinstance(r.get(k, 0.0), (int, float)) for r in log)
    ]
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.4 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        points = [(r["epoch"], r[key]) for r in log if key in r]
        ax.plot(*zip(*points), ".-" if len(points) < 30 else "-")
        if all(v > 0 for _, v in points):
            ax.set_yscale("log")
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes.flat[len(keys) :]:
        ax.axis("off")
    return fig


def make_report(
    run_dir: str | Path,
    data_paths: list[str | Path] | None = None,
    out_dir: str | Path | None = None,
    options: EvaluateOptions | None = None,
) -> Path:
    """Write figures, ``report.md`` and a self-contained ``report.html`` of any run; returns the HTML path.

    The run is evaluated afresh (its task's ``evaluate``, on ``data_paths`` or the config's
    test files where the task uses files; config test files that do not suit the model are
    skipped and named in the report) and the rows are merged into ``metrics.json``.
    """
    checkpoint_path(run_dir)  # a missing or empty run is refused before anything is written
    run = open_run(run_dir)
    out_dir = output_dir(out_dir if out_dir else run.dir / "report")
    options = options or EvaluateOptions()
    skipped: list[tuple[str, str]] = []
    if data_paths or not run.config.data.test:
        rows = run.task.evaluate(run, [Path(p) for p in data_paths or []], options)
    else:
        rows, skipped = evaluate_each(run, [t.path for t in run.config.data.test], options)
    merge_results(run.dir, rows)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    building = out_dir.with_name(f".{out_dir.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    try:
        report = Report(building)
        report.table("The run", describe_run(run))
        report.heading("Configuration")
        report.code((run.dir / "config.yaml").read_text() if (run.dir / "config.yaml").exists() else "")
        log = run.log()
        if log:
            report.figure("Training curves", plot_training_curves(log), "loss_curves")
        report.table("Test metrics", format_table(rows))
        for row in rows:
            if row.get("vrmse_by_field"):
                report.table(f"VRMSE by field and rollout window: {row['label']}", vrmse_table(row["vrmse_by_field"]))
        if skipped:
            report.text("Not evaluated: " + "; ".join(f"`{Path(path).name}` ({reason})" for path, reason in skipped))
        run.task.report(run, rows, report)
        report.text(
            "Metrics are sample means in physical units unless a table says otherwise; definitions in "
            "`oplearn.metrics` and in the documentation of the run's task."
        )
        (building / "report.md").write_text(report.markdown())
        (building / "report.html").write_text(report.html())
        _swap_into_place(building, out_dir)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return out_dir / "report.html"


def _swap_into_place(building: Path, out_dir: Path) -> None:
    """Replace ``out_dir`` by the finished ``building`` folder (the old one is removed only afterwards)."""
    old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(building, out_dir)
    shutil.rmtree(old, ignore_errors=True)


# --- sections of operators on grids (the map and one_step tasks) ---------------------------------


def plot_samples(
    inputs: torch.Tensor, truth: torch.Tensor, pred: torch.Tensor, title: str, n_samples: int = 3
) -> Figure:
    """Input, truth, prediction and absolute error for the first samples (2D fields, channel 0)."""
    n = min(n_samples, len(inputs))
    fig, axes = plt.subplots(n, 4, figsize=(13, 3.1 * n), squeeze=False)
    for i in range(n):
        err = (pred[i, 0] - truth[i, 0]).abs()
        vmin, vmax = float(truth[i, 0].min()), float(truth[i, 0].max())
        panels = [
            (inputs[i, 0], "input", "viridis", None, None),
            (truth[i, 0], "truth", "magma", vmin, vmax),
            (pred[i, 0], "prediction", "magma", vmin, vmax),
            (err, "|error|", "inferno", None, None),
        ]
        for ax, (field, name, cmap, lo, hi) in zip(axes[i], panels):
            im = ax.imshow(field.T.numpy(), origin="lower", cmap=cmap, vmin=lo, vmax=hi, extent=(0, 1, 0, 1))
            ax.set_title(f"{name} (sample {i})", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(title)
    return fig


def plot_curves(
    inputs: torch.Tensor, truth: torch.Tensor, pred: torch.Tensor, title: str, n_samples: int = 3
) -> Figure:
    """Input, truth and prediction of 1D fields (channel 0), one panel per sample."""
    n = min(n_samples, len(inputs))
    fig, axes = plt.subplots(1, n, figsize=(4.5 * n, 3.2), squeeze=False)
    for i, ax in enumerate(axes[0]):
        ax.plot(truth[i, 0].numpy(), label="truth")
        ax.plot(pred[i, 0].numpy(), "--", label="prediction")
        ax.plot(inputs[i, 0].numpy(), ":", color="gray", label="input")
        ax.set_title(f"sample {i}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return fig


def plot_error_vs_resolution(rows: list[dict], train_resolution: str) -> Figure:
    """Relative L2 (and H1 when present) against the test resolution."""
    sizes = [int(r["resolution"].split("x")[0]) for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in ("relative_l2", "relative_h1"):
        if name in rows[0]["metrics"]:
            ax.plot(sizes, [r["metrics"][name] for r in rows], "o-", label=name)
    ax.axvline(int(train_resolution.split("x")[0]), color="gray", ls="--", label="training resolution")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, [r["resolution"] for r in rows])
    ax.set_xlabel("test resolution")
    ax.set_ylabel("error")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def _field_figure(
    inputs: torch.Tensor, truth: torch.Tensor, pred: torch.Tensor, title: str, grid: Grid | None = None
) -> Figure | None:
    """Samples as images (2D), maps (on the sphere: ``grid`` a SphereGrid) or curves (1D); ``None``
    for other dimensions."""
    if isinstance(grid, SphereGrid):
        return plot_sphere_samples(inputs, truth, pred, grid, title)
    if truth.ndim == 4:
        return plot_samples(inputs, truth, pred, title)
    if truth.ndim == 3:
        return plot_curves(inputs, truth, pred, title)
    return None


def latitude_band_section(rows: list[dict], report: Report) -> None:
    """A table and a bar chart of the area-weighted errors per latitude band, for fields on the sphere."""
    rows = [row for row in rows if "latitude_bands" in row]
    if not rows:
        return
    bands = list(rows[0]["latitude_bands"])
    report.table(
        "Relative L2 per latitude band (area-weighted)",
        [
            ["file", *bands],
            *[[row["label"], *(f"{row['latitude_bands'].get(b, float('nan')):.4g}" for b in bands)] for row in rows],
        ],
    )
    report.figure("Error per latitude band", plot_band_errors(rows), "latitude_bands")


def report_map(run: Run, rows: list[dict], report: Report) -> None:
    """Test samples per file, and the error against the test resolution."""
    for row in rows:
        data = map_view(read_dataset(row["path"], limit=min(3, row["n"])), run.config.data.input_frames)
        _, pred = evaluate_fields(run.model, data)
        fig = _field_figure(
            data.inputs,
            data.outputs,
            pred,
            f"{Path(row['path']).name}: relative L2 {row['metrics']['relative_l2']:.4f} (mean over {row['n']} samples)",
            data.grid,
        )
        if fig is not None:
            report.figure(f"Test samples at {row['resolution']}", fig, f"samples_{row['resolution']}")
    latitude_band_section(rows, report)
    if len({r["resolution"] for r in rows}) > 1:
        train = "x".join(map(str, run.model.train_shape))
        report.figure("Error against resolution", plot_error_vs_resolution(rows, train), "error_vs_resolution")


def plot_rollout_error(rows: list[dict]) -> Figure:
    """Relative L2 of each rolled-out step, one curve per file."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for row in rows:
        steps = range(1, len(row["relative_l2_per_step"]) + 1)
        ax.plot(steps, row["relative_l2_per_step"], "o-" if len(steps) < 30 else "-", label=row["label"])
    ax.set_xlabel("rollout step")
    ax.set_ylabel("relative L2 (mean over samples)")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def plot_long_rollout(stats: dict) -> Figure:
    """Four panels of ``oplearn rollout``'s statistics beside the reference: correlation with the
    truth against the step, energy spectrum, value PDF and auto-correlation."""
    import numpy as np

    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    ax = axes[0]
    ax.plot(range(1, len(stats["correlation"]) + 1), stats["correlation"], "-", label="rollout")
    for threshold in (0.8, 0.9, 0.95):
        ax.axhline(threshold, color="gray", lw=0.6, ls=":")
    ax.set(xlabel="rollout step", ylabel="Pearson correlation with the truth", ylim=(-0.2, 1.02))
    for name, label in (("statistics", "rollout"), ("reference", "reference")):
        data = stats[name]
        spectrum = np.asarray(data["spectrum"][1:])
        axes[1].loglog(np.arange(1, len(spectrum) + 1), np.maximum(spectrum, 1e-30), label=label)
        q = np.asarray(data["quantiles"])
        p = np.arange(1, len(q) + 1) / (len(q) + 1)
        density = np.diff(p) / np.maximum(np.diff(q), 1e-12)  # the PDF from the quantile function
        axes[2].semilogy(0.5 * (q[1:] + q[:-1]), density, label=label)
        axes[3].plot(data["autocorrelation"], label=label)
    axes[1].set(xlabel="wavenumber shell", ylabel="energy spectrum")
    axes[2].set(xlabel="field value", ylabel="PDF")
    axes[3].set(xlabel="lag (steps)", ylabel="auto-correlation")
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def report_long_rollout(run: Run, report: Report) -> None:
    """The statistics of the run's last ``oplearn rollout`` (``RUN/rollout.json``), if any."""
    import json

    from oplearn.rollout_command import RUN_STATS

    path = run.dir / RUN_STATS
    if not path.exists():
        return
    stats = json.loads(path.read_text())
    report.heading("Long rollout")
    report.text(
        f"`oplearn rollout`: {stats['samples']} trajectories of {stats['steps']} steps from `{stats['data']}`, "
        f"diagnosis **{stats['status']}**; correlation time (steps before the mean correlation drops to "
        f"0.8 / 0.9 / 0.95): {' / '.join(str(v) for v in stats['correlation_time'].values())} over "
        f"{stats['reference_steps']} reference steps."
    )
    report.table(
        "Long-term statistics against the reference",
        [["statistic", "error"]] + [[name, f"{value:.4g}"] for name, value in stats["errors"].items()],
    )
    report.figure("Correlation, spectrum, PDF and auto-correlation", plot_long_rollout(stats), "long_rollout")


def report_one_step(run: Run, rows: list[dict], report: Report) -> None:
    """The rollout error against the step, the last frame of rolled-out test trajectories, and the
    statistics of a long rollout (:func:`report_long_rollout`)."""
    from oplearn.evaluate import evaluate_rollout

    report_long_rollout(run, report)
    if not rows:
        return
    report.figure("Rollout error against step", plot_rollout_error(rows), "rollout_error")
    latitude_band_section(rows, report)
    for row in rows:
        data = read_dataset(row["path"], limit=min(3, row["n"]))
        _, _, pred = evaluate_rollout(run.model, data, run.config.train.history)
        truth = data.outputs[:, -1] if data.time is not None else data.outputs
        first = data.inputs
        fig = _field_figure(
            first,
            truth,
            pred[:, -1],
            f"{Path(row['path']).name}: last frame after "
            f"{pred.shape[1]} steps from the first {run.config.train.history}",
            data.grid,
        )
        if fig is not None:
            report.figure(f"Last rolled-out frame at {row['resolution']}", fig, f"rollout_{row['resolution']}")
