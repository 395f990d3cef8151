"""The ``oplearn`` command line: generate, info, train, evaluate, report, demo."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from oplearn.errors import OplearnError


def _params(pairs: list[str]) -> dict:
    from oplearn.config import parse_override

    params = {}
    for pair in pairs:
        path, value = parse_override(pair)
        params[".".join(path)] = value
    return params


def cmd_generate(args) -> None:
    import os

    from oplearn.data.generate import generate_dataset, generate_parallel, make_pde, parse_shard, shard_from_env
    from oplearn.errors import DataError

    params = _params(args.param)
    if args.refine is not None:
        params["refine"] = args.refine
    shard = parse_shard(args.shard) if args.shard is not None else None
    if shard is None and args.workers is None and "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        shard = "auto"  # launched by torchrun: one shard per rank
    if shard == "auto":
        shard = shard_from_env()
    pde = make_pde(args.pde, params)
    if args.workers is not None:
        if shard is not None:
            raise DataError("--workers and --shard (or torchrun's RANK/WORLD_SIZE) exclude each other; use one of them")
        path = generate_parallel(pde, args.n, args.resolution, args.out, args.workers, seed=args.seed,
                                 chunk_size=args.chunk_size, overwrite=args.overwrite, progress=not args.no_progress)
        print(f"wrote {args.n} {args.pde} samples at {args.resolution} to {path} ({args.workers} workers)")
        return
    path = generate_dataset(pde, args.n, args.resolution, args.out, seed=args.seed, chunk_size=args.chunk_size,
                            overwrite=args.overwrite, progress=not args.no_progress, shard=shard)
    if shard is not None and path != Path(args.out):
        print(f"wrote shard {shard[0]}/{shard[1]} of {args.pde} to {path}; {args.out} is assembled when all shards are done")
    else:
        print(f"wrote {args.n} {args.pde} samples at {args.resolution} to {path}")


def cmd_info(args) -> None:
    from oplearn.data.info import describe

    print(describe(args.path))


def cmd_train(args) -> None:
    from oplearn.config import load_config
    from oplearn.evaluate import evaluate_run, format_table
    from oplearn.training.run import train

    config = load_config(args.config, args.set)
    summary = train(config, args.out, resume=args.resume, progress=not args.no_progress)
    print(f"trained {summary['epochs']} epochs; run saved in {args.out}")
    if config.data.test:
        rows = evaluate_run(args.out, [t.path for t in config.data.test])
        print(format_table(rows))


def cmd_evaluate(args) -> None:
    from oplearn.evaluate import evaluate_run, format_table
    from oplearn.training.tasks import EvaluateOptions

    options = EvaluateOptions(batch_size=args.batch_size, samples=args.samples, seeds=args.seeds)
    rows = evaluate_run(args.run_dir, args.data, options=options)
    print(format_table(rows))
    print(f"metrics written to {Path(args.run_dir) / 'metrics.json'}")


def cmd_report(args) -> None:
    from oplearn.report import make_report

    path = make_report(args.run_dir, args.data or None, args.out)
    print(f"report written to {path} (and report.md beside it)")


def cmd_demo(args) -> None:
    from oplearn.demo import run_demo

    path = run_demo(args.out, args.set, progress=not args.no_progress)
    print(f"demo report: {path} (and report.md beside it)")


COMMAND_MODULES: tuple[str, ...] = ("oplearn.wos.cli", "oplearn.diffusion.cli", "oplearn.inverse.command")
"""Modules that add a subcommand with ``add_command(subparsers)`` (their handlers set ``func``)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="oplearn", description="Neural PDE solvers: generate data, train operators, evaluate.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("generate", help="generate a reference dataset (HDF5)")
    p.add_argument("pde", help="PDE family, e.g. darcy")
    p.add_argument("--n", type=int, required=True, help="number of samples")
    p.add_argument("--resolution", type=int, required=True, help="grid nodes per dimension (mesh PDEs: element size 1/(resolution-1))")
    p.add_argument("--out", required=True, help="output .h5 file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--refine", type=int, help="solve on a grid this many times finer, then subsample")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="PDE parameter, e.g. high=12")
    p.add_argument("--chunk-size", type=int, default=32, help="samples per chunk (part of the recipe)")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--shard", metavar="I/N", help="compute only shard I of N (from 0) into OUT.shards/; OUT is assembled when all "
                   "are done ('auto', the default under torchrun: RANK/WORLD_SIZE)")
    p.add_argument("--workers", type=int, metavar="K", help="generate with K local processes (one shard each), then assemble")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("info", help="print a dataset card: PDE, parameters, grid, shapes, seed, versions")
    p.add_argument("path", metavar="FILE.h5")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("train", help="train a neural operator from a YAML config")
    p.add_argument("config")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a trained run on dataset files")
    p.add_argument("run_dir")
    p.add_argument("--data", nargs="+", action="extend", default=[], metavar="FILE.h5",
                   help="dataset files (default: the config's data.test; runs that draw their own test problems need none)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--samples", type=int, help="samples, points or problems an estimate draws (default: the task's)")
    p.add_argument("--seeds", type=int, help="independent estimator seeds for confidence intervals (default: the task's)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", help="figures and an HTML/Markdown report of a run")
    p.add_argument("run_dir")
    p.add_argument("--data", nargs="+", action="extend", metavar="FILE.h5")
    p.add_argument("--out", help="report directory (default RUN_DIR/report)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="Darcy end to end on a small embedded default")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a demo config key")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)

    for module in COMMAND_MODULES:
        importlib.import_module(module).add_command(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except OplearnError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command (with --resume for train) to continue", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
