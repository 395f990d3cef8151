"""The base of every validated configuration class (run configs and model configs), and value
types that several of them share."""

from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict

from oplearn.errors import ConfigError


class Strict(BaseModel):
    """A pydantic model that rejects unknown keys and validates assignments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ModelSpec(Strict):
    """The config of one model (the ``model:`` section), with a ``name`` literal field.

    ``kind`` says what the model acts on, and so which tasks can train it
    (``Task.model_kinds``): ``"grid"`` for operators on Cartesian grids
    ``(batch, channels, *spatial)``, built by ``build(in_channels, out_channels, n_dim, grid_shape)``.
    ``conditionable`` grid models also take ``build(..., condition_channels=c)`` and are then
    called as ``net(x, condition)`` with ``condition (batch, c)`` modulating every block
    (:mod:`oplearn.layers.conditioning`).
    """

    kind: ClassVar[str] = "grid"
    conditionable: ClassVar[bool] = False


#: Kept Fourier modes of the FNO family (``model.modes``): one number for every dimension, or
#: one per dimension, e.g. ``[4, 5]``. ``m_j`` keeps the frequencies ``-m_j <= k_j < m_j`` on
#: every axis but the last and ``0 <= k_d < m_d`` on the last one (the real FFT's half
#: spectrum), as :class:`oplearn.layers.spectral.SpectralConv` documents. NeuralOperator's
#: ``n_modes`` counts the frequencies of both signs on every axis and keeps ``n // 2 + 1`` on
#: the last, so oplearn's ``(m_1, ..., m_d)`` is its ``n_modes = (2 m_1, ..., 2 m_{d-1}, 2 m_d - 1)``;
#: its usual ``n_modes = (2m, 2m)`` keeps one frequency more (``k_d = m``) on the last axis.
def _positive_modes(value: int | tuple[int, ...]) -> int | tuple[int, ...]:
    values = (value,) if isinstance(value, int) else value
    if not 1 <= len(values) <= 3 or any(m < 1 for m in values):
        raise ValueError("modes must be a positive integer or a list of 1 to 3 positive integers (one per dimension)")
    return value


Modes = Annotated[int | tuple[int, ...], AfterValidator(_positive_modes)]


def modes_per_dimension(modes: int | tuple[int, ...], n_dim: int) -> tuple[int, ...]:
    """``modes`` (:data:`Modes`) for ``n_dim``-dimensional data; a one-line ConfigError when a
    per-dimension list has another length."""
    if isinstance(modes, int):
        return (modes,) * n_dim
    if len(modes) != n_dim:
        raise ConfigError(
            f"config: model.modes {list(modes)} has {len(modes)} entries for {n_dim}D data; "
            "give one per dimension or a single number"
        )
    return tuple(modes)
