"""Derived random seeds: independent, reproducible streams from one user seed."""

from __future__ import annotations

import numpy as np
import torch


def derive_seed(seed: int, *keys: int) -> int:
    """A 63-bit seed for the stream named by ``keys`` under the user seed ``seed``."""
    state = np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1, np.uint64)[0]
    return int(state >> np.uint64(1))


def generator(seed: int, *keys: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A torch generator seeded with :func:`derive_seed`."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys))
