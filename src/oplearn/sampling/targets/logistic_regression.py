r"""Bayesian logistic regression on the Wisconsin breast-cancer data shipped with scikit-learn.

.. math:: \log\gamma(w) = \sum_{n=1}^{N} \big[y_n \log\sigma(z_n^\top w) + (1 - y_n)\log\sigma(-z_n^\top w)\big]
          + \log\mathcal N(w; 0, 10^2 I),

with :math:`N = 569` patients, :math:`z_n = (1, x_n / \mathrm{std}(x))` (30 features scaled by
their standard deviation, not centred, and an intercept: :math:`d = 31`) and :math:`y_n` the
diagnosis. ``log_Z`` (the evidence) is unknown. The data are read from scikit-learn's bundled
copy (:func:`sklearn.datasets.load_breast_cancer`, no network; install ``oplearn[sampling]``).

The reference benchmark's code scales the features the same way and states the
:math:`\mathcal N(0, 10^2 I)` prior, but leaves the prior out of its log-density (an improper flat
prior); we keep it, so the posterior is proper and evidences are comparable across methods.

References
----------
Blessing et al., "Beyond ELBOs", ICML 2024 ("Breast Cancer", :math:`d = 31`). Street, Wolberg,
Mangasarian, "Nuclear feature extraction for breast tumor diagnosis", 1993 (the data).
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import logsigmoid

from oplearn.errors import ConfigError
from oplearn.sampling.targets.base import Target


def _breast_cancer() -> tuple[torch.Tensor, torch.Tensor]:
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError:
        raise ConfigError("the logistic-regression target needs scikit-learn: pip install oplearn[sampling]") from None
    data = load_breast_cancer()
    x = torch.tensor(data.data, dtype=torch.float64)
    x = x / x.std(0)
    return torch.cat([torch.ones(len(x), 1, dtype=torch.float64), x], dim=1), torch.tensor(
        data.target, dtype=torch.float64
    )


class LogisticRegression(Target):
    """Posterior of logistic-regression weights (module docstring); ``prior_scale`` 10 by default."""

    name = "logistic_regression"

    def __init__(self, prior_scale: float = 10.0) -> None:
        features, labels = _breast_cancer()
        super().__init__(features.shape[1])
        self.register_buffer("features", features.float(), persistent=False)
        self.register_buffer("labels", labels.float(), persistent=False)
        self.prior_scale = float(prior_scale)

    def unnormalized_log_density(self, w: torch.Tensor) -> torch.Tensor:
        logits = w @ self.features.T  # (batch, N)
        likelihood = (self.labels * logsigmoid(logits) + (1 - self.labels) * logsigmoid(-logits)).sum(-1)
        prior = -0.5 * (w / self.prior_scale).square().sum(-1) - self.dim * (
            math.log(self.prior_scale) + 0.5 * math.log(2 * math.pi)
        )
        return likelihood + prior
