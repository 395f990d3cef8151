"""Training a diffusion sampler with the shared loop (``train.task: sampler``), evaluating and reporting it.

An item of an epoch is one path: ``sampling.iterations`` optimisation steps of
``data.batch_size`` paths each. A step's paths come from a generator seeded by the run seed,
the epoch and the step's first item, so runs are reproducible and resume exactly (processes of
a distributed run draw different paths). The model the loop trains is a :class:`SamplerModel`:
the sampler and its loss (trajectory balance's learned log Z is a parameter too), whose forward
pass draws the paths and returns the loss. After each epoch, ``validation_samples`` paths with a
fixed generator give ``val_elbo``, ``val_log_Z``, ``val_ess`` (and ``val_log_Z_error`` where
log Z is known); ``target_evaluations`` counts the points at which training evaluated the target.

``oplearn evaluate`` draws ``--samples`` samples under ``--seeds`` estimator seeds and reports
each metric of :mod:`oplearn.sampling.metrics` as its mean over seeds with the half-width of a
95% Student-t interval; ``oplearn report`` adds the samples' marginals against the target, the
mode frequencies against the target's mode weights, and the validation metrics over training.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.stats
import torch
from torch import nn

from oplearn.config import RunConfig
from oplearn.sampling.config import SamplingConfig
from oplearn.sampling.local_search import LocalSearch
from oplearn.sampling.losses import SamplerLoss, TrajectoryBalance, make_loss
from oplearn.sampling.methods import METHODS, make_method, method_parameters
from oplearn.sampling.metrics import ess_fraction, sample_metrics
from oplearn.sampling.targets import TARGETS, make_target, target_parameters
from oplearn.seeding import generator
from oplearn.training.tasks import Task

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from oplearn.report import Report
    from oplearn.sampling.targets.base import Target
    from oplearn.training.rundir import Run
    from oplearn.training.tasks import EvaluateOptions

#: Methods without learned parameters: the benchmark runs them, the training loop cannot.
UNTRAINED = ("smc", "ais")


class SamplerModel(nn.Module):
    """A sampler and its training loss; ``forward(n, generator)`` draws ``n`` paths and returns the loss."""

    def __init__(self, sampler: nn.Module, loss: SamplerLoss) -> None:
        super().__init__()
        self.sampler, self.loss = sampler, loss

    def forward(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.loss(self.sampler, n, generator)[0]


def build_sampler_model(settings: SamplingConfig) -> SamplerModel:
    """The untrained :class:`SamplerModel` of a ``sampling`` section."""
    target = make_target(settings.target, **settings.target_params)
    params = dict(settings.method_params)
    params.setdefault("net", settings.net.model_dump())
    sampler = make_method(settings.method, target, **params)
    search = settings.local_search
    local_search = None if search is None else LocalSearch(target.dim, **search.model_dump())
    return SamplerModel(sampler, make_loss(settings.loss, settings.exploration, local_search))


def _settings(config: RunConfig) -> SamplingConfig:
    return config.sampling if config.sampling is not None else SamplingConfig()


class SamplerTask(Task):
    """Learn a diffusion sampler of an unnormalised density (module docstring)."""

    name = "sampler"
    data_file = False
    config_section = "sampling"
    model_kinds = ()
    default_model = None

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        s = _settings(config)
        if s.target not in TARGETS:
            raise ValueError(f"sampling.target '{s.target}' is unknown; choose one of {', '.join(sorted(TARGETS))}")
        if s.method not in METHODS:
            raise ValueError(f"sampling.method '{s.method}' is unknown; choose one of {', '.join(METHODS)}")
        for what, given, allowed in (
            ("target_params", s.target_params, target_parameters(s.target)),
            ("method_params", s.method_params, method_parameters(METHODS[s.method])),
        ):
            unknown = set(given) - allowed
            if unknown:
                raise ValueError(
                    f"sampling.{what}: unknown parameter(s) {', '.join(sorted(unknown))}; "
                    f"allowed: {', '.join(sorted(allowed))}"
                )
        if s.method in UNTRAINED:
            raise ValueError(
                f"sampling.method '{s.method}' learns nothing and is not trained; "
                "benchmarks/density_sampling.py runs it as the baseline"
            )
        if s.loss == "kl" and s.exploration:
            raise ValueError(
                "sampling.exploration applies to the log_variance and trajectory_balance losses; "
                "the kl loss is on-policy"
            )
        if s.loss == "kl" and s.method_params.get("replay_capacity"):
            raise ValueError(
                "sampling.method_params.replay_capacity: the replay buffer trains the off-policy log_variance loss; "
                "set sampling.loss: log_variance or replay_capacity: 0"
            )
        if s.local_search is not None and (s.loss == "kl" or s.method == "scld"):
            raise ValueError(
                "sampling.local_search trains the off-policy losses on whole backward paths; "
                "use loss log_variance or trajectory_balance with a method other than scld"
            )
        if s.loss == "trajectory_balance" and s.method == "scld":
            raise ValueError("sampling.loss trajectory_balance needs whole paths; use log_variance or kl with scld")

    def __init__(self, config: RunConfig, progress: bool = True) -> None:
        super().__init__(config, progress)
        self.settings = _settings(config)
        self.epoch = 0
        self.evaluations = 0
        self.model: SamplerModel | None = None

    def build_model(self) -> SamplerModel:
        self.model = build_sampler_model(self.settings)
        if isinstance(self.model.loss, TrajectoryBalance):  # its paths count as training's
            target = self.model.sampler.target
            before = target.evaluations
            n = max(self.settings.validation_samples, 256)
            self.model.loss.initialise(self.model.sampler, n, generator(self.config.seed, 22))
            self.evaluations += target.evaluations - before
        return self.model

    def parameter_groups(self, model: SamplerModel) -> list[dict]:
        """The sampler's parameters, and trajectory balance's log Z at ``sampling.log_z_lr`` without weight decay."""
        log_z = list(model.loss.parameters())
        groups = [{"params": list(model.sampler.parameters())}]
        return groups + ([{"params": log_z, "lr": self.settings.log_z_lr, "weight_decay": 0.0}] if log_z else [])

    def info(self) -> dict:
        target = self.model.sampler.target
        return {
            "task": self.name,
            "target": self.settings.target,
            "dim": target.dim,
            "log_Z": target.log_Z,
            "method": self.settings.method,
            "loss": self.settings.loss,
        }

    @classmethod
    def rebuild(cls, config: RunConfig, info: dict) -> SamplerModel:
        return build_sampler_model(_settings(config))

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
        gen = generator(self.config.seed, 17, self.epoch, int(idx[0]), device=device)
        target = model.sampler.target
        before = target.evaluations
        value = net(len(idx), gen)
        self.evaluations += target.evaluations - before
        return value

    @torch.no_grad()
    def validate(self, model: nn.Module, batch_size: int, device: torch.device) -> dict[str, float]:
        record: dict[str, float] = {"target_evaluations": float(self.evaluations)}
        n = self.settings.validation_samples
        if not n:
            return record
        target = model.sampler.target
        before = target.evaluations
        est = model.sampler.estimate(n, generator(self.config.seed, 18, device=device))
        target.evaluations = before  # validation does not count as training
        record.update(val_log_Z=est.log_Z, val_ess=ess_fraction(est.log_weights.cpu()))
        if est.elbo is not None:
            record["val_elbo"] = est.elbo
        if target.log_Z is not None:
            record["val_log_Z_error"] = abs(est.log_Z - target.log_Z)
        return record

    def state_dict(self) -> dict:
        return {"evaluations": self.evaluations}

    def load_state_dict(self, state: dict) -> None:
        self.evaluations = int(state.get("evaluations", 0))

    @classmethod
    def evaluate(cls, run: Run, paths: list[Path], options: EvaluateOptions) -> list[dict]:
        return evaluate_sampler(run, options)

    @classmethod
    def report(cls, run: Run, rows: list[dict], report: Report) -> None:
        report_sampler(run, rows, report)


def interval(values: list[float]) -> list[float]:
    """``[mean, half-width]`` of the 95% Student-t interval of the mean of ``values`` (half-width NaN for one value)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return [float(v.mean()), math.nan]
    return [float(v.mean()), float(scipy.stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))]


