r"""Operator learning from walk-on-spheres estimates (``train.task=wos``): no solver data, no derivatives.

The operator is a grid operator (any ``model`` of the config, an FNO by default) on the
bounding box :math:`[0, 1]^2` of the :class:`~oplearn.wos.problems.PoissonFamily` domains,
with three input channels: the source :math:`f`, the ray extension of the boundary data
:math:`g`, and the signed distance :math:`\phi` of the domain (which carries the geometry,
smoothly, where a 0/1 mask would not). Its prediction :math:`\hat u` is read at points
inside the domain by bilinear interpolation, so supervision at scattered points needs no
mesh and no derivative of the network. (A grid operator with a geometry channel keeps the
FNO's speed and its resolution independence; a point or graph operator would avoid the
unused outer region, at the cost of the memory-hungry kernels on irregular point sets.)

Each training problem :math:`i` has fixed points :math:`x_{ij}` in its domain. Every epoch
adds ``walks`` new walk-on-spheres walks per point to the running means

.. math::

    \bar u_{ij}^{(e)} = \frac{\sum_{e' \le e} W \hat u^{WoS}_{ij,e'}}{e W},

an unbiased estimate whose variance falls like :math:`1 / (e W)`, and the loss is the
relative L2 error over the points,
:math:`\|\hat u(x_{i\cdot}) - \bar u_{i\cdot}\| / \|\bar u_{i\cdot}\|`, averaged over the batch.

The cache is filled in :meth:`WoSTask.start_epoch` for all problems, with walks seeded by
``(seed, epoch, chunk of problems)``, so it does not depend on the batching and is identical on every
process of a data-parallel run (each computes all of it), and a resumed run reaches the same
targets. Validation compares the prediction with the Shortley-Weller finite-difference
reference at the grid nodes inside each domain.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from oplearn.config import RunConfig
from oplearn.grids import Grid, subsample
from oplearn.metrics import relative_l2
from oplearn.models.operator import OperatorModel
from oplearn.seeding import generator
from oplearn.training.tasks import Task, build_operator, check_operator_fits, predict
from oplearn.wos.config import WoSConfig
from oplearn.wos.problems import SQUARE
from oplearn.wos.walk import walk_on_spheres

if TYPE_CHECKING:
    from oplearn.report import Report
    from oplearn.training.rundir import Run
    from oplearn.training.tasks import EvaluateOptions

#: Seed stream keys: problems, points, walks, held-out test problems.
_PROBLEMS, _POINTS, _WALKS, _HELD_OUT = 101, 102, 103, 104
#: Problems whose walks run together (a fixed partition, so the targets do not depend on the batching).
_CHUNK = 16


def interpolate(u: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear values of grid fields on the unit square at points.

    Shapes: ``u (batch, 1, n_1, n_2)`` (nodes on both boundaries, axis 1 is :math:`x_1`),
    ``points (batch, q, 2) -> (batch, q)``.
    """
    # grid_sample's last coordinate indexes the first spatial axis; [0, 1] maps to [-1, 1].
    where = (2 * points.flip(-1) - 1).to(u.dtype).unsqueeze(2)  # (batch, q, 1, 2)
    return F.grid_sample(u, where, mode="bilinear", align_corners=True)[:, 0, :, 0]


