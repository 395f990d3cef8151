"""Every shell command and Python snippet of README.md runs, in order, in one working folder, at
small sizes: the README cannot drift from the code.

The blocks are read from README.md itself. A comment ``<!-- readme-test: skip "TEXT" (why) -->``
right before a block leaves out its lines containing TEXT (``make test`` would run this test,
``pip install`` the package under test, a multi-node launch needs two machines). ``make demo``
runs the Makefile's own demo recipe. What is shrunk, and how, is listed here: sizes only
(samples, epochs, steps, processes), never what a command does.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch
from helpers import SRC

from oplearn.cli import main

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r'<!--\s*readme-test:\s*skip\s+"([^"]+)"')

#: ``--set`` overrides placed right after the config of ``oplearn train|config CONFIG`` and of
#: ``oplearn demo`` (so that the command's own ``--set`` still win): small data, one epoch.
SMALL_CONFIG = {
    "darcy_fno": [
        "data.n_train=32",
        "data.n_val=8",
        "data.batch_size=8",
        "train.epochs=1",
        "data.test.0.generate.n=8",
        "data.test.1.generate.n=8",
    ],
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
    "demo": [
        "data.generate.n=40",
        "data.n_train=32",
        "data.n_val=8",
        "data.batch_size=8",
        "train.epochs=1",
        "data.test.0.generate.n=8",
        "data.test.1.generate.n=8",
    ],
}
#: Options appended to a command (argparse keeps the last value).
SMALL_OPTIONS = {
    "generate": ["--n", "16"],
    "sample": ["--n", "2", "--steps", "3"],
    "inverse": ["--samples", "2", "--steps", "3", "--langevin-steps", "2", "--ode-steps", "1"],
    "solve": ["--walks", "200"],
}
#: Rewrites of the text of commands and snippets.
SMALL_TEXT = [
    (re.compile(r"train\.epochs=\d+"), "train.epochs=2"),
    (re.compile(r"--nproc-per-node \d+"), "--standalone --nproc-per-node 1"),  # standalone: a private rendezvous
    (re.compile(r"\bn=1100\b"), "n=40"),
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


def readme_blocks(text: str) -> list[tuple[str, str, list[str]]]:
    """``(language, code, skipped substrings)`` of every fenced bash/python block, in order."""
    blocks, skip = [], []
    for match in re.finditer(r"(<!--.*?-->)|```(bash|python)\n(.*?)```", text, re.S):
        if match[1]:
            skip = MARKER.findall(match[1])
        else:
            blocks.append((match[2], match[3], skip))
            skip = []
    return blocks


def shell_commands(code: str, skip: list[str]) -> list[str]:
    """The commands of a bash block: continuation lines joined, comment lines and skipped lines dropped,
    ``[optional]`` parts removed."""
    lines = code.replace("\\\n", " ").splitlines()
    commands = []
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#") or any(s in line for s in skip):
            continue
        commands.append(re.sub(r"\s\[[^\]]*\]", "", line))
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
    raise AssertionError(f"README command the test does not know how to run: {command}")


def external_files(cwd: Path) -> None:
    """The files the README assumes a user brings: a NeuralOperator Darcy set (40 samples at 16x16)
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


def test_every_readme_command_and_snippet_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPLEARN_PROGRESS_INTERVAL", "1000")
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    external_files(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    timings = []
    try:
        for language, code, skip in readme_blocks((ROOT / "README.md").read_text()):
            if language == "python":
                t0 = time.perf_counter()
                exec(compile(shrink(code), "README.md", "exec"), {"__name__": "readme"})
                timings.append((time.perf_counter() - t0, code.splitlines()[0]))
                continue
            for command in shell_commands(code, skip):
                t0 = time.perf_counter()
                run_shell(command, tmp_path)
                timings.append((time.perf_counter() - t0, command))
    finally:
        torch.set_num_threads(threads)
    print("\n".join(f"{s:6.1f}s  {c[:100]}" for s, c in sorted(timings, reverse=True)[:10]))
    # what the commands promise
    assert (tmp_path / "runs/demo/report/report.html").exists() and (
        tmp_path / "runs/darcy_fno/report/report.md"
    ).exists()
    assert "model:\n  name: unet" in (tmp_path / "darcy_unet.yaml").read_text()
    assert (tmp_path / "runs/darcy_prior/inverse/posterior.npz").exists() and (
        tmp_path / "data/darcy_ranks.h5"
    ).exists()


def test_readme_blocks_are_found_and_skips_are_explicit():
    blocks = readme_blocks((ROOT / "README.md").read_text())
    languages = [language for language, _, _ in blocks]
    assert languages.count("python") >= 2 and languages.count("bash") >= 8
    skipped = [s for _, _, skip in blocks for s in skip]
    assert sorted(skipped) == sorted(["make test", "pip install", "--nnodes"]), (
        "every skip has its reason in the README"
    )
