"""What a dataset holds samples of: its PDE, the parameters of its recipe and its channels.

A trained operator knows the problem of its training data (kept in its checkpoint by the
task: ``info["problem"]``); data of another PDE or another channel layout are refused
before evaluation, since their metrics would mean nothing (a Darcy model scored on Poisson
data), and a recipe with other parameters (another contrast, another viscosity) is evaluated
with a warning: it is a test out of the training distribution.

Files of other formats (:mod:`oplearn.data.readers`) name no PDE; their problem is their
format (and The Well's ``dataset_name``), which ``oplearn convert`` keeps, so a converted
file and its original are the same problem.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from oplearn.errors import DataError, OplearnWarning

#: Recipe parameters that do not change the problem: descriptions of the solver and of the
#: initial law, and the refinement of the reference solve (a more accurate reference of the same data).
NOT_THE_PROBLEM = frozenset({"solver", "initial", "refine"})


def describe_problem(meta: dict[str, Any]) -> dict[str, Any]:
    """The problem of a dataset from its header (:func:`oplearn.data.files.read_meta`, or a
    reader's ``meta``): ``pde``, ``pde_params``, ``input_names``, ``output_names``."""
    pde = meta.get("pde")
    if pde is None:
        name = meta.get("dataset_name")
        pde = f"{meta.get('format', 'unknown')}:{name}" if name else meta.get("format", "unknown")
    params = meta.get("pde_params") or meta.get("simulation_parameters")  # The Well's name for them
    params = params if isinstance(params, dict) else {}
    return {
        "pde": str(pde),
        "pde_params": {k: v for k, v in params.items() if k not in NOT_THE_PROBLEM},
        "input_names": list(meta.get("input_names") or []),
        "output_names": list(meta.get("output_names") or []),
    }


def check_same_problem(
    trained: dict[str, Any] | None, meta: dict[str, Any], path: str | Path, force: bool = False
) -> None:
    """Refuse (one-line DataError) data of another PDE or channel layout than ``trained`` (a
    :func:`describe_problem`) unless ``force``; warn (:class:`~oplearn.errors.OplearnWarning`)
    when the recipe parameters differ. ``trained=None`` (runs saved before problems were
    recorded) checks nothing."""
    if not trained:
        return
    data = describe_problem(meta)
    differences = []
    if data["pde"] != trained["pde"]:
        differences.append(f"it holds {data['pde']} data, the run learned {trained['pde']}")
    for key in ("input_names", "output_names"):
        if data[key] and trained.get(key) and data[key] != trained[key]:
            differences.append(
                f"its {key.split('_')[0]} channels are {', '.join(data[key])}, the run's {', '.join(trained[key])}"
            )
    if differences and not force:
        raise DataError(f"'{path}': {'; '.join(differences)}; pass --force to evaluate anyway")
    changed = sorted(
        k
        for k in set(data["pde_params"]) | set(trained.get("pde_params", {}))
        if data["pde_params"].get(k) != trained.get("pde_params", {}).get(k)
    )
    if changed and not differences:
        text = ", ".join(
            f"{k}={data['pde_params'].get(k)} (trained on {trained['pde_params'].get(k)})" for k in changed
        )
        warnings.warn(
            f"'{path}' was generated with other parameters than the training data: {text}", OplearnWarning, stacklevel=2
        )
