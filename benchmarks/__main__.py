"""One entry point for the benchmark scripts: ``python -m benchmarks run [--quick] [NAME ...]``.

Each script prints its table and writes JSON to ``benchmarks/results/``; this runner only
runs them in sequence, in fresh processes, and reports which failed. ``--quick`` runs the
short ones (minutes); the full set includes the 15-minute Darcy training and the
Navier-Stokes timing.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (script, extra arguments for --quick, part of the quick set)
BENCHMARKS = {
    "fno_throughput": ("fno_throughput.py", ["--repeats", "3"], True),
    "darcy_generation": ("darcy_generation.py", [], True),
    "generation_throughput": ("generation_throughput.py", [], True),
    "demo_time": ("demo_time.py", [], True),
    "model_zoo": ("model_zoo.py", [], True),
    "neural_wos": ("neural_wos.py", [], True),
    "wos_vs_pino": ("wos_vs_pino.py", [], False),
    "lazy_data": ("lazy_data.py", ["--sizes", "1024", "4096"], True),
    "navier_stokes_speed": ("navier_stokes_speed.py", ["--horizon", "0.005"], False),
    "darcy_accuracy": ("darcy_accuracy.py", [], False),
    "reproduce": ("reproduce.py", ["--preset", "cpu"], False),
    "inverse_linear_gaussian": ("inverse_linear_gaussian.py", ["--samples", "16", "--cases", "1"], False),
    "inverse_darcy": ("inverse_darcy.py", ["--prior-epochs", "4", "--baseline-epochs", "3"], False),
    # irregular domains and point clouds
    "gno_scaling": ("gno_scaling.py", ["--sizes", "10000", "100000"], True),
    "gino_vs_fno": ("gino_vs_fno.py", ["--n-train", "32", "--n-test", "8", "--minutes", "0.5"], False),
    "mgno_physics": ("mgno_physics.py", ["--n-train", "8", "--n-test", "4", "--steps", "40"], False),
    # Kolmogorov PDEs through SDEs
    "kolmogorov": ("kolmogorov.py", ["--preset", "quick"], False),
    # the sphere
    "sphere_swe": ("sphere_swe.py", ["--preset", "quick"], False),
    # chaotic systems and long rollouts
    "ks_refiner": ("ks_refiner.py", ["--preset", "quick"], False),
    "kolmogorov_coarse": ("kolmogorov_coarse.py", ["--preset", "quick"], False),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run benchmarks")
    run.add_argument("names", nargs="*", choices=[*BENCHMARKS, []], metavar="NAME", help=", ".join(BENCHMARKS))
    run.add_argument("--quick", action="store_true", help="only the short benchmarks, with fewer repeats")
    args = parser.parse_args(argv)

    names = args.names or [n for n, (_, _, quick) in BENCHMARKS.items() if quick or not args.quick]
    failed = []
    for name in names:
        script, quick_args, _ = BENCHMARKS[name]
        print(f"== {name}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(HERE / script), *(quick_args if args.quick else [])])
        print(
            f"== {name}: {'ok' if proc.returncode == 0 else 'FAILED'} in {time.perf_counter() - t0:.0f} s", flush=True
        )
        if proc.returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
