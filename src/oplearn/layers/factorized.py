"""Spectral convolution whose weight tensor is stored in Tucker or CP factorised form."""

from __future__ import annotations

import math

import torch
from torch import nn

from oplearn.layers.spectral import SpectralConv

FACTORIZATIONS = ("tucker", "cp")
_LETTERS = "abcdefghij"


def tucker_ranks(shape: tuple[int, ...], rank: float) -> tuple[int, ...]:
    r"""Tucker ranks :math:`r_j` of a tensor of ``shape`` holding about ``rank`` times its entries.

    Every mode gets the same fraction :math:`\alpha` of its size,
    :math:`r_j = \min(n_j, \max(1, \mathrm{round}(\alpha n_j)))`, and :math:`\alpha` is the
    largest value (found by bisection on ``(0, 1]``) for which the Tucker parameter count
    :math:`\prod_j r_j + \sum_j n_j r_j` does not exceed ``rank`` :math:`\times \prod_j n_j`;
    all ranks are at least 1. ``rank >= 1`` gives full ranks :math:`r_j = n_j`, which
    represent every tensor exactly (their count exceeds the dense one).
    """
    if rank >= 1.0:
        return tuple(shape)
    target = rank * math.prod(shape)

    def ranks(alpha: float) -> tuple[int, ...]:
        return tuple(min(n, max(1, round(alpha * n))) for n in shape)

    def count(r: tuple[int, ...]) -> int:
        return math.prod(r) + sum(n * k for n, k in zip(shape, r))

    lo, hi = 0.0, 1.0
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if count(ranks(mid)) <= target else (lo, mid)
    return ranks(lo)


def cp_rank(shape: tuple[int, ...], rank: float) -> int:
    r"""CP rank :math:`R = \max(1, \lfloor \mathrm{rank} \prod_j n_j / \sum_j n_j \rfloor)`:
    the largest :math:`R` whose parameter count :math:`R \sum_j n_j` does not exceed ``rank``
    times the dense one (at least 1)."""
    return max(1, math.floor(rank * math.prod(shape) / sum(shape)))


def _complex_randn(*shape: int, std: float) -> torch.Tensor:
    """A real ``(*shape, 2)`` tensor holding complex normal entries of standard deviation ``std``."""
    return std / math.sqrt(2.0) * torch.randn(*shape, 2)


class FactorizedSpectralConv(SpectralConv):
    r"""A :class:`~oplearn.layers.spectral.SpectralConv` whose complex weight tensor
    :math:`W \in \mathbb{C}^{n_1 \times \cdots \times n_N}` (``N = d + 2`` axes: in, out and
    the kept modes) is low rank.

    .. math::

        \text{Tucker:}\quad W = G \times_1 U^{(1)} \times_2 \cdots \times_N U^{(N)}, \qquad
        \text{CP:}\quad W = \sum_{r=1}^{R} u^{(1)}_r \otimes \cdots \otimes u^{(N)}_r,

    with core :math:`G \in \mathbb{C}^{r_1 \times \cdots \times r_N}` and factors
    :math:`U^{(j)} \in \mathbb{C}^{n_j \times r_j}` (Tucker), or factors
    :math:`U^{(j)} = [u^{(j)}_1, \dots, u^{(j)}_R] \in \mathbb{C}^{n_j \times R}` (CP). The
    integer ranks follow from the fraction ``rank`` of the dense parameter count as described
    in :func:`tucker_ranks` and :func:`cp_rank`.

    Only the weight differs from the dense layer: :meth:`_init_weight` creates the factors
    instead of the dense parameter, and :meth:`_weight` reconstructs the dense tensor (in
    :class:`SpectralConv`'s layout) from them on every call, so the FFTs, mode gathering and
    mode mixing are :class:`SpectralConv`'s own. Core and
    factors are real parameters with a trailing real/imaginary axis of size 2. They are
    initialised as complex normals scaled so that the reconstructed entries have the standard
    deviation ``1 / (in_channels * out_channels)``, the scale of the dense initialisation.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts.
    modes : tuple of int
        ``m_j`` per spatial dimension (1 to 3 dimensions).
    factorization : str
        ``"tucker"`` or ``"cp"``.
    rank : float
        Parameter count of the factors as a fraction of the dense weight's (``> 0``).

    Shapes
    ------
    ``x: (batch, in_channels, *spatial) -> (batch, out_channels, *spatial)``, with the grid
    constraints of :class:`SpectralConv`.

    References
    ----------
    Kossaifi et al., Multi-Grid Tensorized Fourier Neural Operator for High-Resolution PDEs,
    TMLR 2024.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        modes: tuple[int, ...],
        factorization: str = "tucker",
        rank: float = 0.1,
    ) -> None:
        if factorization not in FACTORIZATIONS:
            raise ValueError(f"unknown factorization {factorization!r}; choose one of {list(FACTORIZATIONS)}")
        if not rank > 0:
            raise ValueError(f"rank is a fraction of the dense parameter count and must be > 0, got {rank}")
        # read by _init_weight, which SpectralConv.__init__ calls (plain attributes may be set
        # before nn.Module.__init__)
        self.factorization = factorization
        self.rank = rank
        super().__init__(in_channels, out_channels, modes)

    def _init_weight(self, shape: tuple[int, ...]) -> None:
        """Create the core (Tucker) and factors of the complex weight of ``shape`` ``(in, out, *kept)``."""
        self.shape = shape
        std = 1.0 / (shape[0] * shape[1])
        if self.factorization == "tucker":
            self.ranks = tucker_ranks(shape, self.rank)
            self.core = nn.Parameter(_complex_randn(*self.ranks, std=std))
            factors = [_complex_randn(n, r, std=1.0 / math.sqrt(r)) for n, r in zip(shape, self.ranks)]
        else:
            self.ranks = (cp_rank(shape, self.rank),)
            r = self.ranks[0]
            # entry variance R * v^N = std^2 for factor entries of variance v
            v = (std**2 / r) ** (1.0 / len(shape))
            factors = [_complex_randn(n, r, std=math.sqrt(v)) for n in shape]
        self.factors = nn.ParameterList(nn.Parameter(f) for f in factors)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, factorization={self.factorization!r}, ranks={self.ranks}"

    def _weight(self) -> torch.Tensor:
        """The dense weight ``(in_channels, out_channels, *kept, 2)`` rebuilt from the factors."""
        n = len(self.shape)
        factors = [torch.view_as_complex(f) for f in self.factors]
        out = _LETTERS[:n].upper()
        if self.factorization == "tucker":
            core = torch.view_as_complex(self.core)
            terms = ",".join(f"{big}{small}" for big, small in zip(out, _LETTERS[:n]))
            w = torch.einsum(f"{_LETTERS[:n]},{terms}->{out}", core, *factors)
        else:
            terms = ",".join(f"{big}r" for big in out)
            w = torch.einsum(f"{terms}->{out}", *factors)
        return torch.view_as_real(w)
