"""What posterior sampling needs from a trained diffusion prior (and, for DDIS, a forward operator).

:func:`load_setup` reads a prior run (:func:`oplearn.diffusion.task.load_prior`): its denoiser
acts on normalised fields, so the physical fields the observations see are
``fields(z) = prior.decode(z)``; its forward-process noise (white or GRF) draws the starting
noise; the PDE of its training data (for the PDE-residual term and the coefficient values) is
rebuilt from the dataset's recorded recipe. With ``forward_run`` (DDIS) the prior models the
PDE's inputs only and a trained operator run (:func:`oplearn.training.run.load_run`) appends the
solution: ``fields(z) = [a, G(a)]``, ``a = prior.decode(z)``; with ``forward_solver`` the PDE's
own solver is ``G`` (:class:`oplearn.inverse.solver_operator.SolverOperator`, differentiable by
the adjoint method), so the guidance sees the exact discrete physics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from oplearn.diffusion.noise import GRFNoise, WhiteNoise
from oplearn.errors import OplearnError
from oplearn.grids import Grid
from oplearn.inverse.guidance import DecoupledFields, Denoiser, Fields
from oplearn.pdes.base import PDE

if TYPE_CHECKING:
    from oplearn.config import RunConfig


@dataclass
class InverseSetup:
    """A prior ready for :func:`oplearn.inverse.posterior.sample_posterior`.

    ``prior_shape`` is ``(C, *spatial)`` of the denoiser's (normalised) space; ``names`` the
    channels of the physical fields ``fields`` returns; ``noise`` is the prior's forward noise.
    """

    denoise: Denoiser
    fields: Fields
    noise: WhiteNoise | GRFNoise
    prior_shape: tuple[int, ...]
    names: tuple[str, ...]
    grid: Grid
    pde: PDE | None
    sigma_min: float = 0.002
    sigma_max: float = 80.0


def _training_pde(config: RunConfig) -> PDE | None:
    """The PDE of a run's training data, from its generate recipe or the file's header."""
    from oplearn.data.files import read_meta
    from oplearn.data.generate import make_pde
    from oplearn.errors import DataError

    if config.data.generate is not None:
        return make_pde(config.data.generate.pde, config.data.generate.params)
    try:
        meta = read_meta(config.data.path)
        return make_pde(meta["pde"], meta.get("pde_params"))
    except (DataError, KeyError):
        return None


def _channel_names(meta: dict, pde: PDE | None) -> tuple[str, ...]:
    """The PDE's channel names of the prior's fields (``inputs``, ``outputs`` or ``joint``), else the prior's own."""
    if pde is not None:
        names = {"inputs": pde.input_names, "outputs": pde.output_names, "joint": (*pde.input_names, *pde.output_names)}
        candidate = tuple(names.get(meta["fields"], ()))
        if len(candidate) == meta["channels"]:
            return candidate
    return tuple(meta["channel_names"])


def _frozen(model: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def load_setup(
    run_dir: str | Path,
    forward_run: str | Path | None = None,
    device: str | torch.device = "cpu",
    forward_solver: bool = False,
) -> InverseSetup:
    """The :class:`InverseSetup` of a prior run directory (module docstring)."""
    from oplearn.diffusion.task import load_prior
    from oplearn.inverse.solver_operator import SolverOperator
    from oplearn.training.run import load_run

    if forward_run is not None and forward_solver:
        raise OplearnError("give one forward operator: --forward-run RUN_DIR or --forward-solver, not both")
    prior, meta = load_prior(run_dir)
    prior = _frozen(prior, device)
    grid: Grid = meta["grid"]
    pde = _training_pde(meta["config"])
    names = _channel_names(meta, pde)
    fields: Fields = prior.decode
    if forward_run is not None or forward_solver:
        flag = "--forward-run" if forward_run is not None else "--forward-solver"
        if meta["fields"] != "inputs":
            raise OplearnError(
                f"{flag} (DDIS) needs a prior on the PDE's inputs alone (diffusion.fields: inputs); "
                f"'{run_dir}' models {meta['fields']}"
            )
        if forward_solver:
            if pde is None:
                raise OplearnError(f"--forward-solver: the PDE of '{run_dir}''s training data is not recorded")
            operator = SolverOperator(pde, grid)
        else:
            operator, _ = load_run(forward_run)
        if getattr(operator, "in_channels", len(names)) != len(names):
            raise OplearnError(f"'{forward_run}' maps {operator.in_channels} channels; the prior has {len(names)}")
        fields = DecoupledFields(_frozen(operator, device), decode=prior.decode)
        out = operator.out_channels
        names = names + (
            tuple(pde.output_names)
            if pde is not None and len(pde.output_names) == out
            else tuple(f"out{i}" for i in range(out))
        )
    return InverseSetup(prior, fields, meta["noise"], (meta["channels"], *grid.shape), names, grid, pde)
