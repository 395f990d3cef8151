"""Time `oplearn demo` from nothing (data generation included) into a fresh directory.

Usage: python benchmarks/demo_time.py
Writes benchmarks/results/demo_time.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    out = Path(tempfile.mkdtemp(prefix="oplearn-demo-"))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "oplearn.cli", "demo", "--out", str(out), "--no-progress"], check=True)
    seconds = time.perf_counter() - t0
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    shutil.rmtree(out)
    print(f"oplearn demo: {seconds:.1f} s (target < 300 s)")
    result = {"seconds": seconds, "target_seconds": 300, "results": metrics["results"]}
    (ROOT / "benchmarks" / "results" / "demo_time.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
