r"""Operator learning on point clouds and meshes (``train.task=points``).

The training file is a mesh dataset (:mod:`oplearn.data.mesh_files`): every sample has its
own nodes. An item is a sample; a batch packs its samples' nodes
(:func:`oplearn.geometry.batch.pack`) and the model (a ``points`` model: ``gino``, ``mgno``)
maps the nodal inputs to the outputs at the same nodes, with the signed distance of each
sample's mesh on the model's latent grid as the geometry. The loss (``points`` section,
:class:`~oplearn.geometry.config.PointsConfig`) is the relative L2 error at the nodes with the
meshes' lumped quadrature weights (:func:`oplearn.metrics.relative_l2_on_mesh`), plus, for a
mollified GNO, the PDE's residual by autograd at the nodes
(:class:`oplearn.point_physics.PointPhysicsLoss`).

Evaluation reads any mesh dataset of the same PDE, at any resolution (the model is
discretisation-agnostic): the relative L2 and the max error at the nodes, sample means. The
report draws a few test samples on their meshes (``tripcolor``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from oplearn.config import RunConfig
from oplearn.data.generate import make_pde
from oplearn.data.mesh_files import MeshDataset
from oplearn.errors import ConfigError, DataError
from oplearn.geometry.batch import PackedBatch, pack, signed_distance_grid
from oplearn.geometry.config import PointsConfig
from oplearn.geometry.mesh import MeshSample
from oplearn.grids import Grid
from oplearn.layers.normalization import ChannelMoments
from oplearn.metrics import relative_l2_on_mesh
from oplearn.models.point_operator import PointOperator
from oplearn.point_physics import PointPhysicsLoss
from oplearn.training.tasks import Task, ensure_dataset

if TYPE_CHECKING:
    from oplearn.pdes.mesh_base import MeshPDE
    from oplearn.report import Report
    from oplearn.training.rundir import Run
    from oplearn.training.tasks import EvaluateOptions

#: The box of every mesh family of oplearn (converted meshes: the box of their nodes).
UNIT_SQUARE = ((0.0, 1.0), (0.0, 1.0))


def data_box(samples: list[MeshSample]) -> tuple[tuple[float, float], ...]:
    """The unit square when every node lies in it, else the bounding box of all nodes (5% margin)."""
    lo = torch.stack([s.nodes.amin(0) for s in samples]).amin(0)
    hi = torch.stack([s.nodes.amax(0) for s in samples]).amax(0)
    if len(lo) == 2 and lo.min() >= 0 and hi.max() <= 1:
        return UNIT_SQUARE
    pad = 0.05 * (hi - lo)
    return tuple((float(a), float(b)) for a, b in zip(lo - pad, hi + pad))


class Prepared:
    """Samples with what every forward pass needs, computed once: quadrature weights, boundary
    nodes and the signed distance on the model's latent grid."""

    def __init__(self, samples: list[MeshSample], box: tuple[tuple[float, float], ...]) -> None:
        self.samples, self.box = samples, box
        self.boundary = [
            s.mesh.boundary if s.triangles is not None else torch.zeros(len(s.nodes), dtype=torch.bool) for s in samples
        ]
        self._latent: dict = {}

    def __len__(self) -> int:
        return len(self.samples)

    def batch(self, idx: list[int], grid: Grid) -> tuple[PackedBatch, torch.Tensor, torch.Tensor]:
        """``(packed samples, latent (B, 1, *grid.shape), boundary (P,))`` of the samples ``idx``."""
        missing = [i for i in idx if (i, grid.shape) not in self._latent]
        if missing:
            for i, sdf in zip(missing, signed_distance_grid([self.samples[i] for i in missing], grid)):
                self._latent[i, grid.shape] = sdf
        latent = torch.stack([self._latent[i, grid.shape] for i in idx])
        return pack([self.samples[i] for i in idx], self.box), latent, torch.cat([self.boundary[i] for i in idx])


def forward(
    model: PointOperator | nn.Module,
    b: PackedBatch,
    latent: torch.Tensor,
    device: torch.device | str,
    queries: torch.Tensor | None = None,
) -> torch.Tensor:
    """The model's outputs at the nodes of ``b`` (or at ``queries``, packed like the nodes)."""
    b = b.to(device)
    y = b.nodes if queries is None else queries
    return model(b.nodes, b.inputs, y, b.batch, b.batch, b.weights, latent.to(device))


