"""The ``sampling:`` section of a run config: a learned diffusion sampler (``train.task: sampler``).

Light on purpose (no torch): the run config is assembled from it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from oplearn.schema import Strict


class ControlNetConfig(Strict):
    """The control network (:class:`oplearn.sampling.networks.ControlNet`): ``width`` channels,
    ``depth`` hidden layers, the score feature (``use_score``; underdamped methods other than
    ``dis_ud`` take none), the clipping level ``clip`` of the feature and the output, and the
    feature's initial weight ``gate_init`` (default: the method's, 1 for PIS, DIS and DDS, whose
    features approximate the optimal control, 0 for the others)."""

    width: int = Field(default=64, gt=0)
    depth: int = Field(default=2, gt=0)
    use_score: bool = True
    clip: float | None = Field(default=10.0, gt=0)
    gate_init: float | None = None


class LocalSearchConfig(Strict):
    """Off-policy training on backward paths from MALA-refined samples
    (:class:`oplearn.sampling.local_search.LocalSearch`): ``capacity`` points per buffer, the rank
    priority ``rank_weight``, a refinement every ``cycle`` steps of ``mcmc_steps`` MALA moves (the
    first ``burn_in`` not kept) from ``step_size``, adapted towards ``target_acceptance``. The
    defaults are the reference's Many-Well setting, with smaller buffers."""

    capacity: int = Field(default=20000, gt=0)
    rank_weight: float = Field(default=0.01, gt=0)
    cycle: int = Field(default=100, ge=2)
    mcmc_steps: int = Field(default=200, gt=0)
    burn_in: int = Field(default=100, ge=0)
    step_size: float = Field(default=0.1, gt=0)
    target_acceptance: float = Field(default=0.574, gt=0, lt=1)


class SamplingConfig(Strict):
    """Sample ``target`` with ``method`` (:data:`oplearn.sampling.methods.METHODS`), trained with ``loss``.

    ``target_params`` and ``method_params`` are the keyword arguments of the target's and the
    method's constructors (e.g. ``{dim: 2}``; ``{steps: 64, scale: 40.0, grid: cosine}``). An
    epoch is ``iterations`` optimisation steps of ``data.batch_size`` paths each (paths drawn from
    a generator seeded by the run seed, the epoch and the step). ``exploration`` is the standard
    deviation of the off-policy noise of the log-variance and trajectory-balance losses;
    ``local_search`` alternates their steps with backward paths from MCMC-refined samples.
    Trajectory balance's learned log Z starts at the untrained sampler's ELBO (on
    ``validation_samples`` paths, at least 256) and trains at its own learning rate ``log_z_lr``
    (following the network's schedule). After each
    epoch ``validation_samples`` paths give the ELBO, the importance-sampling log Z and the ESS;
    ``oplearn evaluate`` draws ``eval_samples`` samples under ``eval_seeds`` estimator seeds
    unless its ``--samples`` / ``--seeds`` say otherwise.
    """

    target: str = "gmm40"
    target_params: dict[str, Any] = Field(default_factory=dict)
    method: str = "dis"
    method_params: dict[str, Any] = Field(default_factory=dict)
    loss: Literal["kl", "log_variance", "trajectory_balance"] = "kl"
    exploration: float = Field(default=0.0, ge=0)
    local_search: LocalSearchConfig | None = None
    log_z_lr: float = Field(default=0.1, gt=0)
    iterations: int = Field(default=100, gt=0)
    net: ControlNetConfig = Field(default_factory=ControlNetConfig)
    validation_samples: int = Field(default=1000, ge=0)
    eval_samples: int = Field(default=2000, gt=1)
    eval_seeds: int = Field(default=5, gt=0)


SECTIONS = {"sampling": SamplingConfig}