@torch.no_grad()
def evaluate_sampler(run: Run, options: EvaluateOptions) -> list[dict]:
    """One row: every metric of the run's trained sampler over ``options.seeds`` estimator seeds of
    ``options.samples`` samples each (defaults ``sampling.eval_seeds``, ``sampling.eval_samples``);
    the first seed's samples are kept in ``run.scratch`` for the report."""
    settings = _settings(run.config)
    n, seeds = options.samples or settings.eval_samples, options.seeds or settings.eval_seeds
    sampler = run.model.sampler.to(options.device)
    target = sampler.target
    values: dict[str, list[float]] = {}
    for s in range(seeds):
        est = sampler.estimate(n, generator(run.config.seed, 19, s, device=options.device))
        exact = (
            target.sample(n, generator(run.config.seed, 20, s)).to(est.samples.device) if target.has_samples else None
        )
        metrics = sample_metrics(target, est, exact)
        if exact is not None:
            metrics["eubo"] = sampler.eubo(exact, generator(run.config.seed, 21, s, device=options.device))
        for key, value in metrics.items():
            values.setdefault(key, []).append(value)
        if s == 0:
            run.scratch["samples"] = est.samples.cpu()
            run.scratch["exact"] = None if exact is None else exact.cpu()
    metrics = {key: interval(v) for key, v in values.items()}
    return [
        {
            "key": f"{settings.method} on {settings.target}: {n} samples x {seeds} seeds",
            "label": f"{n} samples, {seeds} seeds",
            "n_samples": n,
            "seeds": seeds,
            "target": settings.target,
            "method": settings.method,
            "metrics": metrics,
        }
    ]


