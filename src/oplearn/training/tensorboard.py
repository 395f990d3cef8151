"""TensorBoard event files of a run (``train.tensorboard: true``), beside ``metrics.jsonl``.

Every number of an epoch's log record (train loss, validation metrics, learning rate,
seconds, a task's own terms) becomes a scalar of that name at step ``epoch``, in
``RUN/tensorboard/``: ``tensorboard --logdir RUN/tensorboard`` shows them, nothing is sent
anywhere. A resumed run appends a new event file and drops the steps after the resumed
checkpoint (TensorBoard's ``purge_step``), so the curves match ``metrics.jsonl``. Needs the
extra ``tensorboard`` (``pip install 'oplearn[tensorboard]'``).
"""

from __future__ import annotations

import math
from pathlib import Path

from oplearn.extras import require

FOLDER = "tensorboard"


def check_available() -> None:
    """Raise the one-line error naming the extra when TensorBoard is not installed."""
    require("tensorboard", "tensorboard")


class EventLog:
    """Writes each epoch's record as TensorBoard scalars (see the module docstring)."""

    def __init__(self, run_dir: Path, start_epoch: int) -> None:
        check_available()
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(Path(run_dir) / FOLDER), purge_step=start_epoch + 1 if start_epoch else None)

    def write(self, record: dict) -> None:
        """One epoch's log record: every finite number but the epoch itself."""
        step = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
