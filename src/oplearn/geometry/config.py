"""The ``points`` section of a run config: operators on point clouds and meshes (``train.task=points``)."""

from __future__ import annotations

from pydantic import Field, model_validator

from oplearn.schema import Strict


class PointsConfig(Strict):
    """How a point-cloud operator learns from a mesh dataset (:class:`oplearn.geometry.task.PointTask`).

    The loss is ``data_weight`` times the relative L2 error at the nodes (lumped quadrature
    weights) plus ``physics_weight`` times the physics loss of the file's PDE at the nodes
    (:class:`oplearn.point_physics.PointPhysicsLoss`, by autograd in the query points: it needs
    a model whose output is smooth there, ``model.name=mgno``, and a PDE with a pointwise
    residual), whose Dirichlet term has weight ``boundary_weight``. ``data_weight = 0`` trains
    without the stored solutions; the output normaliser then has mean 0 and std ``output_scale``.
    """

    data_weight: float = Field(default=1.0, ge=0)
    physics_weight: float = Field(default=0.0, ge=0)
    boundary_weight: float = Field(default=100.0, ge=0)
    output_scale: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _some_loss(self) -> PointsConfig:
        if self.data_weight == 0 and self.physics_weight == 0:
            raise ValueError("points.data_weight and points.physics_weight are both 0: nothing to learn from")
        return self


SECTIONS = {"points": PointsConfig}
