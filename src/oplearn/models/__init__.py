"""Neural operators: plain ``nn.Module`` s mapping ``(batch, in_channels, *spatial)`` to
``(batch, out_channels, *spatial)``."""

from __future__ import annotations

from torch import nn

# every model on Cartesian grids, and the wrapper that trains them on physical fields
from oplearn.models.deeponet import DeepONet
from oplearn.models.fno import FNO

# operators on point clouds and meshes
from oplearn.models.fnogno import FNOGNO
from oplearn.models.gino import GINO
from oplearn.models.gno import GNO
from oplearn.models.local_fno import LocalFNO

# networks on flat feature vectors (Kolmogorov PDEs)
from oplearn.models.mlp import MLP, MultilevelMLP
from oplearn.models.mollified_gno import MollifiedGNO
from oplearn.models.operator import OperatorModel
from oplearn.models.resnet import DilResNet

# operators on the sphere
from oplearn.models.sfno import SFNO
from oplearn.models.space_time import SubFrameOperator
from oplearn.models.tfno import TFNO
from oplearn.models.unet import UNet
from oplearn.models.uno import UNO

__all__ = [
    "FNO",
    "FNOGNO",
    "GINO",
    "GNO",
    "MLP",
    "SFNO",
    "TFNO",
    "UNO",
    "DeepONet",
    "DilResNet",
    "LocalFNO",
    "MollifiedGNO",
    "MultilevelMLP",
    "OperatorModel",
    "SubFrameOperator",
    "UNet",
    "count_parameters",
]


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of real scalars in the parameters of ``model``: a complex entry counts as two,
    the same as oplearn's complex weights stored with a trailing real/imaginary axis."""
    params = (p for p in model.parameters() if p.requires_grad or not trainable_only)
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in params)
