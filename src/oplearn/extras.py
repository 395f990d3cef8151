"""Optional dependencies, imported on first use with a one-line error naming their extra."""

from __future__ import annotations

import importlib
from types import ModuleType

from oplearn.errors import OplearnError


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise an :class:`OplearnError` saying ``pip install oplearn[extra]``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise OplearnError(
            f"this needs the Python package '{module.split('.')[0]}': pip install 'oplearn[{extra}]'"
        ) from None
