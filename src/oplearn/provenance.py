"""What produced a file or a run: software versions and the time, recorded beside the results."""

from __future__ import annotations

import platform
import time

import h5py
import numpy as np
import scipy
import torch

import oplearn


def versions() -> dict[str, str]:
    """The versions of oplearn, Python and the numerical libraries results depend on."""
    return {
        "oplearn": oplearn.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "h5py": h5py.__version__,
        "python": platform.python_version(),
    }


def timestamp() -> str:
    """The local time with its UTC offset, e.g. ``2026-12-02T17:25:32+0000``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
