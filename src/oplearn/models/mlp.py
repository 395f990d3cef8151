r"""Networks on flat feature vectors (``model`` kind ``"mlp"``): a plain MLP and the multilevel MLP.

Both map ``(batch, in_features) -> (batch,)``, or ``(batch, out_features)`` when ``out_features > 1``
(e.g. a learned gradient); the Kolmogorov task feeds them the standardised ``[t, x, params]``
(:class:`oplearn.kolmogorov.model.KolmogorovModel`).

The multilevel net has ``levels`` sub-networks; level :math:`l` is a chain of :math:`2^l` blocks
(normalisation, activation, linear map of width ``factor * in_features``) after an input layer,
ending in ``out_features`` values. The levels run from the deepest to the shallowest: every second hidden state of
level :math:`l + 1` (and its scalar output) is added to the matching hidden state (and output) of
level :math:`l`, so the shallow levels act as residual shortcuts of the deep ones; the output of
level 0 is the network's.

References
----------
Berner, Dablander, Grohs, "Numerically Solving Parametric Families of High-Dimensional
Kolmogorov Partial Differential Equations via Deep Learning", NeurIPS 2020 (the multilevel
architecture; its code, github.com/juliusberner/deep_kolmogorov, uses ``levels=4``,
``factor=4`` or ``5`` and batch normalisation). Richter, Berner, ICML 2022 (the same net with SiLU,
no normalisation, ``levels=3``, ``factor=3``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from pydantic import Field
from torch import nn

from oplearn.layers.activations import activation_class
from oplearn.models.deeponet import mlp
from oplearn.schema import ModelSpec

NORMALISATIONS: dict[str, type[nn.Module]] = {
    "batchnorm": nn.BatchNorm1d,
    "layernorm": nn.LayerNorm,
    "none": nn.Identity,
}


class MLP(nn.Module):
    """``depth`` hidden layers of ``width`` units: ``(batch, in_features) -> (batch,)`` (or ``(batch, out_features)``)."""

    def __init__(
        self, in_features: int, width: int = 128, depth: int = 4, activation: str = "silu", out_features: int = 1
    ) -> None:
        super().__init__()
        self.net = mlp(in_features, width, depth, out_features, activation, final_activation=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return _squeeze(self.net(features))


def _squeeze(out: torch.Tensor) -> torch.Tensor:
    """``(batch, 1) -> (batch,)``; wider outputs unchanged."""
    return out[:, 0] if out.shape[1] == 1 else out


class LevelNet(nn.Module):
    r"""One level: input layer, then :math:`2^l` blocks (norm, activation, linear), the last to ``out_features``."""

    def __init__(
        self, in_features: int, width: int, level: int, norm: str, activation: str, out_features: int = 1
    ) -> None:
        super().__init__()
        bias = norm == "none"
        blocks = 2**level
        self.level = level
        self.inp = nn.Linear(in_features, width, bias=bias)
        self.linears = nn.ModuleList(
            [nn.Linear(width, width, bias=bias) for _ in range(blocks - 1)] + [nn.Linear(width, out_features)]
        )
        self.norms = nn.ModuleList([NORMALISATIONS[norm](width) for _ in range(blocks)])
        self.act = activation_class(activation)()

    def forward(self, features: torch.Tensor, shortcuts: list[torch.Tensor] | None) -> list[torch.Tensor]:
        """The hidden states passed to the next shallower level (every second one, and the output)."""
        h, out = self.inp(features), []
        for i, (norm, linear) in enumerate(zip(self.norms, self.linears)):
            h = linear(self.act(norm(h)))
            if shortcuts is not None:
                h = h + shortcuts[i]
            if i % 2 or self.level == 0:
                out.append(h)
        return out


class MultilevelMLP(nn.Module):
    """The multilevel net of the module docstring: ``(batch, in_features) -> (batch,)`` (or ``(batch, out_features)``)."""

    def __init__(
        self,
        in_features: int,
        levels: int = 4,
        factor: int = 5,
        norm: str = "batchnorm",
        activation: str = "relu",
        out_features: int = 1,
    ) -> None:
        super().__init__()
        width = factor * in_features
        self.levels = nn.ModuleList(
            [LevelNet(in_features, width, level, norm, activation, out_features) for level in range(levels)]
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        shortcuts = None
        for level in reversed(self.levels):
            shortcuts = level(features, shortcuts)
        return _squeeze(shortcuts[-1])


class MLPConfig(ModelSpec):
    """A plain MLP on flat features (:class:`MLP`), for ``train.task=kolmogorov``."""

    kind: ClassVar[str] = "mlp"
    name: Literal["mlp"] = "mlp"
    width: int = Field(default=128, gt=0)
    depth: int = Field(default=4, gt=0)
    activation: Literal["gelu", "relu", "silu", "tanh"] = "silu"

    def build(self, in_features: int, out_features: int = 1) -> MLP:
        return MLP(in_features, self.width, self.depth, self.activation, out_features)


class MultilevelMLPConfig(ModelSpec):
    """The multilevel MLP (:class:`MultilevelMLP`): ``levels`` levels of width ``factor * in_features``."""

    kind: ClassVar[str] = "mlp"
    name: Literal["multilevel_mlp"] = "multilevel_mlp"
    levels: int = Field(default=4, gt=0, le=6)
    factor: int = Field(default=5, gt=0)
    norm: Literal["batchnorm", "layernorm", "none"] = "batchnorm"
    activation: Literal["gelu", "relu", "silu", "tanh"] = "relu"

    def build(self, in_features: int, out_features: int = 1) -> MultilevelMLP:
        return MultilevelMLP(in_features, self.levels, self.factor, self.norm, self.activation, out_features)


MODELS = (MLPConfig, MultilevelMLPConfig)
