"""Kolmogorov problems, one family per module; :data:`PROBLEMS` maps config names to classes.

``make_problem(name, **params)`` builds one from a config (unknown names or parameters are a
one-line :class:`~oplearn.errors.ConfigError`).
"""

from __future__ import annotations

import inspect

from oplearn.errors import ConfigError
from oplearn.kolmogorov.problems.base import KolmogorovPDE, ParameterBox, Reference
from oplearn.kolmogorov.problems.basket import Basket
from oplearn.kolmogorov.problems.black_scholes import BlackScholes, CorrelatedBlackScholes
from oplearn.kolmogorov.problems.heat import Gaussian, Heat, HeatGaussian, HeatParaboloid
from oplearn.kolmogorov.problems.hjb import LinearizedHJB

PROBLEMS: dict[str, type[KolmogorovPDE]] = {
    cls.name: cls
    for cls in (
        BlackScholes,
        Basket,
        HeatParaboloid,
        HeatGaussian,
        Heat,
        Gaussian,
        CorrelatedBlackScholes,
        LinearizedHJB,
    )
}


def problem_parameters(name: str) -> set[str]:
    """The keyword arguments of the constructor of the problem ``name``."""
    return set(inspect.signature(PROBLEMS[name].__init__).parameters) - {"self"}


def make_problem(name: str, **params: float) -> KolmogorovPDE:
    """The problem ``name`` with ``params`` (its constructor's keyword arguments)."""
    if name not in PROBLEMS:
        raise ConfigError(f"unknown Kolmogorov problem '{name}'; choose one of {', '.join(PROBLEMS)}")
    unknown = set(params) - problem_parameters(name)
    if unknown:
        allowed = ", ".join(sorted(problem_parameters(name))) or "none"
        raise ConfigError(
            f"Kolmogorov problem '{name}': unknown parameter(s) {', '.join(sorted(unknown))}; allowed: {allowed}"
        )
    defaults = inspect.signature(PROBLEMS[name].__init__).parameters
    for key, value in params.items():
        default = defaults[key].default
        kind = float if isinstance(default, float) else type(default)
        if kind in (int, float) and (
            isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int)
        ):
            raise ConfigError(
                f"Kolmogorov problem '{name}': parameter '{key}' must be {kind.__name__} (default {default}), got {value!r}"
            )
    try:
        return PROBLEMS[name](**params)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"Kolmogorov problem '{name}': {err}") from None


__all__ = [
    "PROBLEMS",
    "Basket",
    "BlackScholes",
    "CorrelatedBlackScholes",
    "Gaussian",
    "Heat",
    "HeatGaussian",
    "HeatParaboloid",
    "KolmogorovPDE",
    "LinearizedHJB",
    "ParameterBox",
    "Reference",
    "make_problem",
    "problem_parameters",
]
