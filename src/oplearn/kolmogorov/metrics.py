r"""Errors of a learned solution against a reference, with the reference's own error.

With reference values :math:`u_i` (standard errors :math:`s_i`, zero for a closed form) and
predictions :math:`\hat u_i` at ``n`` points:

.. math::

    \text{relative L1} = \frac1n \sum_i \frac{|u_i - \hat u_i|}{|u_i| + 1}, \qquad
    \text{relative L2} = \Big(\frac1n \sum_i \frac{(u_i - \hat u_i)^2}{(|u_i| + 1)^2}\Big)^{1/2},

the measures of the reference works. A Monte-Carlo reference is itself off by about :math:`s_i`,
so the same measures of :math:`s_i` (``reference_l1`` with :math:`\sqrt{2/\pi}\,s_i`, the mean
absolute value of a normal error; ``reference_l2`` with :math:`s_i`) are what the reference alone
contributes. An error is *resolved* when it exceeds twice the reference's; otherwise the
metrics say only that the error is below ``2 x reference + measured`` (keys ``..._bound``) and do
not claim the measured value.

References
----------
Berner, Dablander, Grohs, NeurIPS 2020 (the relative L1 and L2 measures with :math:`|u| + 1`).
"""

from __future__ import annotations

import math

import torch


def relative_errors(pred: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """:math:`|u - \\hat u| / (|u| + 1)`, pointwise: ``(n,)``."""
    return (pred - reference).abs() / (reference.abs() + 1)


def solution_metrics(pred: torch.Tensor, reference: torch.Tensor, stderr: torch.Tensor) -> dict[str, float]:
    """Relative L1 and L2 of ``pred`` against ``reference`` with the reference's own (module docstring)."""
    pred, reference, stderr = pred.double(), reference.double(), stderr.double()
    scale = reference.abs() + 1
    rel = relative_errors(pred, reference)
    measured = {"relative_l1": rel.mean().item(), "relative_l2": rel.square().mean().sqrt().item()}
    floor = {
        "relative_l1": math.sqrt(2 / math.pi) * (stderr / scale).mean().item(),
        "relative_l2": (stderr / scale).square().mean().sqrt().item(),
    }
    out: dict[str, float] = {"reference_l1": floor["relative_l1"], "reference_l2": floor["relative_l2"]}
    for key, value in measured.items():
        if value > 2 * floor[key]:
            out[key] = value
        else:
            out[f"{key}_bound"] = value + 2 * floor[key]
    out["resolved"] = float(all(k in out for k in measured))
    return out
