r"""The noise of the forward process :math:`x_\sigma = x_0 + \sigma\varepsilon`: white or a Gaussian random field.

White noise (:class:`WhiteNoise`) has unit variance at every node and no spatial
correlation, so its law depends on the grid. Function-space diffusion uses a Gaussian
random field instead (:class:`GRFNoise`): a covariance operator fixed on the domain,
:math:`C \propto (-\Delta + \tau^2 I)^{-\alpha}`, whose samples on any grid are the
same random function seen at that grid's nodes (up to the modes the grid resolves).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

#: Wavenumbers per dimension used for the fine-grid limit of the pointwise variance.
_REFERENCE_MODES = {1: 1 << 16, 2: 1024, 3: 96}


class WhiteNoise:
    """Independent standard normal values at every node: ``sample(shape) = randn(shape)``."""

    def sample(
        self,
        shape: Sequence[int],
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Shapes: ``shape = (batch, C, *spatial) -> shape``."""
        draw_device = generator.device if generator is not None else torch.device("cpu")
        return torch.randn(tuple(shape), generator=generator, dtype=dtype, device=draw_device).to(device)

    def covariance(self, x: torch.Tensor) -> torch.Tensor:
        """The covariance operator applied to fields: the identity."""
        return x

    def to_dict(self) -> dict:
        return {"kind": "white"}


