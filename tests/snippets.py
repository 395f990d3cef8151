"""The shell commands and Python snippets of the README and of the documentation pages, read from
the pages themselves and run at small sizes, so that no page can drift from the code.

A page's runnable blocks are its fenced ```` ```bash ```` / ```` ```python ```` blocks (Markdown) or
its ``.. code-block:: bash`` / ``.. code-block:: python`` directives (reStructuredText). A marker
right before a block leaves out the block's lines that contain TEXT, with its reason::

    <!-- snippet-test: skip "TEXT" (why) -->        Markdown
    .. snippet-test: skip "TEXT" (why)              reStructuredText (a comment: not rendered)

(``make test`` would run the tests, ``pip install`` the package under test, a multi-node launch needs
two machines). ``make demo`` runs the Makefile's own demo recipe. Blocks run in order in one working
folder, where a command already run there is not repeated (a reader who meets it twice runs it
once). What is shrunk, and how, is listed here: sizes only (samples, epochs, steps, processes,
grid points), never what a command does.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from helpers import SRC

from oplearn.cli import main

ROOT = Path(__file__).resolve().parents[1]
SKIP = re.compile(r'snippet-test:\s*skip\s+"([^"]+)"')
#: Markdown: a marker comment, or a fenced bash/python block.
MARKDOWN_BLOCK = re.compile(r"(<!--.*?-->)|```(bash|python)\n(.*?)```", re.S)
#: reStructuredText: a marker comment, or a bash/python code-block directive with its indented body.
RST_BLOCK = re.compile(
    r"^(\.\. snippet-test:.*)$|^([ \t]*)\.\. code-block:: (bash|python)[ \t]*\n((?:\2[ \t]+:.*\n)*)\n"
    r"((?:(?:\2[ \t]+.*)?\n)*)",
    re.M,
)
#: Every code-block directive of a page, runnable or not (a language must be one the tests know).
ANY_RST_BLOCK = re.compile(r"^[ \t]*\.\. (?:code-block|code|sourcecode)::[ \t]*(\S*)", re.M)

#: Small data and one epoch for the Darcy FNO recipe (``darcy_fno`` and ``oplearn demo``).
DARCY_SMALL = [
    "data.n_train=32",
    "data.n_val=8",
    "data.batch_size=8",
    "train.epochs=1",
    "data.test.0.generate.n=8",
    "data.test.1.generate.n=8",
]
#: ``--set`` overrides placed right after the config of ``oplearn train|config CONFIG`` and of
#: ``oplearn demo`` (so that the command's own ``--set`` still win): small data, one epoch.
SMALL_CONFIG = {
    "darcy_fno": DARCY_SMALL,
    "darcy_diffusion": [
        "data.n_train=32",
        "data.n_val=8",
        "data.batch_size=8",
        "train.epochs=1",
        "diffusion.net.width=8",
        "diffusion.net.modes=4",
        "diffusion.net.embedding=16",
        "diffusion.net.projection_channels=16",
    ],
    "poisson_wos": ["wos.n_train=4", "wos.n_val=2", "wos.points=16", "data.batch_size=2", "train.epochs=1"],
    "darcy_gino": [
        "data.generate.n=12",
        "data.n_train=8",
        "data.n_val=4",
        "data.batch_size=4",
        "train.epochs=1",
        "data.test.0.generate.n=4",
        "data.test.1.generate.n=4",
        "data.test.1.generate.resolution=20",
        "model.latent=8",
        "model.modes=3",
        "model.width=8",
        "model.n_layers=1",
    ],
    "poisson_mgno": [
        "data.generate.n=12",
        "data.generate.resolution=12",
        "data.n_train=8",
        "data.n_val=4",
        "data.batch_size=4",
        "train.epochs=1",
        "data.test.0.generate.n=4",
        "data.test.0.generate.resolution=12",
        "model.latent=8",
        "model.modes=3",
        "model.width=8",
        "model.n_layers=1",
    ],
    "kolmogorov_heat_50d_bsde": [
        "data.batch_size=16",
        "kolmogorov.iterations=2",
        "kolmogorov.steps=4",
        "train.epochs=1",
        "kolmogorov.validation_points=64",
        "kolmogorov.eval_points=256",
    ],
    "sample_gmm40_dis": [
        "train.epochs=1",
        "sampling.iterations=2",
        "data.batch_size=32",
        "sampling.validation_samples=64",
        "sampling.method_params.steps=8",
    ],
    "ks_refiner": [
        "data.generate.n=10",
        "data.generate.resolution=64",
        "data.generate.params={burn_in: 10, t_final: 4, n_times: 6}",
        "data.n_train=6",
        "data.n_val=4",
        "data.batch_size=4",
        "train.epochs=1",
        "data.test.0.generate.n=2",
        "data.test.0.generate.resolution=64",
        "data.test.0.generate.params={burn_in: 10, t_final: 4, n_times: 6}",
        "model.modes=8",
        "model.width=8",
        "model.n_layers=2",
        "model.projection_channels=16",
    ],
    "swe_sfno": [
        "data.generate.n=6",
        "data.generate.resolution=16",
        "data.generate.params={t_final: 6.0, n_times: 3, dt: 1800.0}",
        "data.n_train=4",
        "data.n_val=2",
        "data.batch_size=2",
        "train.epochs=1",
        "data.test.0.generate.n=2",
        "data.test.0.generate.resolution=16",
        "data.test.0.generate.params={t_final: 6.0, n_times: 3, dt: 1800.0}",
        "model.modes=4",
        "model.width=8",
        "model.n_layers=2",
        "model.projection_channels=16",
    ],
    "demo": ["data.generate.n=40", *DARCY_SMALL],  # the demo runs the darcy_fno recipe
}
#: Options appended to a command (argparse keeps the last value).
SMALL_OPTIONS = {
    "generate": ["--n", "16"],
    "sample": ["--n", "2", "--steps", "3"],
    "inverse": ["--samples", "2", "--steps", "3", "--langevin-steps", "2", "--ode-steps", "1"],
    "solve": ["--walks", "200"],
    "rollout": ["--steps", "4", "--samples", "2"],
}
#: Rewrites of the text of commands and snippets.
SMALL_TEXT = [
    (re.compile(r"train\.epochs=\d+"), "train.epochs=2"),
    (re.compile(r"--nproc-per-node \d+"), "--standalone --nproc-per-node 1"),  # standalone: a private rendezvous
    (re.compile(r"\bn=1100\b"), "n=40"),
    (re.compile(r"\bn=100\b"), "n=8"),
    (re.compile(r"\bsteps=20\b"), "steps=3"),
    (re.compile(r"\biterations=2000\b"), "iterations=3"),
    (re.compile(r"\bsteps=64\b"), "steps=8"),
    (re.compile(r"\b(estimate|sample)\(2000\b"), r"\1(128"),
    (re.compile(r"--samples 2000 --seeds 5"), "--samples 64 --seeds 2"),
    (
        re.compile(r'load_config\("configs/(\w+)\.yaml", \['),
        lambda m: m[0] + "".join(f"{s!r}, " for s in SMALL_CONFIG[m[1]]),
    ),
]


@dataclass
class Block:
    """One runnable block of a page: its language, its code, the substrings of its skipped lines and the
    number of lines of the page before the code (tracebacks name the page's own lines)."""

    page: str
    language: str
    code: str
    skip: list[str] = field(default_factory=list)
    line: int = 0


def page_blocks(path: Path) -> list[Block]:
    """The bash and Python blocks of a Markdown or reStructuredText page, in order."""
    text, page = path.read_text(), str(path.relative_to(ROOT))
    blocks, skip = [], []
    if path.suffix == ".md":
        for match in MARKDOWN_BLOCK.finditer(text):
            if match[1]:
                skip = SKIP.findall(match[1])
            else:
                blocks.append(Block(page, match[2], match[3], skip, text.count("\n", 0, match.start(3))))
                skip = []
        return blocks
    for match in RST_BLOCK.finditer(text):
        if match[1]:
            skip = SKIP.findall(match[1])
        else:
            blocks.append(Block(page, match[3], textwrap.dedent(match[5]), skip, text.count("\n", 0, match.start(5))))
            skip = []
    return blocks


def rst_languages(path: Path) -> list[str]:
    """The language of every code-block directive of a reStructuredText page."""
    return ANY_RST_BLOCK.findall(path.read_text())


def shell_commands(code: str, skip: list[str]) -> list[str]:
    """The commands of a bash block: continuation lines joined, comment lines and skipped lines dropped,
    ``[optional]`` parts removed."""
    lines = code.replace("\\\n", " ").splitlines()
    commands = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#") or any(s in line for s in skip):
            continue
        commands.append(re.sub(r"\s\[[^\]]*\]", "", line).strip())
    return commands


def shrink(text: str) -> str:
    for pattern, replacement in SMALL_TEXT:
        text = pattern.sub(replacement, text)
    return text


def small_argv(argv: list[str]) -> list[str]:
    """``oplearn`` arguments at small sizes (see :data:`SMALL_CONFIG`, :data:`SMALL_OPTIONS`)."""
    command = argv[0]
    if command in ("train", "config", "demo"):
        name = "demo" if command == "demo" else Path(argv[1]).stem
        at = 1 if command == "demo" else 2
        extra = [x for item in SMALL_CONFIG.get(name, []) for x in ("--set", item)]
        argv = argv[:at] + extra + argv[at:]
    return argv + SMALL_OPTIONS.get(command, [])


def run_oplearn(argv: list[str], stdout) -> None:
    stderr = io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(argv)
    assert status == 0, f"oplearn {' '.join(argv)} exited {status}: {stderr.getvalue()[-2000:]}"


def run_shell(command: str, cwd: Path) -> None:
    tokens = shlex.split(shrink(command), comments=True)
    out = None
    if ">" in tokens:
        at = tokens.index(">")
        tokens, out = tokens[:at], cwd / tokens[at + 1]
    if tokens[0] == "make":  # the Makefile's own recipe for the target, after its set-up
        recipe = re.search(rf"^{tokens[1]}:.*\n\t(.+)$", (ROOT / "Makefile").read_text(), re.M)[1]
        tokens = shlex.split(recipe.replace("$(BIN)/", ""))
    if tokens[0] == "oplearn":
        stream = io.StringIO()
        run_oplearn(small_argv(tokens[1:]), stream)
        if out is not None:
            out.write_text(stream.getvalue())
        return
    if tokens[0] == "torchrun":
        at = tokens.index("--")
        env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
        argv = [sys.executable, "-m", "torch.distributed.run", *tokens[1 : at + 1], *small_argv(tokens[at + 1 :])]
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{command}\n{proc.stdout}\n{proc.stderr}"
        return
    raise AssertionError(f"a command the test does not know how to run: {command}")


def external_files(cwd: Path) -> None:
    """The files the pages assume a user brings: a NeuralOperator Darcy set (40 samples at 16x16)
    and two meshes with nodal fields ``a`` and ``u`` (VTU)."""
    import meshio

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(40, 16, 16, generator=g) > 0.5).float() * 9 + 3
    y = torch.randn(40, 16, 16, generator=g) * 0.01
    torch.save({"x": x, "y": y}, cwd / "darcy_train_16.pt")
    points = [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0.0]]
    for name in ("a", "b"):
        meshio.write(
            cwd / f"{name}.vtu",
            meshio.Mesh(
                points, [("triangle", [[0, 1, 2], [0, 2, 3]])], point_data={"a": [1.0, 2, 3, 4], "u": [0.0, 1, 2, 3]}
            ),
        )


