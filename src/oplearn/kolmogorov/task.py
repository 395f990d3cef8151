r"""Learning a Kolmogorov solution family with the shared loop (``train.task: kolmogorov``).

An item of an epoch is one training point: ``kolmogorov.iterations`` optimisation steps of
``data.batch_size`` points each, drawn uniformly from the problem's box by a generator seeded by
the run seed, the epoch and the step's first item (so runs are reproducible and resume exactly;
processes of a distributed run draw different points), with targets from simulated paths
(:mod:`oplearn.kolmogorov.losses`). The model is a ``kind: mlp`` network (default the multilevel
MLP) on the standardised ``(t, x, params)`` (:class:`~oplearn.kolmogorov.model.KolmogorovModel`).

After each epoch ``validation_points`` fixed points (references computed once) give
``val_relative_l1`` and ``val_relative_l2`` (:mod:`oplearn.kolmogorov.metrics`).
``oplearn evaluate`` draws held-out points from their own seed stream, computes references (closed
form, or Monte Carlo with standard errors) and reports both errors, the reference's own error
(and refuses to claim an error below it), the relative L1 error by time, and the time to evaluate
the learned solution against the time of the reference. ``oplearn report`` plots the error against
time and slices of the learned solution beside the reference.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from oplearn.config import RunConfig
from oplearn.errors import ConfigError
from oplearn.kolmogorov.config import KolmogorovConfig
from oplearn.kolmogorov.losses import LOSSES, make_loss
from oplearn.kolmogorov.metrics import relative_errors, solution_metrics
from oplearn.kolmogorov.model import KolmogorovModel
from oplearn.kolmogorov.problems import PROBLEMS, KolmogorovPDE, make_problem, problem_parameters
from oplearn.seeding import generator
from oplearn.training.tasks import Task

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from oplearn.report import Report
    from oplearn.training.rundir import Run
    from oplearn.training.tasks import EvaluateOptions

#: Seed stream keys: training points, validation points and references, held-out points and references.
_TRAIN, _VALIDATION, _HELD_OUT = 201, 202, 203
#: Time bins of the error-against-time curve.
TIME_BINS = 10


def _settings(config: RunConfig) -> KolmogorovConfig:
    return config.kolmogorov if config.kolmogorov is not None else KolmogorovConfig()


def build_problem(config: RunConfig) -> KolmogorovPDE:
    s = _settings(config)
    return make_problem(s.problem, **s.problem_params)


def build_model(config: RunConfig, problem: KolmogorovPDE) -> KolmogorovModel:
    """The untrained model of ``config`` for ``problem`` (with a gradient network where the loss learns one)."""
    features = 1 + problem.dim + problem.n_parameters
    grad_net = config.model.build(features, problem.dim) if LOSSES[_settings(config).loss].learns_gradient else None
    return KolmogorovModel.for_problem(config.model.build(features), problem, grad_net)


class KolmogorovTask(Task):
    """Learn a Kolmogorov solution family (t, x, params) -> u from simulated SDE paths (module docstring)."""

    name = "kolmogorov"
    data_file = False
    config_section = "kolmogorov"
    model_kinds = ("mlp",)
    default_model = "multilevel_mlp"

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        s = _settings(config)
        if s.problem not in PROBLEMS:
            raise ValueError(f"kolmogorov.problem '{s.problem}' is unknown; choose one of {', '.join(PROBLEMS)}")
        unknown = set(s.problem_params) - problem_parameters(s.problem)
        if unknown:
            allowed = ", ".join(sorted(problem_parameters(s.problem))) or "none"
            raise ValueError(
                f"kolmogorov.problem_params: unknown parameter(s) {', '.join(sorted(unknown))} "
                f"for problem '{s.problem}'; allowed: {allowed}"
            )
        try:
            make_problem(s.problem, **s.problem_params)
        except ConfigError as err:
            raise ValueError(f"kolmogorov.problem_params: {err}") from None

    def __init__(self, config: RunConfig, progress: bool = True) -> None:
        super().__init__(config, progress)
        self.settings = _settings(config)
        self.problem = build_problem(config)
        self.loss_fn = make_loss(self.settings.loss, self.settings.steps)
        self.epoch = 0
        self.val = None
        if self.settings.validation_points:
            t, x, p = self.problem.sample(self.settings.validation_points, generator(config.seed, _VALIDATION))
            ref = self.problem.reference(
                t, x, p, self.settings.validation_reference_samples, generator(config.seed, _VALIDATION, 1)
            )
            self.val = (t, x, p, ref)

    def build_model(self) -> KolmogorovModel:
        return build_model(self.config, self.problem)

    def info(self) -> dict:
        return {
            "task": self.name,
            "problem": self.settings.problem,
            "dim": self.problem.dim,
            "parameters": self.problem.n_parameters,
            "loss": self.settings.loss,
        }

    def check_model(self, model: KolmogorovModel) -> None:
        t, x, p = self.problem.sample(2, generator(0, 0))
        try:
            with torch.no_grad():
                model.eval()(t, x, p)
        except (ValueError, RuntimeError) as err:
            raise ConfigError(
                f"config: the model does not fit problem '{self.problem.name}': {' '.join(str(err).split())}"
            ) from None
        finally:
            model.train()

    @classmethod
    def rebuild(cls, config: RunConfig, info: dict) -> KolmogorovModel:
        return build_model(config, build_problem(config))

    def __len__(self) -> int:
        return self.settings.iterations * self.config.data.batch_size

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def loss(
        self,
        net: nn.Module,
        model: nn.Module,
        idx: torch.Tensor,
        device: torch.device,
        autocast: AbstractContextManager,
    ) -> torch.Tensor:
        gen = generator(self.config.seed, _TRAIN, self.epoch, int(idx[0]), device=device)
        t, x, p = self.problem.sample(len(idx), gen, device=device)
        with autocast:
            return self.loss_fn(self.problem, model, t, x, p, gen, net=net).float()

    def validate(self, model: nn.Module, batch_size: int, device: torch.device) -> dict[str, float]:
        if self.val is None:
            return {}
        t, x, p, ref = self.val
        pred = model.predict(t, x, p)
        model.train()
        rel = relative_errors(pred.double(), ref.values.double())
        return {"val_relative_l1": rel.mean().item(), "val_relative_l2": rel.square().mean().sqrt().item()}

    @classmethod
    def evaluate(cls, run: Run, paths: list[Path], options: EvaluateOptions) -> list[dict]:
        return [evaluate_kolmogorov(run, options)]

    @classmethod
    def report(cls, run: Run, rows: list[dict], report: Report) -> None:
        report_kolmogorov(run, rows, report)


def error_by_time(t: torch.Tensor, rel: torch.Tensor, horizon: float, bins: int = TIME_BINS) -> dict[str, list[float]]:
    """Mean relative L1 error in ``bins`` equal bins of ``t`` over ``[0, horizon]``: bin centres and errors
    (NaN for an empty bin)."""
    which = (t / horizon * bins).long().clamp(0, bins - 1)
    centres = [(i + 0.5) * horizon / bins for i in range(bins)]
    errors = [rel[which == i].mean().item() if bool((which == i).any()) else float("nan") for i in range(bins)]
    return {"t": centres, "relative_l1": errors}


@torch.no_grad()
def evaluate_kolmogorov(run: Run, options: EvaluateOptions) -> dict:
    """One row: errors at ``options.samples`` (default ``kolmogorov.eval_points``) held-out points."""
    settings = _settings(run.config)
    problem = build_problem(run.config)
    n = options.samples or settings.eval_points
    t, x, p = problem.sample(n, generator(run.config.seed, _HELD_OUT))
    start = time.perf_counter()
    ref = problem.reference(t, x, p, settings.reference_samples, generator(run.config.seed, _HELD_OUT, 1))
    reference_seconds = time.perf_counter() - start
    model = run.model.to(options.device)
    start = time.perf_counter()
    pred = model.predict(t, x, p)
    model_seconds = time.perf_counter() - start
    metrics = solution_metrics(pred, ref.values, ref.stderr)
    metrics.update(model_seconds=model_seconds, reference_seconds=reference_seconds)
    rel = relative_errors(pred.double(), ref.values.double())
    run.scratch["kolmogorov"] = {"problem": problem, "t": t, "x": x, "p": p, "pred": pred, "ref": ref}
    kind = "closed form" if problem.has_exact else f"Monte Carlo, {settings.reference_samples} draws per point"
    return {
        "key": f"held-out points (seed {run.config.seed}, n {n})",
        "label": f"{n} held-out points",
        "problem": problem.describe(),
        "reference": kind,
        "n": n,
        "metrics": metrics,
        "error_by_time": error_by_time(t, rel, problem.horizon),
    }


def report_kolmogorov(run: Run, rows: list[dict], report: Report) -> None:
    """Error against time, slices of the learned solution beside the reference, validation errors."""
    import matplotlib.pyplot as plt

    scratch = run.scratch["kolmogorov"]
    problem = scratch["problem"]
    row = rows[0]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(row["error_by_time"]["t"], row["error_by_time"]["relative_l1"], marker="o")
    ax.set_xlabel("t")
    ax.set_ylabel("mean |u - u_hat| / (|u| + 1)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    report.figure("Relative L1 error against time", fig, "error_vs_time")
    slices = plot_slices(run.model, problem, run.config.seed, samples=_settings(run.config).reference_samples)
    report.figure("Slices of the learned solution beside the reference", slices, "slices")
    log = [r for r in run.log() if "val_relative_l1" in r]
    if log:
        fig, ax = plt.subplots(figsize=(5, 3.4))
        for key in ("val_relative_l1", "val_relative_l2"):
            ax.plot([r["epoch"] for r in log], [r[key] for r in log], marker=".", label=key[4:])
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        report.figure("Validation errors over training", fig, "validation")
    report.text(
        f"Problem: {row['problem']}; reference: {row['reference']}. Errors are the mean relative L1 "
        "`|u - u_hat| / (|u| + 1)` and its root-mean-square (relative L2), defined in `oplearn.kolmogorov.metrics`; "
        "an error within twice the reference's own is reported only as a bound. Error against dimension: "
        "one run has one dimension; `python benchmarks/kolmogorov.py --parts dimension` sweeps it and draws "
        "`benchmarks/results/kolmogorov_<preset>_dimension.png`."
    )


@torch.no_grad()
def plot_slices(
    model: KolmogorovModel, problem: KolmogorovPDE, seed: int, points: int = 41, samples: int = 4096
) -> Figure:
    """The learned solution along the first coordinate through the box centre at three times, beside the
    reference (closed form, or Monte Carlo of ``samples`` draws with two standard errors shaded)."""
    import matplotlib.pyplot as plt

    x0, p0 = problem.centre()
    lo, hi = problem.x_box
    s = torch.linspace(lo, hi, points)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), squeeze=False)
    for ax, frac in zip(axes[0], (0.25, 0.5, 1.0)):
        t = torch.full((points,), frac * problem.horizon)
        x = x0.repeat(points, 1)
        x[:, 0] = s
        p = p0.repeat(points, 1)
        ref = problem.reference(t, x, p, samples, generator(seed, _HELD_OUT, 2))
        ax.plot(s, ref.values, "k-", lw=1.2, label="reference")
        if bool((ref.stderr > 0).any()):
            ax.fill_between(s, ref.values - 2 * ref.stderr, ref.values + 2 * ref.stderr, color="k", alpha=0.2)
        ax.plot(s, model.predict(t, x, p), "C1--", label="learned")
        ax.set_title(f"t = {frac * problem.horizon:g}", fontsize=9)
        ax.set_xlabel("x_1 (other inputs at the box centre)")
        ax.legend(fontsize=8)
    return fig
