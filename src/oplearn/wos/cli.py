"""``oplearn solve wos``: walk-on-spheres estimates with error bars at given points.

.. code-block:: bash

    oplearn solve wos --domain "box:-1,-1,1,1 - ball:0,0,0.3" --boundary "x*y" --source "0" \\
        --point 0.5,0.5 --point -0.6,0.2 --walks 10000 [--exact "x*y"] [--points FILE.npy|FILE.csv] [--out FILE.csv]

Domains (``--domain``): ``box:LO_1,..,LO_d,HI_1,..,HI_d``, ``ball:C_1,..,C_d,R``,
``star:CX,CY,R,A_1,B_1,A_2,B_2,..`` (radius :math:`R(1 + \\sum_k A_k \\cos k\\theta + B_k \\sin k\\theta)`),
combined left to right with `` | `` (union), `` & `` (intersection) and `` - `` (difference).
Functions (``--source``, ``--boundary``, ``--exact``) are arithmetic expressions in
``x, y, z`` (or ``x0 .. x{d-1}``) and ``r`` (the distance to the origin) with ``+ - * / **``,
numbers, ``pi`` and ``sin cos tan exp log sqrt abs tanh atan2``.
"""

from __future__ import annotations

import argparse
import ast
import math
import os
from pathlib import Path

import numpy as np
import torch

from oplearn.arguments import file_argument
from oplearn.errors import OplearnError
from oplearn.wos.domains import Ball, Box, Domain, StarShaped
from oplearn.wos.walk import DirichletProblem, PointFunction, walk_on_spheres

