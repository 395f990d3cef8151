"""Bad input to every command ends in one line ``error: ...``, exit status 2, no traceback and no new file.

The suite is a table: a row is a command line and a fragment of the message it must print.
Placeholders in ``{braces}`` name files of the shared workspace (:func:`workspace`). A new
command or a new way to go wrong is one more row. Rows run in-process through
:func:`oplearn.cli.main` in a fresh working folder; the workspace and that folder are
compared file by file before and after (only a resumable ``.partial`` may appear). A few
cases at the end run the installed entry point in a subprocess (exit status, pipes).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml
from helpers import SRC, tiny_config

from oplearn.cli import main


@dataclass(frozen=True)
class Case:
    """``oplearn ARGV`` must fail with a message containing ``message``."""

    argv: str
    message: str


GEN = "generate darcy --n 2 --resolution 8"
SOLVE = "solve wos --domain ball:0,0,1 --boundary x"
INV = "inverse {prior} --observe u --samples 2 --steps 2"
KS_COARSE = "--set train.task=coarse_graining --set data.path={ks} --set data.n_train=2 --set data.n_val=1"

CASES = [
    # generate
    Case("generate", "the following arguments are required: PDE, --n, --resolution, --out"),
    Case(f"{GEN}", "the following arguments are required: --out"),
    Case("generate darcy --n 0 --resolution 8 --out x.h5", "--n must be positive"),
    Case("generate darcy --n -3 --resolution 8 --out x.h5", "--n must be positive"),
    Case("generate darcy --n abc --resolution 8 --out x.h5", "argument --n: invalid int value: 'abc'"),
    Case("generate darcy --n 2 --resolution 0 --out x.h5", "--resolution 0 does not suit darcy"),
    Case(
        "generate darcy --n 2 --resolution 2 --out x.h5",
        "darcy at --resolution 2: grid shape (2, 2) has no interior nodes",
    ),
    Case("generate darcy --n 2 --resolution -4 --out x.h5", "--resolution -4 does not suit darcy"),
    Case("generate burgers --n 2 --resolution 0 --out x.h5", "--resolution 0 does not suit burgers"),
    Case("generate heat --n 2 --resolution 8 --out x.h5", "unknown PDE 'heat'; choose one of: advection, burgers"),
    Case(
        f"{GEN} --out x.h5 --param bogus=1",
        "PDE 'darcy' has no parameter 'bogus'; its parameters (with defaults): alpha=2.0",
    ),
    Case(f"{GEN} --out x.h5 --param hihg=1", "has no parameter 'hihg' (did you mean 'high'?)"),
    Case(f"{GEN} --out x.h5 --param high=abc", "parameter 'high' must be float (default 12.0), got 'abc'"),
    Case(f"{GEN} --out x.h5 --param modes=2.5", "parameter 'modes' must be int (default 64), got 2.5"),
    Case(f"{GEN} --out x.h5 --param high", "override 'high' is not of the form key=value"),
    Case(f"{GEN} --out x.h5 --param high=-1", "bad parameters for PDE 'darcy': permeabilities must be positive"),
    Case(
        "generate navier_stokes --n 2 --resolution 8 --out x.h5 --param n_times=0",
        "bad parameters for PDE 'navier_stokes'",
    ),
    Case(
        "generate shallow_water --n 2 --resolution 8 --out x.h5 --param case=williamson9",
        "bad parameters for PDE 'shallow_water': case must be 'random' or one of williamson2, williamson5, williamson6",
    ),
    Case(
        "generate shallow_water --n 2 --resolution 8 --out x.h5 --param latitudes=gaussian",
        "latitudes must be one of equiangular, legendre-gauss, got 'gaussian'",
    ),
    Case(
        "generate shallow_water --n 2 --resolution 1 --out x.h5",
        "--resolution 1 does not suit shallow_water: an equiangular grid needs at least 2 latitudes",
    ),
    Case(
        "generate shallow_water --n 2 --resolution 8 --out x.h5 --param degrees=40",
        "shallow_water at --resolution 8: 40 degrees do not fit 16 longitudes",
    ),
    Case(
        "generate shallow_water --n 2 --resolution 8 --out x.h5 --refine 2",
        "PDE 'shallow_water' has no parameter 'refine'",
    ),
    Case(
        "generate kuramoto_sivashinsky --n 2 --resolution 16 --out x.h5 --param length=-1",
        "length must be positive and finite",
    ),
    Case("generate kolmogorov_flow --n 2 --resolution 8 --out x.h5 --param smagorinsky=-1", "smagorinsky must be >= 0"),
    Case(
        "generate kolmogorov_flow --n 2 --resolution 8 --out x.h5 --param wavenumber=0",
        "wavenumber must be a positive integer",
    ),
    Case(f"{GEN} --out {{folder}}", "is a folder; give a file name inside it"),
    Case(f"{GEN} --out {{folder}} --overwrite", "is a folder; give a file name inside it"),
    Case(f"{GEN} --out {{text}}/x.h5", "is a file, not a folder"),
    Case(f"{GEN} --out {{train}}", "already exists; choose another --out or pass --overwrite"),
    Case(f"{GEN} --out /proc/oplearn/x.h5", "/proc/oplearn"),
    Case(f"{GEN} --out x.h5 --shard 5/4", "shard 5/4 is out of range"),
    Case(f"{GEN} --out x.h5 --shard half", "--shard must look like I/N"),
    Case(f"{GEN} --out x.h5 --workers 0", "--workers must be at least 1"),
    Case(f"{GEN} --out x.h5 --workers 2 --shard 0/2", "--workers and --shard"),
    Case(f"{GEN} --out x.h5 --chunk-size 0", "argument --chunk-size: must be a positive integer, got 0"),
    Case(f"{GEN} --out x.h5 --refine 0", "argument --refine: must be a positive integer, got 0"),
    Case(f"{GEN} --out x.h5 --colour red", "unrecognized arguments: --colour red"),
    # info
    Case("info", "the following arguments are required: FILE"),
    Case("info missing.h5", "data file 'missing.h5' does not exist"),
    Case("info {folder}", "is a folder; give a dataset file"),
    Case("info {text}", "is neither an HDF5 file nor a .pt file"),
    Case("info {truncated}", "is not a readable HDF5 file (truncated or corrupt?)"),
    Case("info {unknown}", "has an unknown HDF5 layout (top-level keys: foo)"),
    # convert
    Case("convert", "the following arguments are required: IN, OUT.h5"),
    Case("convert missing.pt out.h5", "data file 'missing.pt' does not exist"),
    Case("convert {folder} out.h5", "is a folder; give a dataset file"),
    Case("convert {nopt} {folder}", "is a folder; give a file name inside it"),
    Case("convert {nopt} {text}/out.h5", "is a file, not a folder"),
    Case("convert {nopt} {train}", "already exists; choose another output or pass --overwrite"),
    Case("convert {nopt} {nopt} --overwrite", "is also an input"),
    Case("convert {nopt} out.h5 --format netcdf", "argument --format: invalid choice: 'netcdf'"),
    Case("convert {text} out.h5", "is neither an HDF5 file nor a .pt file"),
    Case("convert {keys} out.h5", "is not a NeuralOperator dataset: expected a dict with tensors 'x' and 'y'"),
    Case("convert {evil} out.h5", "weights_only=True refuses pickled objects"),
    Case("convert {unknown} out.h5", "has an unknown HDF5 layout"),
    Case("convert {train} out.h5", "is already an oplearn dataset; nothing to convert"),
    Case("convert {nopt} out.h5 --limit 0", "argument --limit: must be a positive integer, got 0"),
    Case("convert {nopt} out.h5 --limit 500", "asked for 500 samples but the file holds 6"),
    Case("convert {well} out.h5 --periodic", "the-well files record their boundary conditions"),
    Case("convert {plain} out.h5 --inputs nosuch", "has no array 'nosuch'"),
    Case("convert {nopt} out.h5 --inputs a", "name their own arrays"),
    Case("convert {nopt} out.h5 --periodic --bounded", "argument --bounded: not allowed with argument --periodic"),
    # train
    Case("train", "the following arguments are required: CONFIG, --out"),
    Case("train missing.yaml --out r", "config file 'missing.yaml' does not exist; shipped configs: darcy_diffusion"),
    Case("train {folder} --out r", "is a folder; give a YAML file"),
    Case("train {badyaml} --out r", "is not valid YAML"),
    Case("train {listyaml} --out r", "must be a mapping of sections"),
    Case("train {config} --out r --set train.epoch=2", "unknown key 'train.epoch' (did you mean 'train.epochs'?)"),
    Case("train {config} --out r --set train.epochs=two", "key 'train.epochs': Input should be a valid integer"),
    Case("train {config} --out r --set train.epochs=0", "key 'train.epochs': Input should be greater than 0"),
    Case("train {config} --out r --set nokey", "override 'nokey' is not of the form key=value"),
    Case("train {config} --out r --set model.name=bogus", "unknown choice 'bogus'; expected one of: 'fno'"),
    Case("train {config} --out r --set model.levels=2", "unknown key 'model.levels'; model 'fno' takes: modes, width"),
    Case(
        "train {config} --out r --set model.name=unet --set model.modes=3",
        "unknown key 'model.modes'; model 'unet' takes: width, levels",
    ),
    Case(
        "train {config} --out r --set model=unet",
        "'model' is a section, not a value (got 'unet'); set its keys as model.KEY=VALUE (--set model.name=unet",
    ),
    Case(
        "train {config} --out r --set model.modes=[4,0]",
        "modes must be a positive integer or a list of 1 to 3 positive integers",
    ),
    Case("train {config} --out r --set model.modes=[4,4,4]", "model.modes [4, 4, 4] has 3 entries for 2D data"),
    Case("train {config} --out r --set model.modes=20", "the model does not fit the 16x16 training grid"),
    Case(
        "train {config} --out r --set model.name=sfno --set model.latitudes=gauss",
        "key 'model.latitudes': Input should be 'equiangular' or 'legendre-gauss'",
    ),
    Case(
        "train {config} --out r --set model.name=sfno --set model.modes=20",
        "the model does not fit the 16x16 training grid: a 16 x 16 equiangular grid resolves degrees l < 8",
    ),
    Case("train {config} --out r --set data.path=nowhere.h5", "data file 'nowhere.h5' does not exist"),
    Case("train {config} --out r --set data.path={folder}", "is a folder; give a dataset file"),
    Case("train {config} --out r --set data.path={text}", "is neither an HDF5 file nor a .pt file"),
    Case("train {config} --out r --set data.n_train=1000", "data.n_train=1000 + data.n_val=8 exceeds the 24 samples"),
    Case("train {config} --out r --set train.task=bogus", "unknown task 'bogus'; choose one of map, one_step"),
    Case("train {config} --out r --set train.task=one_step", "train.task=one_step"),
    Case("train {config} --out r --set train.device=tpu", "'tpu' is not a device"),
    Case(
        "train sample_gmm40_scld --out r --set sampling.method_params.replay_capacity=64",
        "the replay buffer trains the off-policy log_variance loss; set sampling.loss: log_variance",
    ),
    Case(
        "train sample_gmm40_scld --out r --set sampling.method_params.mcmc=nuts", "mcmc kernel must be one of mala, hmc"
    ),
    Case("train {config} --out r --set train.precision=fp16 --set train.device=cpu", "fp16 needs a CUDA device"),
    Case("train {config} --out r --set train.lr=-1", "key 'train.lr': Input should be greater than 0"),
    Case("train {config} --out r --set data.batch_size=0", "key 'data.batch_size': Input should be greater than 0"),
    Case("train {config} --out r --set data.test.3.path=x.h5", "'3' is not an index of data.test, an empty list"),
    Case("train {config} --out r --set data.lazy=true --set data.path={nopt}", "data.lazy reads oplearn files"),
    Case("train {config} --out {text}", "is a file; give a folder"),
    Case("train {config} --out {text}/run", "is a file, not a folder"),
    Case("train {config} --out r --resume", "nothing to resume in 'r'"),
    Case("train {config} --out {run}", "already holds a run; pass --resume to continue it"),
    Case(
        "train {config} --out {run} --resume --set train.lr=0.1",
        "the config differs from the run's saved config in train.lr",
    ),
    Case(
        "train {config} --out {run} --resume --set train.epochs=1",
        "cannot resume: the run has trained 2 epochs already",
    ),
    Case("train {missing_train} --out r", "absent.h5' does not exist"),
    Case(
        "train {config} --out r --set diffusion.fields=joint", "the diffusion section configures train.task=diffusion"
    ),
    # train.task=kolmogorov
    Case(
        "train kolmogorov_heat_paraboloid --out r --set kolmogorov.problem=bogus",
        "kolmogorov.problem 'bogus' is unknown; choose one of black_scholes",
    ),
    Case(
        "train kolmogorov_heat_paraboloid --out r --set kolmogorov.problem_params.dimm=3",
        "unknown parameter(s) dimm for problem 'heat_paraboloid'; allowed: dim",
    ),
    Case(
        "train kolmogorov_heat_paraboloid --out r --set kolmogorov.problem_params.dim=0",
        "'heat_paraboloid': dim must be >= 1, got 0",
    ),
    Case(
        "train kolmogorov_heat_paraboloid --out r --set kolmogorov.problem_params.dim=x",
        "parameter 'dim' must be int (default 10), got 'x'",
    ),
    Case(
        "train kolmogorov_heat_paraboloid --out r --set kolmogorov.loss=ito",
        "key 'kolmogorov.loss': Input should be 'fk', 'bsde', 'detach' or 'bsde_grad'",
    ),
    Case(
        "train kolmogorov_heat_paraboloid --out r --set kolmogorov.steps=0",
        "key 'kolmogorov.steps': Input should be greater than 0",
    ),
    Case(
        "train kolmogorov_heat_paraboloid --out r --set model.name=fno",
        "model 'fno' (grid model) does not fit train.task=kolmogorov; choose one of: mlp, multilevel_mlp",
    ),
    Case(
        "train kolmogorov_heat_paraboloid --out r --set model.norm=group",
        "key 'model.norm': Input should be 'batchnorm', 'layernorm' or 'none'",
    ),
    Case("train {config} --out r --set kolmogorov.loss=fk", "the kolmogorov section configures train.task=kolmogorov"),
    Case(
        "train {config} --out r --set train.task=refiner --set train.pushforward=1",
        "train.task=refiner trains single steps",
    ),
    Case("train {config} --out r --set train.task=coarse_graining --set train.history=2", "set train.history=1"),
    Case("train {config} --out r --set refiner.steps=2", "the refiner section configures train.task=refiner"),
    Case("train {config} --out r --set train.task=refiner", "train.task=refiner: '"),
    Case("train {config} --out r --set train.task=coarse_graining", "train.task=coarse_graining: '"),
    Case(
        "train {config} --out r --set train.task=refiner --set refiner.steps=0",
        "key 'refiner.steps': Input should be greater than 0",
    ),
    Case("train {config} --out r --set train.mode_projection=true", "predicted frames of time-stepping tasks"),
    Case("train {config} --out r --set train.ema_decay=1", "key 'train.ema_decay': Input should be less than 1"),
    Case(
        "train {config} --out r --set train.task=coarse_graining --set coarse_graining.pde_weight=-1",
        "coarse_graining.pde_weight",
    ),
    Case(f"train {{config}} --out r {KS_COARSE} --set model.name=unet", "fine grid: choose a resolution-free model"),
    Case(
        f"train {{config}} --out r {KS_COARSE} --set coarse_graining.init_from=norun",
        "coarse_graining.init_from: run directory 'norun' does not exist",
    ),
    Case(
        f"train {{config}} --out r {KS_COARSE} --set coarse_graining.init_from={{run}}",
        "is not a coarse_graining run",  # a darcy map run
    ),
    # evaluate
    Case("evaluate", "the following arguments are required: RUN_DIR"),
    Case("evaluate norun --data {test24}", "run directory 'norun' does not exist"),
    Case("evaluate {text} --data {test24}", "is a file, not a run directory"),
    Case("evaluate {folder} --data {test24}", "holds no checkpoint"),
    Case("evaluate {run} --data missing.h5", "data file 'missing.h5' does not exist"),
    Case("evaluate {run} --data {folder}", "is a folder; give a dataset file"),
    Case("evaluate {run} --data {truncated}", "is not a readable HDF5 file"),
    Case(
        "evaluate {run} --data {poisson}",
        "it holds poisson data, the run learned darcy; its input channels are f, the run's a; pass --force",
    ),
    Case("evaluate {run} --data {burgers} --force", "data is 1D but the model was trained on 2D fields"),
    Case("evaluate {run} --data {coarse}", "is too small for modes (4, 4)"),
    Case("evaluate {run}", "no test data for"),
    Case("evaluate {run} --data {test24} --batch-size 0", "argument --batch-size: must be a positive integer, got 0"),
    Case("evaluate {run} --data {test24} --batch-size many", "argument --batch-size: 'many' is not an integer"),
    Case("evaluate {run} --data {test24} --samples 0", "argument --samples: must be a positive integer, got 0"),
    Case("evaluate {run} --data", "argument --data: expected at least one argument"),
    # report
    Case("report nosuchrun", "run directory 'nosuchrun' does not exist"),
    Case("report {text}", "is a file, not a run directory"),
    Case("report {folder}", "holds no checkpoint"),
    Case("report {run} --data missing.h5", "data file 'missing.h5' does not exist"),
    Case("report {run} --data {poisson}", "pass --force"),
    Case("report {run} --out {text}", "is a file; give a folder"),
    Case("report {run} --out {text}/report", "is a file, not a folder"),
    # rollout
    Case("rollout", "the following arguments are required: RUN_DIR, --steps, --out"),
    Case("rollout nosuchrun --steps 5 --out r.h5", "run directory 'nosuchrun' does not exist"),
    Case("rollout {run} --steps 0 --out r.h5", "argument --steps: must be a positive integer, got 0"),
    Case("rollout {run} --steps 5 --out {folder}", "is a folder; give a file name inside it"),
    Case("rollout {run} --steps 5 --out {text}/r.h5", "is a file, not a folder"),
    Case(
        "rollout {run} --steps 5 --out r.h5",
        "rollout needs a run of a one-step task (one_step, refiner, coarse_graining)",
    ),
    Case("rollout {run} --steps 5 --out r.h5 --samples 0", "argument --samples: must be a positive integer, got 0"),
    # sample
    Case("sample nosuchrun", "run directory 'nosuchrun' does not exist"),
    Case("sample {run}", "is not a diffusion prior"),
    Case("sample {prior} --n 0", "argument --n: must be a positive integer, got 0"),
    Case("sample {prior} --steps 0", "argument --steps: must be a positive integer, got 0"),
    Case("sample {prior} --sampler magic", "argument --sampler: invalid choice: 'magic'"),
    Case("sample {prior} --resolution 0", "argument --resolution: must be a positive integer, got 0"),
    Case("sample {prior} --out {folder}", "is a folder; give a file name inside it"),
    Case("sample {prior} --out {text}/s.h5", "is a file, not a folder"),
    # inverse
    Case("inverse nosuchrun --observe u --data {train}", "run directory 'nosuchrun' does not exist"),
    Case("inverse {prior} --data {train}", "the following arguments are required: --observe"),
    Case(f"{INV.replace('--observe u', '--observe w')} --data {{train}}", "--observe w: the fields are a, u"),
    Case(f"{INV} --samples 1 --data {{train}}", "--samples must be at least 2"),
    Case(f"{INV} --data {{train}} --observations {{obs}}", "give exactly one of --data FILE.h5"),
    Case(f"{INV}", "give exactly one of --data FILE.h5"),
    Case(f"{INV} --observations missing.npz", "cannot read arrays 'index' and 'y'"),
    Case(f"{INV} --observations {{badobs}}", "cannot read arrays 'index' and 'y'"),
    Case(f"{INV} --data {{train}} --index 99", "--index 99 is outside the 24 samples"),
    Case(f"{INV} --data {{train}} --method daps --krylov 2", "--krylov applies to DPS guidance"),
    Case(f"{INV} --data {{train}} --points 0", "the number of observed points must be an integer in [1, 256]"),
    Case(f"{INV} --data {{test24}}", "differs from the prior's"),
    Case(f"{INV} --data {{train}} --method magic", "argument --method: invalid choice: 'magic'"),
    Case(f"{INV} --data {{train}} --points 20 --no-progress --out {{text}}", "notes.txt' is a file; give a folder"),
    Case(f"{INV} --data {{train}} --points 20 --no-progress --out {{text}}/posterior", "is a file, not a folder"),
    # solve
    Case("solve", "the following arguments are required: method"),
    Case("solve wos --boundary x --point 0,0", "the following arguments are required: --domain"),
    Case("solve wos --domain cube:0,1 --boundary x --point 0,0", "--domain term 'cube:0,1'"),
    Case("solve wos --domain 'ball:0,0,1 % ball:1,1,1' --boundary x --point 0,0", "'%' is not one of | & -"),
    Case("solve wos --domain ball:0,0,a --boundary x --point 0,0", "is not a comma-separated list of numbers"),
    Case(f"{SOLVE} --point 0,0 --boundary x+", "--boundary 'x+' is not an arithmetic expression"),
    Case(f"{SOLVE} --point 0,0 --boundary w", "unknown name 'w'"),
    Case(f"{SOLVE} --point 0,0 --boundary __import__('os')", "is not allowed"),
    Case(f"{SOLVE} --point 2,0", "lies outside the domain"),
    Case(f"{SOLVE} --point 0,0,0", "every point needs 2 coordinates"),
    Case(f"{SOLVE} --point 0,0 --walks 1", "--walks must be >= 2"),
    Case(f"{SOLVE} --points missing.npy", "points file 'missing.npy' does not exist"),
    Case(f"{SOLVE} --point 0,0 --out {{folder}}", "is a folder; give a file name inside it"),
    Case(f"{SOLVE} --point 0,0 --out {{text}}/u.csv", "is a file, not a folder"),
    Case(f"{SOLVE}", "no points: give --point"),
    # demo
    Case("demo --out {text}", "is a file; give a folder"),
    Case("demo --out {text}/demo", "is a file, not a folder"),
    Case("demo --set train.epochs=zero", "key 'train.epochs'"),
    Case("demo --set bogus.key=1", "unknown key 'bogus'"),
    # list, config, the command itself
    Case("list bogus", "argument what: invalid choice: 'bogus'"),
    Case("config nosuch", "config file 'nosuch' does not exist; shipped configs"),
    Case("config {folder}", "is a folder; give a YAML file"),
    Case("config darcy_fno --set model.name=bogus", "unknown choice 'bogus'"),
    Case("bogus", "argument COMMAND: invalid choice: 'bogus'"),
    Case("", "the following arguments are required: COMMAND"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict[str, str]:
    """Files the cases refer to: datasets, broken files, a config, a trained run and a diffusion prior."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: a second thread only waits
    try:
        return _workspace(tmp_path_factory.mktemp("bad_input"))
    finally:
        torch.set_num_threads(threads)


