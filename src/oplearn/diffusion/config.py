"""The ``diffusion:`` section of a run config (``train.task: diffusion``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from oplearn.schema import Strict


class NoiseConfig(Strict):
    """Forward-process noise: ``white``, or ``grf`` with covariance ``(-Laplacian + tau^2)^(-alpha)``
    (:class:`oplearn.diffusion.noise.GRFNoise`, on the data's box and grid convention)."""

    kind: Literal["white", "grf"] = "grf"
    alpha: float = Field(default=2.0, gt=0)
    tau: float = Field(default=3.0, gt=0)


class DenoiserNetConfig(Strict):
    """The U-shaped FNO of the denoiser (:class:`oplearn.diffusion.denoiser.FNODenoiser`)."""

    modes: int = Field(default=12, gt=0)
    width: int = Field(default=32, gt=0)
    scales: tuple[float, ...] = (0.5, 0.25)
    embedding: int = Field(default=64, gt=0)
    projection_channels: int = Field(default=128, gt=0)


class DiffusionConfig(Strict):
    """A diffusion prior on fields of a dataset file.

    ``fields``: ``inputs`` (e.g. the Darcy coefficient), ``outputs`` (the solution; trajectories
    folded into channels) or ``joint`` (both as channels). Channels are normalised to mean 0
    and standard deviation 1, where ``sigma_data`` is the data's standard deviation for the EDM
    preconditioning. ``p_mean``, ``p_std``: log-normal training noise levels.
    """

    fields: Literal["inputs", "outputs", "joint"] = "joint"
    sigma_data: float = Field(default=1.0, gt=0)
    p_mean: float = -1.2
    p_std: float = Field(default=1.2, gt=0)
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    net: DenoiserNetConfig = Field(default_factory=DenoiserNetConfig)


SECTIONS = {"diffusion": DiffusionConfig}
