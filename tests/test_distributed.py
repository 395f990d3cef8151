"""Two gloo processes under torchrun train to the same weights as one process."""

import os
import subprocess
import sys

import torch

from helpers import SRC, tiny_config
from oplearn.config import load_config
from oplearn.data.generate import generate_dataset, make_pde
from oplearn.training.checkpoint import load_checkpoint
from oplearn.training.run import LAST, train


def test_two_processes_match_one_process_with_the_same_global_batch(tmp_path):
    data = generate_dataset(make_pde("darcy"), 40, 16, tmp_path / "d.h5", seed=0, progress=False)
    config_path = tiny_config(tmp_path / "c.yaml", data, epochs=3)  # global batch 8: 4 per process with 2
    train(load_config(config_path), tmp_path / "single", progress=False)

    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "oplearn.cli", "--", "train", str(config_path), "--out", str(tmp_path / "ddp"), "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    single, ddp = load_checkpoint(tmp_path / "single" / LAST), load_checkpoint(tmp_path / "ddp" / LAST)
    assert ddp["epoch"] == 3
    for key, value in single["model"].items():
        torch.testing.assert_close(ddp["model"][key], value, rtol=1e-4, atol=1e-5, msg=key)
    logs = (tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()
    assert len(logs) == 3, "rank 0 alone writes the log"