def _workspace(root: Path) -> dict[str, str]:
    from oplearn.config import load_config
    from oplearn.data.generate import generate_dataset, make_pde
    from oplearn.training.run import train

    files = {"folder": root / "folder", "text": root / "notes.txt"}
    files["folder"].mkdir()
    files["text"].write_text("not data\n")
    for name, pde, n, resolution, params in (
        ("train", "darcy", 24, 16, {}),
        ("test24", "darcy", 4, 24, {}),
        ("poisson", "poisson", 4, 16, {}),
        ("coarse", "darcy", 2, 6, {}),
        ("burgers", "burgers", 2, 16, {}),
        ("ks", "kuramoto_sivashinsky", 3, 16, {"t_final": 0.5, "n_times": 2, "burn_in": 0.0}),
    ):
        files[name] = generate_dataset(make_pde(pde, params), n, resolution, root / f"{name}.h5", progress=False)
    files["truncated"] = root / "truncated.h5"
    files["truncated"].write_bytes(files["train"].read_bytes()[:2000])
    with h5py.File(root / "unknown.h5", "w") as f:
        f["foo"] = np.zeros(3)
    files["unknown"] = root / "unknown.h5"
    with h5py.File(root / "well.h5", "w") as f:
        f.create_group("t0_fields")
        f.create_group("dimensions")
    files["well"] = root / "well.h5"
    with h5py.File(root / "plain.h5", "w") as f:
        f["inputs"], f["outputs"] = np.zeros((2, 1, 8, 8)), np.zeros((2, 1, 8, 8))
    files["plain"] = root / "plain.h5"
    torch.save({"x": torch.rand(6, 16, 16), "y": torch.rand(6, 16, 16)}, root / "darcy_no.pt")
    files["nopt"] = root / "darcy_no.pt"
    torch.save({"a": torch.zeros(2)}, root / "keys.pt")
    files["keys"] = root / "keys.pt"
    torch.save({"x": Case("x", "y")}, root / "evil.pt")  # a pickled object: refused by weights_only
    files["evil"] = root / "evil.pt"
    files["badyaml"] = root / "bad.yaml"
    files["badyaml"].write_text("data: [unclosed\n")
    files["listyaml"] = root / "list.yaml"
    files["listyaml"].write_text("- 1\n- 2\n")
    np.savez(root / "obs.npz", index=np.array([3, 1]), y=np.array([0.0, 1.0]))
    files["obs"] = root / "obs.npz"
    np.savez(root / "badobs.npz", where=np.array([3, 1]))
    files["badobs"] = root / "badobs.npz"

    files["config"] = tiny_config(root / "config.yaml", files["train"], epochs=2)
    raw = yaml.safe_load(files["config"].read_text())
    raw["data"].update(
        path=str(root / "absent.h5"),
        test=[{"path": str(root / "made.h5"), "generate": {"pde": "darcy", "n": 2, "resolution": 8}}],
    )
    files["missing_train"] = root / "missing_train.yaml"
    files["missing_train"].write_text(yaml.safe_dump(raw))
    train(load_config(files["config"]), root / "run", progress=False)
    files["run"] = root / "run"
    prior = {
        "seed": 0,
        "data": {"path": str(files["train"]), "n_train": 16, "n_val": 8, "batch_size": 8},
        "train": {"task": "diffusion", "epochs": 1, "threads": 1},
        "diffusion": {
            "fields": "joint",
            "net": {"modes": 4, "width": 8, "scales": [0.5], "embedding": 8, "projection_channels": 8},
        },
    }
    (root / "prior.yaml").write_text(yaml.safe_dump(prior))
    train(load_config(root / "prior.yaml"), root / "prior", progress=False)
    files["prior"] = root / "prior"
    return {name: str(path) for name, path in files.items()}


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder``: ``(size, modification time)`` of files, ``(0, 0)`` of folders."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (0, 0)
        for p in sorted(folder.rglob("*"))
    }