class WoSTask(Task):
    """Learn the Poisson solution operator of a :class:`~oplearn.wos.problems.PoissonFamily` from walk-on-spheres targets."""

    name = "wos"
    data_file = False
    config_section = "wos"

    def __init__(self, config: RunConfig, progress: bool = True) -> None:
        super().__init__(config, progress)
        w = self.wos = config.wos or WoSConfig()
        problems = w.family.sample(w.n_train + w.n_val, generator(config.seed, _PROBLEMS))
        self.grid = Grid((w.resolution, w.resolution), SQUARE)
        self.problems = problems[: w.n_train]
        self.inputs = self.problems.fields(self.grid).float()
        self.points = self.problems.sample_points(w.points, generator(config.seed, _POINTS))
        self.sums = torch.zeros((w.n_train, w.points), dtype=torch.float64)
        self.walks = torch.zeros(w.n_train, dtype=torch.long)
        self.val = None
        if w.n_val:
            val = problems[w.n_train :]
            u, inside = val.reference(self.grid.refine(w.reference_refine))
            r = w.reference_refine
            self.val = (val.fields(self.grid).float(), subsample(u, r, 2).float(), subsample(inside, r, 2))

    def build_model(self) -> OperatorModel:
        """The operator; inputs normalised per channel, outputs on the scale of :math:`g`."""
        model = build_operator(self.config, 3, 1, self.grid)
        model.input_norm.fit(self.inputs)
        model.output_norm.fit(self.inputs[:, 1:2])
        return model

    def info(self) -> dict:
        return {"in_channels": 3, "out_channels": 1, "grid": self.grid.to_dict(), "task": self.name}

    def check_model(self, model: OperatorModel) -> None:
        check_operator_fits(model, self.grid)

    @classmethod
    def rebuild(cls, config: RunConfig, info: dict) -> OperatorModel:
        return build_operator(config, info["in_channels"], info["out_channels"], Grid.from_dict(info["grid"]))

    def __len__(self) -> int:
        return self.wos.n_train

    def start_epoch(self, epoch: int) -> None:
        """Add ``walks`` walks per point of every problem to the running means (in fixed chunks
        of problems, each with its own seed)."""
        w = self.wos
        for start in range(0, len(self), _CHUNK):
            chunk = torch.arange(start, min(start + _CHUNK, len(self)))
            est = walk_on_spheres(
                self.problems[chunk],
                self.points[chunk].flatten(0, 1),
                w.walks,
                group=torch.arange(len(chunk)).repeat_interleave(w.points),
                epsilon=w.epsilon,
                max_steps=w.max_steps,
                generator=generator(self.config.seed, _WALKS, epoch, start),
            )
            self.sums[chunk] += est.mean.view(len(chunk), w.points) * w.walks
            self.walks[chunk] += w.walks

    def targets(self, idx: torch.Tensor) -> torch.Tensor:
        """The running means at the points of problems ``idx``: ``(len(idx), points)``."""
        return self.sums[idx] / self.walks[idx, None]

    def loss(
        self,
        net: nn.Module,
        model: nn.Module,
        idx: torch.Tensor,
        device: torch.device,
        autocast: AbstractContextManager,
    ) -> torch.Tensor:
        target = self.targets(idx).float().to(device)
        with autocast:
            pred = net(self.inputs[idx].to(device))
        values = interpolate(pred.float(), self.points[idx].to(device))
        return relative_l2(values, target).mean()

    def validate(self, model: nn.Module, batch_size: int, device: torch.device) -> dict[str, float]:
        if self.val is None:
            return {}
        inputs, u, inside = self.val
        pred = predict(model, inputs, batch_size, device)[:, 0]
        mask = inside.to(pred.dtype)  # the error over the domain's nodes only
        return {"val_relative_l2": relative_l2(pred * mask, u * mask).mean().item()}

    @classmethod
    def held_out(cls, config: RunConfig, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``n`` problems of the run's family that neither training nor validation saw (their own
        seed stream), on the run's grid: ``(inputs (n, 3, *grid), reference u (n, *grid), inside (n, *grid))``,
        the reference being the finite-difference solution on the ``reference_refine``-times finer grid."""
        w = config.wos or WoSConfig()
        grid = Grid((w.resolution, w.resolution), SQUARE)
        problems = w.family.sample(n, generator(config.seed, _HELD_OUT))
        u, inside = problems.reference(grid.refine(w.reference_refine))
        r = w.reference_refine
        return problems.fields(grid).float(), subsample(u, r, 2).float(), subsample(inside, r, 2)

    @classmethod
    def evaluate(cls, run: Run, paths: list[Path], options: EvaluateOptions) -> list[dict]:
        """Relative L2 and max error over the domain's nodes against the finite-difference reference,
        on ``options.samples`` (default 32) held-out problems (:meth:`held_out`); ``paths`` are not used."""
        n = options.samples or 32
        inputs, u, inside = cls.held_out(run.config, n)
        pred = predict(run.model, inputs, options.batch_size, torch.device(options.device))[:, 0]
        run.scratch["wos held-out"] = (inputs, u, inside, pred)
        mask = inside.to(pred.dtype)
        error = (pred - u) * mask
        metrics = {
            "relative_l2": relative_l2(pred * mask, u * mask).mean().item(),
            "max_error": error.flatten(1).abs().max(dim=1).values.mean().item(),
        }
        return [
            {
                "key": f"held-out problems (seed {run.config.seed}, n {n})",
                "label": f"{n} held-out problems",
                "n": n,
                "metrics": metrics,
            }
        ]

    @classmethod
    def report(cls, run: Run, rows: list[dict], report: Report) -> None:
        """Source, prediction, reference and error on a few held-out domains."""
        import matplotlib.pyplot as plt

        inputs, u, inside, pred = run.scratch["wos held-out"]
        n = min(3, len(u))
        fig, axes = plt.subplots(n, 4, figsize=(13, 3.1 * n), squeeze=False)
        for i in range(n):
            outside = ~inside[i]
            vmin, vmax = float(u[i][inside[i]].min()), float(u[i][inside[i]].max())
            panels = [
                (inputs[i, 0], "source f", None, None),
                (u[i], "reference", vmin, vmax),
                (pred[i], "prediction", vmin, vmax),
                ((pred[i] - u[i]).abs(), "|error|", None, None),
            ]
            for ax, (field, name, lo, hi) in zip(axes[i], panels):
                shown = field.clone()
                shown[outside] = float("nan")
                im = ax.imshow(shown.T.numpy(), origin="lower", extent=(0, 1, 0, 1), vmin=lo, vmax=hi)
                ax.set_title(f"{name} (problem {i})", fontsize=9)
                ax.set_xticks([]), ax.set_yticks([])
                fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        report.figure("Held-out problems", fig, "held_out")

    def state_dict(self) -> dict:
        return {"sums": self.sums.clone(), "walks": self.walks.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.sums.copy_(state["sums"])
        self.walks.copy_(state["walks"])
