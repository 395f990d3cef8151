"""The ``wos`` section of a run config: walk-on-spheres supervision (``train.task=wos``)."""

from __future__ import annotations

from pydantic import Field

from oplearn.schema import Strict
from oplearn.wos.problems import PoissonFamily


class WoSConfig(Strict):
    """Operator training on walk-on-spheres estimates (:class:`oplearn.wos.training.WoSTask`).

    ``n_train`` problems of ``family`` train and ``n_val`` more validate (against the
    finite-difference reference solved on a ``reference_refine``-times finer grid). Each
    training problem has ``points`` fixed random points in its domain; every epoch adds
    ``walks`` new walks per point to their running means, the regression targets.
    The operator works on the ``resolution`` x ``resolution`` grid of the unit square.
    """

    n_train: int = Field(default=200, gt=0)
    n_val: int = Field(default=16, ge=0)
    resolution: int = Field(default=33, gt=4)
    points: int = Field(default=64, gt=0)
    walks: int = Field(default=4, gt=0)
    epsilon: float = Field(default=1e-3, gt=0)
    max_steps: int = Field(default=1000, gt=0)
    reference_refine: int = Field(default=2, gt=0)
    family: PoissonFamily = Field(default_factory=PoissonFamily)


SECTIONS = {"wos": WoSConfig}
