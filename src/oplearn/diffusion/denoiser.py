r"""A resolution-agnostic denoising network: a U-shaped FNO conditioned on the noise level."""

from __future__ import annotations

import torch
from torch import nn

from oplearn.grids import Grid
from oplearn.layers.conditioning import FourierEmbedding
from oplearn.models.uno import UNO


class FNODenoiser(nn.Module):
    r"""The network :math:`F_\theta(x, c_{noise})` of a function-space denoiser.

    A :class:`~oplearn.models.uno.UNO` (Fourier blocks on a hierarchy of grids that are
    fractions of the input's) on the fields and their node coordinates, every block
    modulated (FiLM) by a :class:`~oplearn.layers.conditioning.FourierEmbedding` of :math:`c_{noise}`
    (:math:`c_{noise} = \tfrac14 \log\sigma` spans about 2.7 over :math:`\sigma \in [0.002, 80]`;
    faster features than its :math:`\omega_{max} = \pi` made a trained Darcy prior rough in
    :math:`\sigma` and higher-order samplers no better than Euler, BENCHMARKS.md, "Diffusion samplers"). Every layer acts on
    functions (spectral convolutions, pointwise maps, Fourier resampling), so a model trained
    on one grid denoises on others; wrap it in :class:`~oplearn.diffusion.edm.EDMDenoiser`.

    Parameters
    ----------
    channels : int
        Field channels ``C`` (in and out).
    modes : int
        Fourier modes per axis at the input grid; grids need ``>= 2 * modes`` nodes per axis.
    width : int
        Channels of the finest level.
    scales : tuple of float
        Coarser grids as fractions of the input's.
    n_dim : int
        Spatial dimensions.
    embedding : int
        Channels of the noise embedding.
    periodic : bool
        Node convention of the coordinate channels (:mod:`oplearn.grids`, unit box).

    Shapes
    ------
    ``forward(x: (batch, C, *spatial), c_noise: (batch,)) -> (batch, C, *spatial)``.
    """

    def __init__(
        self,
        channels: int,
        modes: int = 12,
        width: int = 32,
        scales: tuple[float, ...] = (0.5, 0.25),
        n_dim: int = 2,
        embedding: int = 64,
        projection_channels: int = 128,
        periodic: bool = False,
    ) -> None:
        super().__init__()
        self.channels, self.n_dim, self.periodic = int(channels), int(n_dim), bool(periodic)
        self.embedding = FourierEmbedding(embedding)
        self.uno = UNO(
            channels + n_dim,
            channels,
            modes,
            width=width,
            scales=scales,
            n_dim=n_dim,
            projection_channels=projection_channels,
            condition_channels=embedding,
        )

    def forward(self, x: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        if x.ndim != self.n_dim + 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"FNODenoiser expects (batch, {self.channels}, {', '.join(['n'] * self.n_dim)}), got {tuple(x.shape)}"
            )
        coords = Grid(tuple(x.shape[2:]), periodic=self.periodic).coordinates(dtype=x.dtype, device=x.device)
        z = torch.cat([x, coords.expand(x.shape[0], *coords.shape)], dim=1)
        return self.uno(z, self.embedding(c_noise))