def _argv(case: Case, workspace: dict[str, str]) -> list[str]:
    return [part.format(**workspace) for part in shlex.split(case.argv)]


@pytest.mark.parametrize("case", CASES, ids=[c.argv or "(nothing)" for c in CASES])
def test_bad_input_is_one_line_and_leaves_nothing(case, workspace, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    root = Path(workspace["train"]).parent
    before = _files(root), _files(tmp_path)
    status = main(_argv(case, workspace))
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert status == 2, f"exit {status}: {err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    assert case.message in lines[0], lines[0]
    after = _files(root), _files(tmp_path)
    for old, new in zip(before, after):
        added = set(new) - set(old)
        assert all(name.endswith(".partial") for name in added), f"new files: {sorted(added)}"
        assert all(new[name] == old[name] for name in old if not name.endswith(".partial")), "files changed"
        assert set(old) <= set(new), f"files removed: {sorted(set(old) - set(new))}"


def test_the_suite_covers_every_command_with_at_least_100_cases():
    from oplearn.cli import build_parser

    commands = {action for action in build_parser()._subparsers._group_actions[0].choices}
    covered = {case.argv.split()[0] for case in CASES if case.argv}
    assert len(CASES) >= 100
    assert commands <= covered, f"commands without a bad-input case: {sorted(commands - covered)}"


def _entry(*args: str, shell: str | None = None, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "oplearn.cli", *args]
    if shell is not None:
        command = ["bash", "-c", shell.replace("oplearn", f"{sys.executable} -m oplearn.cli")]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_entry_point_exit_status_and_one_line(workspace, tmp_path):
    proc = _entry("generate", "darcy", "--n", "2", "--resolution", "8", "--out", workspace["folder"], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")
    assert not list(tmp_path.iterdir())


def test_a_closed_pipe_ends_quietly(workspace, tmp_path):
    """``oplearn info F | head -1`` and ``oplearn list | head -1``: the reader leaves, oplearn stops without a word."""
    for shell in (f"oplearn info {workspace['train']} | head -1", "oplearn list | head -1"):
        proc = _entry(shell=f"set -o pipefail; {shell}", cwd=tmp_path)
        assert proc.stdout.count("\n") == 1 and proc.stderr == "", (shell, proc.stderr)
        assert proc.returncode == 0, shell
