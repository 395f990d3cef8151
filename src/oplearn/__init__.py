"""oplearn: neural PDE solvers on PyTorch."""

__version__ = "0.1.0"