_FUNCTIONS = {
    name: getattr(torch, name) for name in ("sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "atan2")
}
_OPERATORS = {ast.Add: torch.add, ast.Sub: torch.sub, ast.Mult: torch.mul, ast.Div: torch.div, ast.Pow: torch.pow}
_COMBINE = {"|": Domain.__or__, "&": Domain.__and__, "-": Domain.__sub__}


class InputError(OplearnError):
    """A malformed ``solve`` argument."""


def parse_function(text: str, dim: int, option: str) -> PointFunction:
    """A function ``(m, dim) -> (m,)`` from an arithmetic expression (see the module docstring)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise InputError(f"{option} '{text}' is not an arithmetic expression") from None
    names = {f"x{i}": i for i in range(dim)} | {n: i for i, n in enumerate("xyz"[:dim])}

    def evaluate(node: ast.AST, x: torch.Tensor) -> torch.Tensor:
        if isinstance(node, ast.Expression):
            return evaluate(node.body, x)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return torch.full(x.shape[:1], float(node.value), dtype=x.dtype)
        if isinstance(node, ast.Name):
            if node.id in names:
                return x[:, names[node.id]]
            if node.id == "r":
                return x.norm(dim=1)
            if node.id in ("pi", "e"):
                return torch.full(x.shape[:1], getattr(math, node.id), dtype=x.dtype)
            raise InputError(f"{option} '{text}': unknown name '{node.id}' (use {', '.join([*names, 'r', 'pi', 'e'])})")
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](evaluate(node.left, x), evaluate(node.right, x))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = evaluate(node.operand, x)
            return -value if isinstance(node.op, ast.USub) else value
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTIONS
            and not node.keywords
        ):
            return _FUNCTIONS[node.func.id](*(evaluate(a, x) for a in node.args))
        raise InputError(
            f"{option} '{text}': '{ast.unparse(node)}' is not allowed (arithmetic, numbers, "
            f"coordinates and {', '.join(_FUNCTIONS)} only)"
        )

    evaluate(tree, torch.zeros((1, dim), dtype=torch.float64) + 0.5)  # report errors now, not mid-walk
    return lambda x: evaluate(tree, x)


def _numbers(text: str, where: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise InputError(f"{where}: '{text}' is not a comma-separated list of numbers") from None


def parse_domain(text: str) -> Domain:
    """A domain from ``kind:numbers`` terms joined by ``|``, ``&``, ``-`` (see the module docstring)."""
    tokens = text.split()
    if not tokens or len(tokens) % 2 == 0:
        raise InputError(f"--domain '{text}': expected TERM [OP TERM ...] with OP one of | & - separated by spaces")
    domain = _parse_term(tokens[0])
    for op, term in zip(tokens[1::2], tokens[2::2]):
        if op not in _COMBINE:
            raise InputError(f"--domain '{text}': '{op}' is not one of | & -")
        other = _parse_term(term)
        if other.dim != domain.dim:
            raise InputError(f"--domain '{text}': cannot combine a {domain.dim}D and a {other.dim}D domain")
        domain = _COMBINE[op](domain, other)
    return domain


def _parse_term(term: str) -> Domain:
    kind, _, values = term.partition(":")
    v = _numbers(values, f"--domain term '{term}'")
    try:
        if kind == "box" and len(v) >= 4 and len(v) % 2 == 0:
            return Box(tuple(v[: len(v) // 2]), tuple(v[len(v) // 2 :]))
        if kind == "ball" and len(v) >= 3:
            return Ball(tuple(v[:-1]), v[-1])
        if kind == "star" and len(v) >= 3 and len(v) % 2 == 1:
            return StarShaped((v[0], v[1]), v[2], tuple(v[3::2]), tuple(v[4::2]))
    except ValueError as err:
        raise InputError(f"--domain term '{term}': {err}") from None
    raise InputError(
        f"--domain term '{term}': expected box:LO..,HI.. (2d numbers), ball:C..,R or star:CX,CY,R[,A1,B1,..]"
    )


def read_points(files: list[str], inline: list[str], dim: int) -> torch.Tensor:
    """Points from ``.npy``/``.csv`` files (``(m, dim)``) and ``--point`` values: ``(m, dim)`` float64."""
    rows = [_numbers(p, "--point") for p in inline]
    for name in files:
        path = Path(name)
        if not path.is_file():
            raise InputError(f"points file '{path}' does not exist")
        try:
            array = np.load(path) if path.suffix == ".npy" else np.loadtxt(path, delimiter=",", ndmin=2)
        except ValueError as err:
            raise InputError(f"points file '{path}' is not a numeric (m, {dim}) array: {err}") from None
        rows += np.atleast_2d(array).tolist()
    if not rows:
        raise InputError("no points: give --point X,Y[,..] or --points FILE.npy|FILE.csv")
    if any(len(r) != dim for r in rows):
        raise InputError(f"every point needs {dim} coordinates (the domain is {dim}D)")
    points = torch.tensor(rows, dtype=torch.float64)
    if not torch.isfinite(points).all():
        raise InputError("points contain NaN or infinite values")
    return points


def cmd_solve_wos(args: argparse.Namespace) -> None:
    domain = parse_domain(args.domain)
    boundary = parse_function(args.boundary, domain.dim, "--boundary")
    source = None if args.source is None else parse_function(args.source, domain.dim, "--source")
    exact = None if args.exact is None else parse_function(args.exact, domain.dim, "--exact")
    points = read_points(args.points, args.point, domain.dim)
    outside = ~domain.contains(points)
    if outside.any():
        raise InputError(f"point {points[outside][0].tolist()} lies outside the domain")
    if args.walks < 2 or args.epsilon <= 0 or args.max_steps < 1:
        raise InputError("--walks must be >= 2 (for error bars), --epsilon > 0 and --max-steps >= 1")
    est = walk_on_spheres(
        DirichletProblem(domain, boundary, source),
        points,
        args.walks,
        epsilon=args.epsilon,
        max_steps=args.max_steps,
        generator=torch.Generator().manual_seed(args.seed),
    )
    names = [f"x{i}" for i in range(domain.dim)]
    columns = [*names, "mean", "stderr"] + (["exact", "error"] if exact else [])
    table = [points, est.mean[:, None], est.stderr[:, None]]
    if exact:
        u = exact(points)[:, None]
        table += [u, est.mean[:, None] - u]
    values = torch.cat(table, dim=1).numpy()
    print("  ".join(f"{c:>12}" for c in columns))
    for row in values:
        print("  ".join(f"{v:12.6g}" for v in row))
    print(
        f"{args.walks} walks per point, epsilon {args.epsilon:g}: {est.mean_steps:.1f} steps per walk on average"
        + (f", {est.truncated} walks stopped at --max-steps" if est.truncated else "")
    )
    if args.out:
        out = Path(args.out)
        tmp = out.with_name(f".{out.name}.tmp")
        np.savetxt(tmp, values, delimiter=",", header=",".join(columns), comments="", fmt="%.10g")
        os.replace(tmp, out)
        print(f"estimates written to {out}")


def add_command(sub: argparse._SubParsersAction) -> None:
    """Register ``oplearn solve wos``."""
    p = sub.add_parser("solve", help="estimate PDE solutions at points without a grid")
    methods = p.add_subparsers(dest="method", required=True)
    w = methods.add_parser("wos", help="walk-on-spheres for Lap u = f in a domain, u = g on its boundary")
    w.add_argument(
        "--domain", required=True, help='e.g. "ball:0,0,1", "box:0,0,1,1 - ball:0.5,0.5,0.2", "star:0,0,1,0.2,0.1"'
    )
    w.add_argument("--boundary", required=True, metavar="EXPR", help="Dirichlet data g, e.g. 'x**2 - y**2'")
    w.add_argument("--source", metavar="EXPR", help="right-hand side f of Lap u = f (default: none, Laplace)")
    w.add_argument("--exact", metavar="EXPR", help="a known solution, to print the error of each estimate")
    w.add_argument("--point", action="append", default=[], metavar="X,Y[,..]", help="a point (repeatable)")
    w.add_argument("--points", action="append", default=[], metavar="FILE", help=".npy or .csv file of points (m, d)")
    w.add_argument("--walks", type=int, default=1000, help="walks per point")
    w.add_argument("--epsilon", type=float, default=1e-4, help="stopping distance to the boundary (bias O(epsilon))")
    w.add_argument("--max-steps", type=int, default=10_000, help="steps after which a walk is stopped (and counted)")
    w.add_argument("--seed", type=int, default=0, help="seed of the walks")
    w.add_argument("--out", metavar="FILE.csv", type=file_argument(), help="write the table as CSV")
    w.set_defaults(func=cmd_solve_wos)
