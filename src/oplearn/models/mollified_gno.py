"""The mollified graph neural operator: a GINO whose output is smooth in the query points."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from oplearn.models.gino import GINO, GINOConfig


class MollifiedGNO(GINO):
    r"""GINO whose output integral is mollified: :math:`u(y)` is smooth in the query points
    :math:`y`, so derivatives of the output by automatic differentiation are exact and a
    physics loss can be taken at arbitrary points (:mod:`oplearn.point_physics`).

    The weighting :math:`w(t) = \exp(1 - 1/(1 - t))` (``mollifier_out="bump"``, infinitely
    smooth at the edge of the neighbourhood) multiplies the grid quadrature of the output
    integral; the rest is :class:`GINO` (same parameters and shapes).

    References
    ----------
    Lin et al., Enabling Automatic Differentiation with Mollified Graph Neural Operators, 2025.
    """

    def __init__(self, *args: Any, mollifier_out: str = "bump", **kwargs: Any) -> None:
        if mollifier_out is None:
            raise ValueError("a mollified GNO needs a mollifier; use GINO for a hard-edged one")
        super().__init__(*args, mollifier_out=mollifier_out, **kwargs)


class MollifiedGNOConfig(GINOConfig):
    """The mollified GNO (:class:`MollifiedGNO`, bump-weighted output integral) for
    ``train.task=points``; the keys of :class:`~oplearn.models.gino.GINOConfig`. Its output is
    smooth in the query points, as ``points.physics_weight > 0`` needs."""

    name: Literal["mgno"] = "mgno"
    network: ClassVar[type] = MollifiedGNO
    mollifier: ClassVar[str | None] = "bump"


MODELS = (MollifiedGNOConfig,)