def sample_errors(b: PackedBatch, pred: torch.Tensor) -> torch.Tensor:
    """The relative L2 error of each sample at its nodes ``(B,)``."""
    return torch.stack(
        [
            relative_l2_on_mesh(p, t, w)
            for p, t, w in zip(b.split(pred), b.split(b.outputs.to(pred)), b.split(b.weights.to(pred)))
        ]
    )


class PointTask(Task):
    """Learn the map from nodal inputs to nodal outputs of a mesh dataset (see the module docstring)."""

    name = "points"
    config_section = "points"
    model_kinds = ("points",)
    default_model = "gino"

    def __init__(self, config: RunConfig, progress: bool = True) -> None:
        super().__init__(config, progress)
        self.points = config.points or PointsConfig()
        path = ensure_dataset(config.data.train_spec, progress)
        data = MeshDataset(path)
        n_val = config.data.n_val
        n_train = config.data.n_train if config.data.n_train is not None else len(data) - n_val
        if n_train <= 0 or n_train + n_val > len(data):
            raise ConfigError(
                f"config: data.n_train={n_train} + data.n_val={n_val} exceeds the {len(data)} samples in '{path}'"
            )
        samples = [data[i] for i in range(n_train + n_val)]
        self.meta, self.input_names, self.output_names = data.meta, data.input_names, data.output_names
        self.box = data_box(samples)
        self.train = Prepared(samples[:n_train], self.box)
        self.val = Prepared(samples[n_train:], self.box) if n_val else None
        self.physics = None
        if self.points.physics_weight > 0:
            self.physics = PointPhysicsLoss(self._pde(), boundary_weight=self.points.boundary_weight)

    def _pde(self) -> MeshPDE:
        try:
            pde = make_pde(self.meta.get("pde", "?"), self.meta.get("pde_params"))
        except DataError:
            raise ConfigError(
                f"config: points.physics_weight > 0 needs the PDE of the data; '{self.meta.get('pde')}' is not one of oplearn's"
            ) from None
        if not getattr(pde, "pointwise_residual", False):
            raise ConfigError(
                f"config: points.physics_weight > 0 needs a PDE with a pointwise residual on meshes; "
                f"the data's ({pde.name}) has none: train it with data"
            )
        return pde

    @classmethod
    def check_config(cls, config: RunConfig) -> None:
        points = config.points or PointsConfig()
        if points.physics_weight > 0 and config.model is not None and config.model.name != "mgno":
            raise ValueError(
                f"points.physics_weight > 0 takes derivatives in the query points: use model.name=mgno (not {config.model.name})"
            )

    def build_model(self) -> PointOperator:
        model = self.rebuild(self.config, self.info())
        inputs = ChannelMoments.of(s.inputs.T[None] for s in self.train.samples)
        model.input_norm.fit_moments(inputs)
        if self.points.data_weight == 0:
            model.output_norm.std.fill_(self.points.output_scale)
        else:
            model.output_norm.fit_moments(ChannelMoments.of(s.outputs.T[None] for s in self.train.samples))
        return model

    def info(self) -> dict:
        return {
            "in_channels": len(self.input_names),
            "out_channels": len(self.output_names),
            "box": self.box,
            "input_names": self.input_names,
            "output_names": self.output_names,
            "pde": self.meta.get("pde"),
            "task": self.name,
        }

    @classmethod
    def rebuild(cls, config: RunConfig, info: dict) -> PointOperator:
        box = tuple(tuple(b) for b in info["box"])
        return PointOperator(
            config.model.build(info["in_channels"], info["out_channels"], box),
            info["in_channels"],
            info["out_channels"],
            box,
        )

    def __len__(self) -> int:
        return len(self.train)

    def loss(
        self,
        net: nn.Module,
        model: nn.Module,
        idx: torch.Tensor,
        device: torch.device,
        autocast: AbstractContextManager,
    ) -> torch.Tensor:
        b, latent, boundary = self.train.batch(idx.tolist(), model.latent_grid)
        loss = torch.zeros((), device=device)
        if self.points.data_weight > 0:
            with autocast:
                pred = forward(net, b, latent, device)
            loss = loss + self.points.data_weight * sample_errors(b, pred.float()).mean()
        if self.physics is not None:
            dev = b.to(device)
            fn = lambda y: forward(net, b, latent, device, queries=y)
            loss = loss + self.points.physics_weight * self.physics(fn, dev.nodes, dev.inputs, boundary.to(device))
        return loss

    @staticmethod
    @torch.no_grad()
    def predict(
        model: PointOperator, prepared: Prepared, batch_size: int, device: torch.device | str
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Each sample's prediction at its nodes (on the CPU) and each sample's relative L2 error."""
        model.eval()
        preds, errors = [], []
        for start in range(0, len(prepared), batch_size):
            b, latent, _ = prepared.batch(list(range(start, min(start + batch_size, len(prepared)))), model.latent_grid)
            pred = forward(model, b, latent, device).cpu()
            preds += b.split(pred)
            errors.append(sample_errors(b, pred))
        return preds, torch.cat(errors)

    def validate(self, model: nn.Module, batch_size: int, device: torch.device) -> dict[str, float]:
        if self.val is None:
            return {}
        return {"val_relative_l2": self.predict(model, self.val, batch_size, device)[1].mean().item()}

    @classmethod
    def evaluate(cls, run: Run, paths: list[Path], options: EvaluateOptions) -> list[dict]:
        """Relative L2 and max error at the nodes of each test file's samples (sample means)."""
        from oplearn.evaluate import test_paths

        rows = []
        for path in test_paths(run, paths):
            data = MeshDataset(path)
            trained_on = run.info.get("pde") if isinstance(run.info, dict) else None
            if trained_on and data.meta.get("pde") != trained_on and not options.force:
                raise DataError(
                    f"'{path}' holds {data.meta.get('pde')} data; the run learned {trained_on} (--force evaluates anyway)"
                )
            prepared = Prepared([data[i] for i in range(len(data))], tuple(tuple(b) for b in run.info["box"]))
            preds, errors = cls.predict(
                run.model.to(options.device), prepared, options.batch_size, torch.device(options.device)
            )
            max_error = torch.stack([(p - s.outputs).abs().max() for p, s in zip(preds, prepared.samples)])
            run.scratch[f"points {path}"] = (prepared.samples[:3], preds[:3])
            nodes = data.nodes_per_sample()
            mesh = data.meta.get("mesh") or {}
            label = f"{Path(path).name} ({'resolution ' + str(mesh['resolution']) + ', ' if mesh.get('resolution') else ''}{nodes.mean():.0f} nodes)"
            rows.append(
                {
                    "key": str(Path(path).resolve()),
                    "label": label,
                    "path": str(path),
                    "n": len(data),
                    "mean_nodes": float(nodes.mean()),
                    "metrics": {"relative_l2": errors.mean().item(), "max_error": max_error.mean().item()},
                }
            )
        return sorted(rows, key=lambda row: row["mean_nodes"])

    @classmethod
    def report(cls, run: Run, rows: list[dict], report: Report) -> None:
        """Input, reference, prediction and error of up to three samples per test file, on their meshes."""
        import matplotlib.pyplot as plt
        from matplotlib.tri import Triangulation

        for row in rows:
            samples, preds = run.scratch[f"points {row['path']}"]
            fig, axes = plt.subplots(len(samples), 4, figsize=(13, 3.1 * len(samples)), squeeze=False)
            for i, (s, pred) in enumerate(zip(samples, preds)):
                tri = Triangulation(
                    s.nodes[:, 0].numpy(), s.nodes[:, 1].numpy(), None if s.triangles is None else s.triangles.numpy()
                )
                truth, guess = s.outputs[:, 0], pred[:, 0]
                lo, hi = float(truth.min()), float(truth.max())
                panels = [
                    (
                        s.inputs[:, 0] if s.inputs.shape[1] else truth,
                        f"input {run.info['input_names'][0] if s.inputs.shape[1] else ''}",
                        None,
                        None,
                    ),
                    (truth, "reference", lo, hi),
                    (guess, "prediction", lo, hi),
                    ((guess - truth).abs(), "|error|", None, None),
                ]
                for ax, (values, title, vmin, vmax) in zip(axes[i], panels):
                    im = ax.tripcolor(tri, values.numpy(), shading="gouraud", vmin=vmin, vmax=vmax)
                    ax.set_title(f"{title} (sample {i})", fontsize=9)
                    ax.set_aspect("equal")
                    ax.set_xticks([]), ax.set_yticks([])
                    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
            fig.suptitle(
                f"{row['label']}: relative L2 {row['metrics']['relative_l2']:.4f} (mean over {row['n']} samples)"
            )
            report.figure(f"Test samples of {Path(row['path']).name}", fig)
