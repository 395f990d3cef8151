"""Data-parallel training under ``torchrun`` (PyTorch DDP), and nothing when run alone.

``torchrun --nproc-per-node K -m oplearn.cli train CONFIG --out RUN`` starts K processes;
each sees ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` and joins one process group (NCCL on
GPUs, gloo on CPUs). Every rank holds the whole model, takes a disjoint slice of each global
batch and averages gradients; rank 0 alone writes logs, checkpoints and reports. The
global batch size ``data.batch_size`` and the per-epoch shuffle do not depend on the
number of processes, so a run may be resumed on a different number of them. With
``data.lazy`` each rank reads only its slice of every global batch from the (possibly
sharded) HDF5 file (:mod:`oplearn.data.source`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from oplearn.errors import ConfigError


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum ``values`` over all processes (identity when alone)."""
        if self.distributed:
            values = values.clone()
            dist.all_reduce(values)
        return values


def is_main_process() -> bool:
    """Whether this process is rank 0 of a ``torchrun`` launch, or runs alone (the one that prints results)."""
    return int(os.environ.get("RANK", "0")) == 0


def join(device: torch.device) -> tuple[World, torch.device]:
    """Join the ``torchrun`` process group if there is one; returns the world and this rank's device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return World(), device
    world = World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, device


def leave(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def check_batch(batch_size: int, world: World) -> None:
    if batch_size < world.size:
        raise ConfigError(
            f"config: data.batch_size={batch_size} is the global batch and must be at least the number of processes ({world.size})"
        )
