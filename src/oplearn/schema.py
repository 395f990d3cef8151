"""The base of every validated configuration class (run configs and model configs)."""

from typing import ClassVar

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A pydantic model that rejects unknown keys and validates assignments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(Strict):
    """The config of one model (the ``model:`` section), with a ``name`` literal field.

    ``kind`` says what the model acts on, and so which tasks can train it
    (``Task.model_kinds``): ``"grid"`` for operators on Cartesian grids
    ``(batch, channels, *spatial)``, built by ``build(in_channels, out_channels, n_dim, grid_shape)``.
    """

    kind: ClassVar[str] = "grid"
