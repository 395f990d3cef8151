"""Targets for density sampling, one per module; :data:`TARGETS` maps config names to classes.

``make_target(name, **params)`` builds one from a config (unknown names or parameters are a
one-line :class:`~oplearn.errors.ConfigError`).
"""

from __future__ import annotations

import inspect
from typing import Any

from oplearn.errors import ConfigError
from oplearn.sampling.targets.base import Target
from oplearn.sampling.targets.double_well import DoubleWell
from oplearn.sampling.targets.funnel import Funnel
from oplearn.sampling.targets.gaussian import Gaussian
from oplearn.sampling.targets.lgcp import LogGaussianCoxProcess
from oplearn.sampling.targets.logistic_regression import LogisticRegression
from oplearn.sampling.targets.many_well import ManyWell
from oplearn.sampling.targets.mixture import GMM40, GaussianMixture
from oplearn.sampling.targets.student_t import StudentTMixture

TARGETS: dict[str, type[Target]] = {
    cls.name: cls
    for cls in (
        Gaussian,
        GMM40,
        Funnel,
        ManyWell,
        DoubleWell,
        StudentTMixture,
        LogisticRegression,
        LogGaussianCoxProcess,
    )
}


def target_parameters(name: str) -> set[str]:
    """The keyword arguments of the constructor of the target ``name``."""
    return set(inspect.signature(TARGETS[name].__init__).parameters) - {"self"}


def make_target(name: str, **params: Any) -> Target:
    """The target ``name`` with ``params`` (its constructor's keyword arguments)."""
    if name not in TARGETS:
        raise ConfigError(f"unknown target '{name}'; choose one of {', '.join(sorted(TARGETS))}")
    cls = TARGETS[name]
    allowed = target_parameters(name)
    unknown = set(params) - allowed
    if unknown:
        raise ConfigError(
            f"target '{name}': unknown parameter(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(allowed))}"
        )
    return cls(**params)


__all__ = [
    "GMM40",
    "TARGETS",
    "DoubleWell",
    "Funnel",
    "Gaussian",
    "GaussianMixture",
    "LogGaussianCoxProcess",
    "LogisticRegression",
    "ManyWell",
    "StudentTMixture",
    "Target",
    "make_target",
    "target_parameters",
]
