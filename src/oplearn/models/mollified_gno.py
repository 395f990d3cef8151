"""The mollified graph neural operator: a GINO whose output is smooth in the query points."""

from __future__ import annotations

from oplearn.models.gino import GINO


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

    def __init__(self, *args, mollifier_out: str = "bump", **kwargs):
        if mollifier_out is None:
            raise ValueError("a mollified GNO needs a mollifier; use GINO for a hard-edged one")
        super().__init__(*args, mollifier_out=mollifier_out, **kwargs)
