"""Time `oplearn demo` from nothing (data generation included) into a fresh directory, or, with
``--fresh-clone``, `make demo` in a fresh clone of this repository: the install (virtual
environment, torch, oplearn) and the demo, with the output going to a log file as it would in
CI, checked to show progress with an estimate of the time left.

Usage: python benchmarks/demo_time.py [--fresh-clone]
Writes benchmarks/results/demo_time.json (or demo_fresh_clone.json).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def demo_in_a_folder() -> dict:
    out = Path(tempfile.mkdtemp(prefix="oplearn-demo-"))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "oplearn.cli", "demo", "--out", str(out), "--no-progress"], check=True)
    seconds = time.perf_counter() - t0
    metrics = json.loads((out / "run" / "metrics.json").read_text())
    shutil.rmtree(out)
    print(f"oplearn demo: {seconds:.1f} s (target < 300 s)")
    return {"seconds": seconds, "target_seconds": 300, "results": metrics["results"]}


def make_demo_in_a_fresh_clone() -> dict:
    clone = Path(tempfile.mkdtemp(prefix="oplearn-clone-")) / "oplearn"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    log = clone / "demo.log"
    load = os.getloadavg()[0]
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        subprocess.run(["make", ".venv/.installed"], cwd=clone, stdout=fh, stderr=subprocess.STDOUT, check=True)
        t1 = time.perf_counter()
        subprocess.run(["make", "demo"], cwd=clone, stdout=fh, stderr=subprocess.STDOUT, check=True)
        t2 = time.perf_counter()
    text = log.read_text()
    progress = [line for line in text.splitlines() if re.match(r"^(train|darcy \d+): ", line)]
    estimates = [line for line in progress if "left" in line]
    result = {
        "install_seconds": t1 - t0,
        "demo_seconds": t2 - t1,
        "total_seconds": t2 - t0,
        "target_seconds": 180,
        "load_average_at_start": load,
        "progress_lines": len(progress),
        "lines_with_time_left": len(estimates),
        "log": str(log),
    }
    print(
        f"make demo in a fresh clone: install {t1 - t0:.0f} s + demo {t2 - t1:.0f} s = {t2 - t0:.0f} s "
        f"(target < 180 s; load average {load:.1f}); {len(progress)} progress lines in the log, "
        f"{len(estimates)} with the time left"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fresh-clone", action="store_true", help="time `make demo` (install included) in a fresh clone"
    )
    args = parser.parse_args()
    result = make_demo_in_a_fresh_clone() if args.fresh_clone else demo_in_a_folder()
    name = "demo_fresh_clone.json" if args.fresh_clone else "demo_time.json"
    (ROOT / "benchmarks" / "results" / name).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