def prepare(cwd: Path, monkeypatch) -> None:
    """A working folder as a user's checkout has it: the shipped configs and the files they bring."""
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("OPLEARN_PROGRESS_INTERVAL", "1000")
    (cwd / "configs").symlink_to(ROOT / "configs")
    external_files(cwd)


def run_blocks(blocks: list[Block], cwd: Path) -> list[tuple[float, str]]:
    """Run the blocks in order in ``cwd`` on one thread; ``(seconds, what)`` of every command and snippet.
    A command already run in this folder is not run again."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    timings, done = [], set()
    try:
        for block in blocks:
            if block.language == "python":
                t0 = time.perf_counter()
                code = "\n" * block.line + shrink(block.code)
                exec(compile(code, str(ROOT / block.page), "exec"), {"__name__": "snippet"})
                timings.append((time.perf_counter() - t0, f"{block.page}: {block.code.splitlines()[0]}"))
                continue
            for command in shell_commands(block.code, block.skip):
                key = tuple(shlex.split(command, comments=True))
                if key in done:
                    continue
                t0 = time.perf_counter()
                try:
                    run_shell(command, cwd)
                except AssertionError as error:
                    raise AssertionError(f"{block.page}: {error}") from None
                done.add(key)
                timings.append((time.perf_counter() - t0, f"{block.page}: {command}"))
    finally:
        torch.set_num_threads(threads)
    print("\n".join(f"{s:6.1f}s  {c[:110]}" for s, c in sorted(timings, reverse=True)[:15]))
    return timings
