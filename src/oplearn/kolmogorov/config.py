"""The ``kolmogorov:`` section of a run config (``train.task: kolmogorov``).

Light on purpose (no torch): the run config is assembled from it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from oplearn.schema import Strict


class KolmogorovConfig(Strict):
    """Learn the solution family of ``problem`` (:data:`oplearn.kolmogorov.problems.PROBLEMS`,
    built with ``problem_params``, e.g. ``{dim: 10}``) with ``loss`` (``fk``, ``bsde``, ``detach``,
    ``bsde_grad``: :mod:`oplearn.kolmogorov.losses`) on paths of ``steps`` Euler-Maruyama steps.
    ``bsde_grad`` adds a gradient network built from the same ``model:`` section.

    An epoch is ``iterations`` optimisation steps of ``data.batch_size`` points drawn uniformly
    from the problem's box (from a generator seeded by the run seed, the epoch and the step).
    After each epoch ``validation_points`` fixed points give ``val_relative_l1`` and
    ``val_relative_l2``; ``oplearn evaluate`` uses ``eval_points`` held-out points (or
    ``--samples``). Where the problem has no closed form, references are Monte-Carlo means of
    ``reference_samples`` draws per point (``validation_reference_samples`` for validation).
    """

    problem: str = "heat_paraboloid"
    problem_params: dict[str, Any] = Field(default_factory=dict)
    loss: Literal["fk", "bsde", "detach", "bsde_grad"] = "fk"
    steps: int = Field(default=25, gt=0)
    iterations: int = Field(default=100, gt=0)
    validation_points: int = Field(default=4096, ge=0)
    validation_reference_samples: int = Field(default=4096, gt=1)
    eval_points: int = Field(default=4096, gt=1)
    reference_samples: int = Field(default=65536, gt=1)


SECTIONS = {"kolmogorov": KolmogorovConfig}