def report_sampler(run: Run, rows: list[dict], report: Report) -> None:
    """Marginals of the samples against the target, mode frequencies, validation metrics over training."""
    import matplotlib.pyplot as plt

    sampler = run.model.sampler
    target = sampler.target
    samples = run.scratch.get("samples")
    if samples is not None:
        report.figure(
            "Samples against the target", plot_marginals(target, samples, run.scratch.get("exact")), "marginals"
        )
        labels = target.modes(samples)
        if labels is not None:
            report.figure(
                "Mode frequencies of the samples against the target's mode weights",
                plot_modes(labels, target.mode_weights()),
                "modes",
            )
    log = [r for r in run.log() if "val_log_Z" in r]
    if log:
        keys = [k for k in ("val_elbo", "val_log_Z", "val_ess", "val_log_Z_error") if k in log[0]]
        fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.4), squeeze=False)
        x = [r.get("target_evaluations", r["epoch"]) for r in log]
        for ax, key in zip(axes[0], keys):
            ax.plot(x, [r[key] for r in log], marker=".")
            if key in ("val_elbo", "val_log_Z") and target.log_Z is not None:
                ax.axhline(target.log_Z, color="k", lw=0.8, ls="--", label="log Z")
                ax.legend(fontsize=8)
            ax.set_title(key[4:].replace("_", " "), fontsize=9)
            ax.set_xlabel("target evaluations in training" if "target_evaluations" in log[0] else "epoch")
            ax.grid(alpha=0.3)
        if "val_log_Z_error" in keys:
            axes[0][keys.index("val_log_Z_error")].set_yscale("log")
        report.figure("ELBO, log Z and ESS over training", fig, "training_metrics")
    report.text(
        f"Samples of `{run.config.sampling.method}` on `{run.config.sampling.target}` ({target.dim} dimensions); "
        "metrics are means over estimator seeds with 95% Student-t half-widths, defined in `oplearn.sampling.metrics`."
    )


def plot_marginals(target: Target, samples: torch.Tensor, exact: torch.Tensor | None, dims: int = 4) -> Figure:
    """A 2D histogram of the first two coordinates (with the target's log-density contours in two
    dimensions) and 1D histograms of the first ``dims`` coordinates against exact samples."""
    import matplotlib.pyplot as plt

    d = min(dims, target.dim)
    fig, axes = plt.subplots(1, d + 1, figsize=(3.6 * (d + 1), 3.4), squeeze=False)
    ax = axes[0][0]
    x = samples.numpy()
    if target.dim >= 2:
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.4, label="samples")
        if target.dim == 2:
            lo, hi = np.percentile(x, 0.5, axis=0) - 3, np.percentile(x, 99.5, axis=0) + 3
            if exact is not None:
                lo, hi = np.minimum(lo, exact.numpy().min(0) - 3), np.maximum(hi, exact.numpy().max(0) + 3)
            gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
            grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
            with torch.no_grad():
                logp = target.unnormalized_log_density(grid).reshape(gx.shape).numpy()
            ax.contour(gx, gy, np.maximum(logp, logp.max() - 30), levels=12, linewidths=0.6, cmap="Greys")
        ax.set_title("x0, x1", fontsize=9)
    for i in range(d):
        ax = axes[0][i + 1]
        ax.hist(x[:, i], bins=80, density=True, alpha=0.5, label="samples")
        if exact is not None:
            ax.hist(exact[:, i].numpy(), bins=80, density=True, alpha=0.5, label="target")
        ax.set_title(f"marginal of x{i}", fontsize=9)
        ax.legend(fontsize=7)
    return fig


def plot_modes(labels: torch.Tensor, weights: torch.Tensor) -> Figure:
    """Per mode group, the samples' mode frequencies beside the target's mode weights."""
    import matplotlib.pyplot as plt

    groups, modes = weights.shape
    fig, ax = plt.subplots(figsize=(min(14, 2 + 0.35 * groups * modes), 3.2))
    freq = torch.stack([torch.bincount(labels[:, g], minlength=modes) for g in range(groups)]).double() / len(labels)
    pos = np.arange(groups * modes)
    ax.bar(pos - 0.2, weights.double().reshape(-1).numpy(), width=0.4, label="target")
    ax.bar(pos + 0.2, freq.reshape(-1).numpy(), width=0.4, label="samples")
    ax.set_xlabel("mode" if groups == 1 else "group x mode")
    ax.set_ylabel("probability")
    ax.legend(fontsize=8)
    return fig