class GRFNoise:
    r"""A centred Gaussian random field with covariance :math:`C = c\,(-\Delta + \tau^2 I)^{-\alpha}`, per channel.

    On a grid with ``periodic=False`` (nodes on both ends, :mod:`oplearn.grids`) the
    eigenbasis is the Neumann cosine basis of the box and the field is

    .. math::

        \varepsilon(x) = \sum_{k \in \{0..n-1\}^d} \sqrt{c}\, s_k \xi_k \prod_i \cos(\pi k_i (x_i - lo_i) / L_i),
        \qquad s_k^2 = (\lambda_k + \tau^2)^{-\alpha}, \quad \lambda_k = \pi^2 \textstyle\sum_i (k_i / L_i)^2,

    (``n`` cosines per axis: the grid's own basis, so every grid function has coefficients).
    On a periodic grid it is the stationary field with spectral variance :math:`c\,s_k^2`,
    :math:`\lambda_k = 4\pi^2 \sum_i (k_i/L_i)^2`, over the grid's DFT wavenumbers, drawn as
    :math:`\mathcal F^{-1}(\sqrt{N c\,s_k^2}\,\mathcal F w)` with white :math:`w` and the
    orthonormal DFT :math:`\mathcal F` on :math:`N` nodes. This is the covariance of
    :class:`oplearn.fields.GaussianRandomField` with the mean mode kept (noise must perturb
    every mode). The constant :math:`c` makes the domain-averaged pointwise variance 1 in the
    fine-grid limit (a sum over :data:`_REFERENCE_MODES` wavenumbers per axis), so noise
    levels :math:`\sigma` mean the same as for white noise; a grid resolving fewer modes has
    slightly less (:meth:`variance`). This needs :math:`\alpha > d/2`.

    Parameters
    ----------
    alpha : float
        Smoothness; ``> d/2``.
    tau : float
        Inverse length scale, ``> 0``.
    periodic : bool
        The grid convention of the fields (must match the data's grid).
    lengths : tuple of float, optional
        Box side lengths (default the unit box of the field's dimension).

    Shapes
    ------
    ``sample((batch, C, *spatial)) -> (batch, C, *spatial)``; :meth:`to_modes` and
    :meth:`from_modes` map fields to coefficients (the same shape, complex when periodic) and
    back; :meth:`mode_variances` ``(spatial) -> spatial`` is the variance of each coefficient.
    """

    def __init__(
        self, alpha: float = 2.0, tau: float = 3.0, periodic: bool = False, lengths: tuple[float, ...] | None = None
    ) -> None:
        if not alpha > 0 or not tau > 0:
            raise ValueError(f"GRF noise needs alpha > 0 and tau > 0, got alpha={alpha}, tau={tau}")
        self.alpha, self.tau, self.periodic = float(alpha), float(tau), bool(periodic)
        self.lengths = None if lengths is None else tuple(float(l) for l in lengths)
        self._cache: dict = {}

    def to_dict(self) -> dict:
        return {"kind": "grf", "alpha": self.alpha, "tau": self.tau, "periodic": self.periodic, "lengths": self.lengths}

    def _lengths(self, ndim: int) -> tuple[float, ...]:
        if self.lengths is None:
            return (1.0,) * ndim
        if len(self.lengths) != ndim:
            raise ValueError(f"GRF noise on a box of {len(self.lengths)} dimensions got a {ndim}-dimensional field")
        return self.lengths

    def _spectrum(self, wavenumbers: list[torch.Tensor], lengths: tuple[float, ...]) -> torch.Tensor:
        """Unnormalised :math:`s_k^2` on the mesh of the per-axis integer ``wavenumbers``."""
        factor = 2 * math.pi if self.periodic else math.pi
        axes = [(factor * k / length) ** 2 for k, length in zip(wavenumbers, lengths)]
        return (sum(torch.meshgrid(*axes, indexing="ij")) + self.tau**2) ** (-self.alpha)

    def amplitude(self, ndim: int) -> float:
        """The constant :math:`c` (fine-grid pointwise variance 1) for ``ndim`` dimensions."""
        key = ("c", ndim)
        if key not in self._cache:
            if not self.alpha > ndim / 2:
                raise ValueError(
                    f"GRF noise in {ndim} dimensions needs alpha > {ndim / 2} to have a pointwise variance, got {self.alpha}"
                )
            m = _REFERENCE_MODES[ndim]
            if self.periodic:
                k = [torch.arange(-m, m + 1, dtype=torch.float64)] * ndim
                weight = 1.0
            else:
                k = [torch.arange(0, m + 1, dtype=torch.float64)] * ndim
                half = torch.where(k[0] > 0, 0.5, 1.0)  # mean of cos^2 over the box
                weight = math.prod(torch.meshgrid(*[half] * ndim, indexing="ij"))
            self._cache[key] = 1.0 / float((weight * self._spectrum(k, self._lengths(ndim))).sum())
        return self._cache[key]

    def mode_variances(self, spatial: tuple[int, ...]) -> torch.Tensor:
        """Variance of every coefficient of :meth:`to_modes` on a grid of ``spatial`` nodes, float64."""
        spatial = tuple(int(n) for n in spatial)
        key = ("var", spatial)
        if key not in self._cache:
            d = len(spatial)
            lengths = self._lengths(d)
            if self.periodic:
                k = [torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64) for n in spatial]
                var = math.prod(spatial) * self._spectrum(k, lengths)
            else:
                var = self._spectrum([torch.arange(n, dtype=torch.float64) for n in spatial], lengths)
            self._cache[key] = self.amplitude(d) * var
        return self._cache[key]

    def variance(self, spatial: tuple[int, ...]) -> float:
        """The domain-averaged pointwise variance of a sample on ``spatial`` nodes (-> 1 as the grid refines)."""
        var = self.mode_variances(spatial)
        if self.periodic:
            return float(var.sum()) / math.prod(spatial)
        lengths = self._lengths(len(spatial))
        mean_cos2 = [(self._cosines(n, length) ** 2).mean(0) for n, length in zip(spatial, lengths)]
        return float((var * math.prod(torch.meshgrid(*mean_cos2, indexing="ij"))).sum())

    def _cosines(self, n: int, length: float) -> torch.Tensor:
        """The ``(n, n)`` matrix ``cos(pi k x_j / L)`` at the ``n`` nodes of a non-periodic axis, float64."""
        x = torch.linspace(0, length, n, dtype=torch.float64)
        return torch.cos(math.pi * torch.outer(x, torch.arange(n, dtype=torch.float64)) / length)

    def _matrices(self, spatial: tuple[int, ...], inverse: bool) -> list[torch.Tensor]:
        key = ("basis", spatial, inverse)
        if key not in self._cache:
            lengths = self._lengths(len(spatial))
            mats = [self._cosines(n, length) for n, length in zip(spatial, lengths)]
            self._cache[key] = [torch.linalg.inv(m) for m in mats] if inverse else mats
        return self._cache[key]

    def _apply(self, x: torch.Tensor, mats: list[torch.Tensor]) -> torch.Tensor:
        d = len(mats)
        for axis, m in enumerate(mats):
            x = torch.movedim(torch.tensordot(x, m.to(x), dims=([x.ndim - d + axis], [1])), -1, x.ndim - d + axis)
        return x

    def to_modes(self, x: torch.Tensor, ndim: int | None = None) -> torch.Tensor:
        """The coefficients of ``x: (..., *spatial)`` (last ``ndim`` axes, default ``x.ndim - 2``)."""
        d = x.ndim - 2 if ndim is None else ndim
        if self.periodic:
            return torch.fft.fftn(x, dim=tuple(range(-d, 0)), norm="ortho")
        return self._apply(x, self._matrices(tuple(x.shape[-d:]), inverse=True))

    def from_modes(self, a: torch.Tensor, ndim: int | None = None) -> torch.Tensor:
        """The field of the coefficients ``a`` (inverse of :meth:`to_modes`)."""
        d = a.ndim - 2 if ndim is None else ndim
        if self.periodic:
            return torch.fft.ifftn(a, dim=tuple(range(-d, 0)), norm="ortho").real
        return self._apply(a, self._matrices(tuple(a.shape[-d:]), inverse=False))

    def covariance(self, x: torch.Tensor) -> torch.Tensor:
        r""":math:`C x` per channel for fields ``x (batch, C, *spatial)`` (computed in float64, returned in ``x.dtype``).

        :math:`C = F \operatorname{diag}(v) F^\top` with :math:`F` the map :meth:`from_modes` and
        :math:`v` the :meth:`mode_variances` (the orthonormal DFT makes :math:`F^\top = F^{-1}` on a
        periodic grid). It turns a gradient into the direction in which the noise moves fields,
        e.g. a likelihood score into its effect on a denoiser (:mod:`oplearn.inverse.guidance`).
        """
        spatial = tuple(x.shape[2:])
        var = self.mode_variances(spatial).to(x.device)
        if self.periodic:
            return self.from_modes(var * self.to_modes(x.double())).to(x.dtype)
        transposed = [m.T for m in self._matrices(spatial, inverse=False)]
        return self.from_modes(var * self._apply(x.double(), transposed)).to(x.dtype)

    def sample(
        self,
        shape: Sequence[int],
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> torch.Tensor:
        """Draw fields of ``shape = (batch, C, *spatial)`` (computed in float64, returned in ``dtype``)."""
        shape = tuple(int(n) for n in shape)
        spatial = shape[2:]
        if not 1 <= len(spatial) <= 3:
            raise ValueError(f"GRF noise needs fields (batch, C, *spatial) with 1 to 3 spatial axes, got {shape}")
        draw_device = generator.device if generator is not None else torch.device("cpu")
        w = torch.randn(shape, generator=generator, dtype=torch.float64, device=draw_device)
        scale = self.mode_variances(spatial).to(w.device).sqrt()
        if self.periodic:
            field = self.from_modes(scale * self.to_modes(w))
        else:
            field = self.from_modes(scale * w)
        return field.to(device=device, dtype=dtype)


def make_noise(kind: str, **params: float | bool | tuple[float, ...] | None) -> WhiteNoise | GRFNoise:
    """``white`` or ``grf`` (with :class:`GRFNoise` parameters)."""
    if kind == "white":
        return WhiteNoise()
    if kind == "grf":
        return GRFNoise(**params)
    raise ValueError(f"unknown noise kind '{kind}'; choose white or grf")
