r"""High-dimensional Kolmogorov PDEs learned through SDEs: problems, losses, the learned model, the task.

:math:`u(t, x; p) = \mathbb E\,\varphi(X^{x,p}_t)` for :math:`dX = \mu\,dt + \sigma\,dW` (Feynman-Kac),
learned over a box of times, states and parameters from paths simulated with :mod:`oplearn.sde`.

- :mod:`~oplearn.kolmogorov.problems` -- the :class:`KolmogorovPDE` object and the problem families.
- :mod:`~oplearn.kolmogorov.losses` -- Feynman-Kac regression, BSDE, detached BSDE and learned-gradient BSDE losses.
- :mod:`~oplearn.kolmogorov.model` -- the learned solution on standardised inputs.
- :mod:`~oplearn.kolmogorov.metrics` -- relative L1/L2 errors with the reference's own error.
- :mod:`~oplearn.kolmogorov.task` -- ``train.task: kolmogorov``.
"""

from oplearn.kolmogorov.losses import (
    BSDE,
    LOSSES,
    DetachedBSDE,
    FeynmanKac,
    KolmogorovLoss,
    LearnedGradientBSDE,
    make_loss,
)
from oplearn.kolmogorov.metrics import relative_errors, solution_metrics
from oplearn.kolmogorov.model import KolmogorovModel
from oplearn.kolmogorov.problems import PROBLEMS, KolmogorovPDE, Reference, make_problem

__all__ = [
    "BSDE",
    "LOSSES",
    "PROBLEMS",
    "DetachedBSDE",
    "FeynmanKac",
    "KolmogorovLoss",
    "KolmogorovModel",
    "KolmogorovPDE",
    "LearnedGradientBSDE",
    "Reference",
    "make_loss",
    "make_problem",
    "relative_errors",
    "solution_metrics",
]
