"""The ``oplearn`` command line: generate, info, train, evaluate, report, demo (and the commands of
:data:`COMMAND_MODULES`).

Conventions every command follows (and :func:`main` enforces):

* Bad input ends in one line ``error: ...`` on standard error and exit status 2, never a
  traceback: :class:`~oplearn.errors.OplearnError` from the library, malformed command lines
  (:class:`ArgumentParser`), and operating-system errors on files (``OSError``:
  :func:`oplearn.paths.os_error_message`). Output paths are checked before work starts
  (:mod:`oplearn.paths`).
* Warnings (:class:`~oplearn.errors.OplearnWarning`) are one line ``warning: ...``.
* A reader that goes away (``oplearn info F | head -1``) ends the command quietly.
* ``--help`` of every command describes every option and shows its default.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from pathlib import Path

from oplearn import __version__
from oplearn.arguments import COMMON_HELP, ArgumentParser, complete_help, dir_argument, file_argument, positive_int
from oplearn.errors import OplearnError, OplearnWarning
from oplearn.paths import os_error_message


def _params(pairs: list[str]) -> dict:
    from oplearn.config import parse_override

    params = {}
    for pair in pairs:
        path, value = parse_override(pair)
        params[".".join(path)] = value
    return params


def cmd_generate(args: argparse.Namespace) -> None:
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
        path = generate_parallel(
            pde,
            args.n,
            args.resolution,
            args.out,
            args.workers,
            seed=args.seed,
            chunk_size=args.chunk_size,
            overwrite=args.overwrite,
            progress=not args.no_progress,
        )
        print(f"wrote {args.n} {args.pde} samples at {args.resolution} to {path} ({args.workers} workers)")
        return
    path = generate_dataset(
        pde,
        args.n,
        args.resolution,
        args.out,
        seed=args.seed,
        chunk_size=args.chunk_size,
        overwrite=args.overwrite,
        progress=not args.no_progress,
        shard=shard,
    )
    if shard is not None and path != Path(args.out):
        print(
            f"wrote shard {shard[0]}/{shard[1]} of {args.pde} to {path}; {args.out} is assembled when all shards are done"
        )
    else:
        print(f"wrote {args.n} {args.pde} samples at {args.resolution} to {path}")


def cmd_info(args: argparse.Namespace) -> None:
    from oplearn.data.info import describe

    print(describe(args.path))


def cmd_train(args: argparse.Namespace) -> None:
    from oplearn.config import load_config
    from oplearn.evaluate import evaluate_fitting, format_table
    from oplearn.training.distributed import is_main_process
    from oplearn.training.run import train

    config = load_config(args.config, args.set)
    summary = train(config, args.out, resume=args.resume, progress=not args.no_progress)
    if not is_main_process():  # under torchrun, rank 0 reports
        return
    print(f"trained {summary['epochs']} epochs; run saved in {args.out}")
    if config.data.test:
        rows, skipped = evaluate_fitting(args.out, [t.path for t in config.data.test])
        if rows:
            print(format_table(rows))
        if skipped:
            print("not evaluated: " + "; ".join(f"{Path(path).name}: {reason}" for path, reason in skipped))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from oplearn.evaluate import evaluate_run, format_table
    from oplearn.training.tasks import EvaluateOptions

    options = EvaluateOptions(batch_size=args.batch_size, samples=args.samples, seeds=args.seeds, force=args.force)
    rows = evaluate_run(args.run_dir, args.data, options=options)
    print(format_table(rows))
    print(f"metrics written to {Path(args.run_dir) / 'metrics.json'}")


def cmd_report(args: argparse.Namespace) -> None:
    from oplearn.report import make_report

    path = make_report(args.run_dir, args.data or None, args.out)
    print(f"report written to {path} (and report.md beside it)")


def cmd_demo(args: argparse.Namespace) -> None:
    from oplearn.demo import run_demo

    path = run_demo(args.out, args.set, progress=not args.no_progress)
    print(f"demo report: {path} (and report.md beside it)")


COMMAND_MODULES: tuple[str, ...] = (
    "oplearn.data.convert",
    "oplearn.catalog",
    "oplearn.wos.cli",
    "oplearn.diffusion.cli",
    "oplearn.inverse.command",
    "oplearn.rollout_command",
)
"""Modules that add a subcommand with ``add_command(subparsers)`` (their handlers set ``func``)."""


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="oplearn",
        description="Neural PDE solvers: generate data, train operators, evaluate. "
        "'oplearn list' shows the PDEs, models, tasks and shipped configs; 'oplearn COMMAND --help' "
        "the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"oplearn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from oplearn.pdes import PDES

    p = sub.add_parser(
        "generate",
        help="generate a reference dataset (HDF5)",
        description="Generate a reference dataset: inputs drawn from the PDE's distribution, solved by its "
        f"verified solver. PDE families: {', '.join(PDES)} ('oplearn list pdes' shows their parameters and "
        "defaults). Interrupted runs resume from OUT.partial when the same command is run again.",
    )
    p.add_argument("pde", metavar="PDE", help=f"PDE family: {', '.join(PDES)}")
    p.add_argument("--n", type=int, required=True, help="number of samples")
    p.add_argument(
        "--resolution",
        type=int,
        required=True,
        help="grid nodes per dimension (mesh PDEs: element size 1/(resolution-1))",
    )
    p.add_argument("--out", required=True, type=file_argument(), metavar="FILE.h5", help="output .h5 file")
    p.add_argument(
        "--seed", type=int, default=0, help="seed of the inputs (chunk c draws from the seed stream (seed, c))"
    )
    p.add_argument("--refine", type=positive_int, help="solve on a grid this many times finer, then subsample")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="PDE parameter, e.g. high=12 (repeatable; 'oplearn list pdes' lists them)",
    )
    p.add_argument("--chunk-size", type=positive_int, default=32, help="samples per chunk (part of the recipe)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.add_argument("--no-progress", action="store_true", help=COMMON_HELP["no_progress"])
    p.add_argument(
        "--shard",
        metavar="I/N",
        help="compute only shard I of N (from 0) into OUT.shards/; OUT is assembled when all "
        "are done ('auto', the default under torchrun: RANK/WORLD_SIZE)",
    )
    p.add_argument(
        "--workers", type=int, metavar="K", help="generate with K local processes (one shard each), then assemble"
    )
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("info", help="print a dataset card: PDE, parameters, grid, shapes, seed, versions")
    p.add_argument("path", metavar="FILE", help="an oplearn dataset (or its .partial), or a file of another format")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser(
        "train",
        help="train a neural operator from a YAML config",
        description="Train from a YAML config (a file, or the name of a shipped config: 'oplearn list "
        "configs'), then evaluate on the config's data.test files that suit the model.",
    )
    p.add_argument("config", metavar="CONFIG", help="YAML config file, or a shipped config's name (e.g. darcy_fno)")
    p.add_argument("--out", required=True, type=dir_argument(), metavar="RUN_DIR", help="run directory")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. train.epochs=50 or model.name=unet (repeatable)",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out (it may raise train.epochs)")
    p.add_argument("--no-progress", action="store_true", help=COMMON_HELP["no_progress"])
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics of a trained run on dataset files")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory of 'oplearn train'")
    p.add_argument(
        "--data",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="dataset files: oplearn .h5 or any format 'oplearn convert' reads (default: the config's data.test; "
        "runs that draw their own test problems need none)",
    )
    p.add_argument("--batch-size", type=positive_int, default=32, help="samples per forward pass")
    p.add_argument(
        "--samples", type=positive_int, help="samples, points or problems an estimate draws (default: the task's)"
    )
    p.add_argument(
        "--seeds", type=positive_int, help="independent estimator seeds for confidence intervals (default: the task's)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="evaluate on data of another PDE or channel layout than the training data's",
    )
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("report", help="figures and an HTML/Markdown report of a run")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory of 'oplearn train'")
    p.add_argument(
        "--data", nargs="+", action="extend", metavar="FILE", help="test files (default: the config's data.test)"
    )
    p.add_argument("--out", type=dir_argument(), metavar="DIR", help="report directory (default RUN_DIR/report)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="Darcy end to end on a small embedded default")
    p.add_argument(
        "--out", default="runs/demo", type=dir_argument(), metavar="DIR", help="where data, run and report go"
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a demo config key")
    p.add_argument("--no-progress", action="store_true", help=COMMON_HELP["no_progress"])
    p.set_defaults(func=cmd_demo)

    for module in COMMAND_MODULES:
        importlib.import_module(module).add_command(sub)
    complete_help(parser)
    return parser


def _quiet_broken_pipe() -> None:
    """The reader of our output went away (``| head``): send what is left to /dev/null, so that
    Python's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _warning_line(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    if issubclass(category, OplearnWarning):
        return f"warning: {message}\n"
    return _default_format(message, category, filename, lineno, line)


_default_format = warnings.formatwarning


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    warnings.formatwarning = _warning_line
    try:
        args = build_parser().parse_args(argv)
        args.func(args)
    except OplearnError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        _quiet_broken_pipe()
        return 0
    except OSError as err:
        print(f"error: {os_error_message(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command (with --resume for train) to continue", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = _default_format
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _quiet_broken_pipe()
    return 0


if __name__ == "__main__":
    sys.exit(main())
