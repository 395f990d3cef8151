r"""Metrics of density samplers, defined exactly.

From the log-weights :math:`\log w_i` of :math:`n` forward paths (:mod:`~oplearn.sampling.methods.base`):

- ``elbo``: :math:`\frac1n\sum_i \log w_i`, a lower bound of :math:`\log Z` in expectation;
- ``log_Z``: :math:`\log\frac1n\sum_i w_i`, unbiased in :math:`Z` (its log is biased low by
  Jensen's inequality; SMC-type methods report their SMC estimate instead);
- ``log_Z_error``: :math:`|\log\hat Z - \log Z|` where :math:`\log Z` is known;
- ``ess``: :math:`(\sum_i w_i)^2 / (n \sum_i w_i^2)`, the normalised effective sample size in
  :math:`(0, 1]`;

with exact samples :math:`y_j \sim \pi`:

- ``eubo``: :math:`\frac1n\sum_j \log w(Y^{(j)})` on backward paths ending at :math:`y_j`, an upper
  bound of :math:`\log Z` in expectation;
- ``w2``: the squared 2-Wasserstein distance between the empirical measures (uniform weights),
  :math:`W_2^2 = \min_P \sum_{ij} P_{ij}\|x_i - y_j\|^2` over couplings :math:`P`, computed exactly
  by POT's network simplex (``ot.emd2``). It is the :math:`\varepsilon \to 0` limit of the
  entropic "Sinkhorn" distance of the benchmarks, which regularise with :math:`\varepsilon = 10^{-3}`;
  the exact cost is used instead because Sinkhorn iterations at that :math:`\varepsilon` take
  minutes for 2000 points on a CPU (POT's log-domain solver, geomloss with :math:`\varepsilon`-scaling),
  while the network simplex takes about a second;
- ``mmd``: :math:`\sqrt{\max(0, \overline{K_{xx}} + \overline{K_{yy}} - 2\overline{K_{xy}})}` with the
  Gaussian kernel :math:`k = e^{-\|a - b\|^2 / (2\ell^2)}`, :math:`\ell` the median of all pairwise
  distances of the pooled samples, :math:`\overline{K_{xx}}` averaged over pairs :math:`i \ne j`;

with a mode assignment of the target (:meth:`~oplearn.sampling.targets.base.Target.modes`):

- ``mode_coverage``: the entropic mode coverage :math:`-\sum_k p_k\log p_k / \log K` of the
  empirical mode frequencies :math:`p_k` among :math:`K` modes (1: all modes equally visited),
  averaged over mode groups (e.g. the wells of Many-Well); the target's own value is
  ``mode_coverage_target`` (1 for equal-weight mixtures).

References
----------
Blessing et al., "Beyond ELBOs", ICML 2024 (ELBO, EUBO, ESS, the Sinkhorn distance with
:math:`\varepsilon = 10^{-3}` whose limit ``w2`` is, MMD with the median heuristic, entropic
mode coverage).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from oplearn.errors import ConfigError
from oplearn.sampling.resampling import effective_sample_size, log_mean_exp

if TYPE_CHECKING:
    from oplearn.sampling.methods.base import Estimate
    from oplearn.sampling.targets.base import Target


def importance_log_Z(log_w: torch.Tensor) -> float:
    """:math:`\\log\\frac1n\\sum_i w_i`."""
    return float(log_mean_exp(log_w.double()))


def ess_fraction(log_w: torch.Tensor) -> float:
    """:math:`(\\sum w)^2 / (n\\sum w^2)`."""
    return float(effective_sample_size(log_w.double())) / log_w.shape[0]


def wasserstein2(x: torch.Tensor, y: torch.Tensor) -> float:
    """:math:`W_2^2` between two equal-weight point clouds, exactly (module docstring)."""
    try:
        import ot
    except ImportError:
        raise ConfigError("the w2 metric needs POT: pip install oplearn[sampling]") from None
    a, b = x.double().cpu().numpy(), y.double().cpu().numpy()
    cost = ot.dist(a, b)
    return float(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost, numItermax=10_000_000))


def mmd(x: torch.Tensor, y: torch.Tensor) -> float:
    """MMD with the median-heuristic Gaussian kernel (module docstring)."""
    x, y = x.double(), y.double()
    z = torch.cat([x, y])
    d = torch.cdist(z, z)
    bandwidth = d[torch.triu_indices(len(z), len(z), 1).unbind()].median()
    k = torch.exp(-0.5 * (d / bandwidth) ** 2)
    n, m = len(x), len(y)
    kxx = (k[:n, :n].sum() - n) / (n * (n - 1))
    kyy = (k[n:, n:].sum() - m) / (m * (m - 1))
    return float(torch.sqrt(torch.clamp(kxx + kyy - 2 * k[:n, n:].mean(), min=1e-20)))


def mode_coverage(labels: torch.Tensor, modes: int) -> float:
    """Entropic mode coverage of ``labels (n, groups)`` with ``modes`` modes per group (module docstring)."""
    values = []
    for g in range(labels.shape[1]):
        p = torch.bincount(labels[:, g], minlength=modes).double() / labels.shape[0]
        p = p[p > 0]
        values.append(float(-(p * p.log()).sum()) / math.log(modes))
    return sum(values) / len(values)


def target_mode_coverage(weights: torch.Tensor) -> float:
    """The entropic mode coverage of the target's exact mode weights ``(groups, modes)``."""
    w = weights.double().clamp_min(1e-300)
    return float((-(w * w.log()).sum(-1) / math.log(w.shape[1])).mean())


def sample_metrics(target: Target, estimate: Estimate, exact: torch.Tensor | None = None) -> dict[str, float]:
    """Every metric the target allows for an :class:`~oplearn.sampling.methods.base.Estimate`
    (``exact``: exact samples for the discrepancies; the EUBO is the method's, see :meth:`~oplearn.sampling.methods.base.Sampler.eubo`)."""
    samples, log_w = estimate.samples, estimate.log_weights
    out: dict[str, float] = {"log_Z": estimate.log_Z, "ess": ess_fraction(log_w)}
    if estimate.elbo is not None:
        out["elbo"] = estimate.elbo
    if target.log_Z is not None:
        out["log_Z_error"] = abs(estimate.log_Z - target.log_Z)
    if exact is not None:
        out["w2"] = wasserstein2(samples, exact)
        out["mmd"] = mmd(samples, exact)
    labels = target.modes(samples)
    if labels is not None:
        weights = target.mode_weights()
        out["mode_coverage"] = mode_coverage(labels, weights.shape[1])
        out["mode_coverage_target"] = target_mode_coverage(weights)
    return out
