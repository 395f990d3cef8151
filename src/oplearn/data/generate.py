"""Chunked, atomic, resumable dataset generation for any :class:`~oplearn.pdes.PDE`.

Samples are produced in chunks of ``chunk_size``; chunk ``c`` draws its inputs from the
stream ``derive_seed(seed, c)``, so the file's content depends only on the recipe
(PDE parameters, ``n``, resolution, seed, chunk size), not on interruptions. Work goes
into ``<out>.partial``; after every chunk the file is flushed and ``n_complete`` advanced,
so a killed job resumes at the first unfinished chunk. The final name appears only
when all samples are written (``os.replace``).

Parallel generation (shards)
----------------------------
``generate_dataset(..., shard=(i, N))`` computes only the chunks ``c`` with ``c % N == i``
(with the same chunk seeds, so the shards together hold exactly the samples of the
unsharded file) into ``<out>.shards/shard-0000i-of-0000N.h5``. Each shard file is itself a
complete oplearn dataset of its samples (``n`` = its sample count), written atomically and
resumably like an unsharded file, with root attributes ``n_total``, ``shard_index``,
``shard_count`` and a ``sample_index`` dataset of the global indices it holds.

When all ``N`` shards are complete, ``<out>`` is *assembled*: a small HDF5 file whose
``inputs``/``outputs`` are virtual datasets (h5py VDS) mapping every shard's samples to their
global positions, with the same root attributes as an unsharded file (``n_complete = n``)
plus ``shard_count`` and ``shard_files`` (paths relative to ``<out>``'s folder, so the folder
can be moved as a whole). Readers (:func:`~oplearn.data.files.load_fields`,
:class:`~oplearn.data.dataset.FieldDataset`, ``oplearn info``) see one ordinary dataset.
The shard that finishes last assembles (two finishing at once both write the same file
through a private temporary name and ``os.replace``, which is harmless);
:func:`assemble_shards` does it explicitly, e.g. after shards ran on different machines.

``shard="auto"`` takes ``(RANK, WORLD_SIZE)`` from the environment that ``torchrun`` sets
(no process group is needed); :func:`generate_parallel` runs ``K`` local worker processes
(``oplearn generate ... --workers K``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import h5py
import numpy as np
import torch
from pydantic import ConfigDict, ValidationError, create_model

from oplearn.data.files import FORMAT, FORMAT_VERSION, decode_attrs, read_meta
from oplearn.data.mesh_files import MeshLayout
from oplearn.errors import DataError
from oplearn.geometry.mesh import MeshSample
from oplearn.paths import output_file
from oplearn.pdes import PDE, PDES
from oplearn.progress import advance_to, reporting
from oplearn.progress import progress as progress_bar
from oplearn.provenance import timestamp, versions
from oplearn.seeding import generator

Shard = tuple[int, int]
_SHARD_NAME = re.compile(r"shard-(\d+)-of-(\d+)\.h5")
# root attributes shared by all shards of one dataset and copied into the assembled file
_SHARED = ("format", "format_version", "layout", "pde", "pde_params", "grid", "mesh", "seed", "chunk_size")
# root attributes holding JSON
_JSON_KEYS = ("pde_params", "grid", "mesh")


#: Entries of ``PDE.params()`` that describe rather than configure (the solver used, the
#: full law of an initial-condition sampler).
DESCRIPTIVE_PARAMS = frozenset({"solver", "initial"})


def make_pde(name: str, params: dict | None = None) -> PDE:
    """Construct a registered PDE by name with keyword parameters.

    Unknown parameters and values of the wrong type are refused in one line that lists the
    PDE's parameters (:meth:`PDE.parameters`). ``params`` may be a dataset's recorded
    ``pde_params``: its descriptive entries (:data:`DESCRIPTIVE_PARAMS`) are not constructor
    arguments and are skipped.
    """
    if name not in PDES:
        raise DataError(f"unknown PDE '{name}'; choose one of: {', '.join(sorted(PDES))} (oplearn list pdes)")
    cls = PDES[name]
    kwargs = {k: v for k, v in (params or {}).items() if k not in DESCRIPTIVE_PARAMS}
    kwargs = _checked_parameters(name, cls.parameters(), kwargs)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise DataError(f"bad parameters for PDE '{name}': {err}") from None


def _checked_parameters(name: str, parameters: dict, values: dict) -> dict:
    """``values`` validated (and converted: ``"12"`` -> ``12.0``) against the constructor's
    ``parameters``; one-line DataError naming the parameter otherwise."""
    listing = ", ".join(f"{k}={d}" for k, (_, d) in parameters.items())
    unknown = [k for k in values if k not in parameters]
    if unknown:
        hint = difflib.get_close_matches(unknown[0], parameters, n=1)
        maybe = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise DataError(
            f"PDE '{name}' has no parameter '{unknown[0]}'{maybe}; its parameters (with defaults): {listing}"
        )
    fields = {k: (parameters[k][0], ...) for k in values}
    model = create_model(f"{name}_parameters", __config__=ConfigDict(extra="forbid"), **fields)
    try:
        return dict(model.model_validate(values))
    except ValidationError as err:
        first = err.errors()[0]
        key = str(first["loc"][0])
        kind, default = parameters[key]
        kind = getattr(kind, "__name__", str(kind).replace("typing.", ""))
        raise DataError(
            f"PDE '{name}': parameter '{key}' must be {kind} (default {default}), got {values[key]!r}"
        ) from None


def _recipe(pde: PDE, n: int, resolution: int, seed: int, chunk_size: int) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "pde": pde.name,
        "pde_params": json.dumps(pde.params(), sort_keys=True),
        **_layout(pde).recipe(pde, resolution),
        "seed": int(seed),
        "n": int(n),
        "chunk_size": int(chunk_size),
    }


class _GridLayout:
    """Samples of equal shape: ``inputs (n, c_in, *grid.shape)`` and ``outputs`` arrays
    (:mod:`oplearn.data.files`), one HDF5 chunk per sample."""

    @staticmethod
    def recipe(pde: PDE, resolution: int) -> dict:
        return {"grid": json.dumps(pde.grid(resolution).to_dict())}

    @staticmethod
    def create_for(f: h5py.File, pde: PDE, n: int, resolution: int) -> None:
        grid = pde.grid(resolution)
        for key, names, sample_shape in (
            ("inputs", pde.input_names, (len(pde.input_names), *grid.shape)),
            ("outputs", pde.output_names, pde.output_shape(grid)),
        ):
            chunks = (1, *sample_shape) if n > 0 else None  # an empty shard (more shards than chunks)
            dset = f.create_dataset(key, shape=(n, *sample_shape), dtype="float32", chunks=chunks)
            dset.attrs["names"] = json.dumps(list(names))
        if pde.times is not None:
            f["time"] = np.asarray(pde.times, dtype=np.float64)

    @staticmethod
    def resume(f: h5py.File, start: int) -> None:
        """Nothing to do: rows past ``n_complete`` are simply written again."""

    @staticmethod
    def write(f: h5py.File, start: int, generated: tuple[torch.Tensor, torch.Tensor], what: str) -> None:
        inputs, outputs = generated
        if not (torch.isfinite(inputs).all() and torch.isfinite(outputs).all()):
            raise DataError(f"{what} produced non-finite values; check the PDE parameters")
        f["inputs"][start : start + len(inputs)] = inputs.numpy().astype(np.float32)
        f["outputs"][start : start + len(inputs)] = outputs.numpy().astype(np.float32)

    @staticmethod
    def assemble(
        f: h5py.File, shards: list[tuple[str, Path]], chunks: list[list[tuple[int, int, int]]], n: int, chunk_size: int
    ) -> None:
        count = len(shards)
        with h5py.File(shards[0][1], "r") as src:
            for key in ("inputs", "outputs"):
                sample_shape = src[key].shape[1:]
                layout = h5py.VirtualLayout(shape=(n, *sample_shape), dtype="float32")
                for i, (name, _) in enumerate(shards):
                    if not chunks[i]:
                        continue
                    rows = sum(hi - lo for _, lo, hi in chunks[i])
                    source = h5py.VirtualSource(name, key, shape=(rows, *sample_shape), dtype="float32")
                    full = sum(1 for _, lo, hi in chunks[i] if hi - lo == chunk_size)
                    if full:
                        layout[
                            h5py.MultiBlockSlice(
                                start=i * chunk_size, stride=count * chunk_size, count=full, block=chunk_size
                            )
                        ] = source[: full * chunk_size]
                    if full < len(chunks[i]):  # the short last chunk of the dataset
                        _, lo, hi = chunks[i][-1]
                        layout[lo:hi] = source[full * chunk_size : full * chunk_size + hi - lo]
                # a missing shard file reads as NaN, which every reader rejects
                dset = f.create_virtual_dataset(key, layout, fillvalue=np.nan)
                dset.attrs["names"] = src[key].attrs["names"]
            if "time" in src:
                f["time"] = src["time"][:]


def _layout(pde: PDE | None = None, meta: dict | None = None) -> type[_GridLayout] | type[MeshLayout]:
    """How samples of ``pde`` (or of a file with header ``meta``) are stored."""
    kind = getattr(pde, "layout", "grid") if meta is None else meta.get("layout", "grid")
    return MeshLayout if kind == "mesh" else _GridLayout


def parse_shard(text: str) -> Shard | str:
    """``"I/N"`` -> ``(I, N)``; ``"auto"`` stays ``"auto"``. Raises a one-line DataError."""
    text = str(text).strip()
    if text == "auto":
        return "auto"
    match = re.fullmatch(r"(\d+)\s*/\s*(\d+)", text)
    if not match:
        raise DataError(f"--shard must look like I/N (e.g. 2/4, counting from 0) or 'auto', got '{text}'")
    return _check_shard((int(match[1]), int(match[2])))


def _check_shard(shard: object) -> Shard:
    try:
        index, count = (int(v) for v in shard)
    except (TypeError, ValueError):
        raise DataError(f"shard must be (index, count), 'auto' or None, got {shard!r}") from None
    if count < 1 or not 0 <= index < count:
        raise DataError(f"shard {index}/{count} is out of range: the index counts from 0 to count - 1")
    return index, count


def shard_from_env(environ: Mapping[str, str] | None = None) -> Shard | None:
    """``(RANK, WORLD_SIZE)`` as set by ``torchrun``, or ``None`` outside a multi-process launch."""
    environ = os.environ if environ is None else environ
    if "RANK" not in environ or "WORLD_SIZE" not in environ:
        return None
    try:
        rank, world = int(environ["RANK"]), int(environ["WORLD_SIZE"])
    except ValueError:
        raise DataError(f"RANK={environ['RANK']!r} and WORLD_SIZE={environ['WORLD_SIZE']!r} must be integers") from None
    return None if world <= 1 else _check_shard((rank, world))


def _resolve_shard(shard: Shard | str | None) -> Shard | None:
    if shard is None:
        return None
    if isinstance(shard, str):
        shard = parse_shard(shard)
        if shard == "auto":
            return shard_from_env()
    shard = _check_shard(shard)
    return None if shard[1] == 1 else shard


def shard_dir(out: str | Path) -> Path:
    """The folder ``<out>.shards`` holding the shard files of ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".shards")


def shard_path(out: str | Path, index: int, count: int) -> Path:
    """Where shard ``index`` of ``count`` of ``out`` is written."""
    return shard_dir(out) / f"shard-{index:05d}-of-{count:05d}.h5"


def _shard_chunks(n: int, chunk_size: int, index: int, count: int) -> list[tuple[int, int, int]]:
    """``(chunk, lo, hi)`` of the global chunks that shard ``index`` of ``count`` computes."""
    n_chunks = -(-n // chunk_size)
    return [(c, c * chunk_size, min(n, (c + 1) * chunk_size)) for c in range(index, n_chunks, count)]


def generate_dataset(
    pde: PDE,
    n: int,
    resolution: int,
    out: str | Path,
    seed: int = 0,
    chunk_size: int = 32,
    overwrite: bool = False,
    progress: bool = True,
    shard: Shard | str | None = None,
    assemble: bool = True,
) -> Path:
    """Generate ``n`` samples of ``pde`` at ``resolution`` into the HDF5 file ``out``.

    Resumes ``<out>.partial`` if it exists with the same recipe. Returns the final path.

    With ``shard=(i, N)`` (or ``"auto"``: ``RANK``/``WORLD_SIZE`` from ``torchrun``) only the
    chunks ``c % N == i`` are computed, into :func:`shard_path` ``(out, i, N)`` (resumed from
    its ``.partial``; skipped if already complete with the same recipe). If all ``N`` shards
    are then complete and ``assemble`` is true, ``out`` is assembled and returned; otherwise
    the shard file is returned. ``N == 1`` is the same as no sharding.
    """
    out = _check_request(pde, n, resolution, out, chunk_size, overwrite)
    shard = _resolve_shard(shard)
    out.parent.mkdir(parents=True, exist_ok=True)
    recipe = _recipe(pde, n, resolution, seed, chunk_size)
    if shard is None:
        chunks = _shard_chunks(n, chunk_size, 0, 1)
        _write(pde, resolution, out, recipe, chunks, seed, progress, f"{pde.name} {resolution}")
        return out

    index, count = shard
    chunks = _shard_chunks(n, chunk_size, index, count)
    recipe = {
        **recipe,
        "n": sum(hi - lo for _, lo, hi in chunks),
        "n_total": int(n),
        "shard_index": index,
        "shard_count": count,
    }
    target = shard_path(out, index, count)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        differing = _differing(target, recipe)
        if differing and not overwrite:
            raise DataError(
                f"shard file '{target}' exists with different settings ({', '.join(differing)}); "
                "pass --overwrite or delete it"
            )
        if overwrite:
            target.unlink()
    if not target.exists():
        _write(
            pde, resolution, target, recipe, chunks, seed, progress, f"{pde.name} {resolution} shard {index}/{count}"
        )
    if assemble:
        assembled = _try_assemble(out, count)
        if assembled is not None:
            return assembled
    return target


def _check_request(pde: PDE, n: int, resolution: int, out: str | Path, chunk_size: int, overwrite: bool) -> Path:
    """The checks before any work: sizes, the grid of ``resolution``, the destination ``out``."""
    out = output_file(out)
    if n <= 0:
        raise DataError(f"--n must be positive, got {n}")
    if chunk_size <= 0:
        raise DataError(f"chunk size must be positive, got {chunk_size}")
    try:
        pde.mesh_size(resolution) if _layout(pde) is MeshLayout else pde.grid(resolution)
    except ValueError as err:
        raise DataError(f"--resolution {resolution} does not suit {pde.name}: {err}") from None
    if out.exists() and not overwrite:
        raise DataError(f"'{out}' already exists; choose another --out or pass --overwrite")
    return out


def _solve_chunk(
    pde: PDE, resolution: int, seed: int, chunk: int, lo: int, hi: int
) -> tuple[torch.Tensor, torch.Tensor] | list[MeshSample]:
    """Samples ``lo .. hi - 1`` (chunk ``chunk``) as ``pde.generate`` returns them; a one-line
    DataError when the solver refuses the request (the layout checks the values when it writes them)."""
    try:
        return pde.generate(hi - lo, resolution, generator(seed, chunk))
    except ValueError as err:
        raise DataError(f"{pde.name} at --resolution {resolution}: {err}") from None


def _write(
    pde: PDE,
    resolution: int,
    target: Path,
    recipe: dict,
    chunks: list[tuple[int, int, int]],
    seed: int,
    progress: bool,
    desc: str,
) -> None:
    """Compute ``chunks`` (global ``(chunk, lo, hi)``) into consecutive rows of ``target``,
    through ``<target>.partial``, resuming a matching partial file.

    A new partial file is created only once the first chunk is solved, so a recipe the solver
    refuses leaves nothing behind. Progress moves within a chunk as the solver reports
    (:func:`oplearn.progress.fraction_done`: time-dependent PDEs report their time steps).
    """
    partial = target.with_name(target.name + ".partial")
    n_local = int(recipe["n"])
    start = _resume_point(partial, recipe)
    layout = _layout(pde)
    index = None
    if "shard_index" in recipe:  # a shard records the global indices of its rows
        index = np.concatenate([np.arange(lo, hi) for _, lo, hi in chunks] or [np.zeros(0, np.int64)])
    if start > 0:
        with h5py.File(partial, "r+") as f:
            layout.resume(f, start)

    with progress_bar(total=n_local, initial=start, unit="sample", desc=desc, enabled=progress) as bar:
        pos = 0
        for chunk, lo, hi in chunks:
            a, b = pos, pos + hi - lo
            pos = b
            if b <= start:
                continue
            with reporting(lambda fraction: advance_to(bar, a + fraction * (b - a))):  # noqa: B023 (called within this iteration)
                generated = _solve_chunk(pde, resolution, seed, chunk, lo, hi)
            if not partial.exists():
                _create(partial, recipe, pde, n_local, resolution, index)
            with h5py.File(partial, "r+") as f:
                layout.write(f, a, generated, f"the {pde.name} solver (samples {lo}..{hi})")
                f.attrs["n_complete"] = b
            advance_to(bar, b)
    if not partial.exists():  # an empty shard (more shards than chunks)
        _create(partial, recipe, pde, n_local, resolution, index)
    with h5py.File(partial, "r+") as f:
        f.attrs["created"] = timestamp()
    with open(partial, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(partial, target)


def _differing(path: Path, recipe: dict) -> list[str]:
    """Recipe keys whose values differ from the root attributes of ``path``."""
    with h5py.File(path, "r") as f:
        meta = decode_attrs(f.attrs)
    expected = {k: (json.loads(v) if k in _JSON_KEYS else v) for k, v in recipe.items()}
    return [k for k, v in expected.items() if meta.get(k) != v]


def _resume_point(partial: Path, recipe: dict) -> int:
    """Samples already written in a matching partial file (0 if none or unusable)."""
    if not partial.exists():
        return 0
    try:
        with h5py.File(partial, "r") as f:
            meta = decode_attrs(f.attrs)
    except OSError:
        partial.unlink()  # killed mid-write beyond repair: start again, same seed, same samples
        return 0
    expected = {k: (json.loads(v) if k in _JSON_KEYS else v) for k, v in recipe.items()}
    differing = [k for k, v in expected.items() if meta.get(k) != v]
    if differing:
        raise DataError(
            f"'{partial}' is an unfinished dataset with different settings ({', '.join(differing)}); "
            "rerun with its settings to resume, or delete it"
        )
    return int(meta.get("n_complete", 0))


def _versions() -> str:
    return json.dumps(versions())


def _create(
    partial: Path, recipe: dict, pde: PDE, n: int, resolution: int, sample_index: np.ndarray | None = None
) -> None:
    with h5py.File(partial, "w") as f:
        for key, value in recipe.items():
            f.attrs[key] = value
        f.attrs["n_complete"] = 0
        f.attrs["versions"] = _versions()
        _layout(pde).create_for(f, pde, n, resolution)
        if sample_index is not None:
            f["sample_index"] = np.asarray(sample_index, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# assembly


def _collect_shards(out: Path, count: int | None = None, quiet: bool = False) -> list[tuple[Path, dict]] | None:
    """The complete shard files of ``out`` in shard order, checked to form one dataset.

    Raises DataError when they do not (or, with ``quiet``, returns None when some are merely
    missing or unfinished).
    """
    folder = shard_dir(out)
    found: dict[int, dict[int, Path]] = {}
    if folder.is_dir():
        for path in folder.iterdir():
            match = _SHARD_NAME.fullmatch(path.name)
            if match:
                found.setdefault(int(match[2]), {})[int(match[1])] = path
    if count is None:
        if not found:
            raise DataError(f"no shard files in '{folder}'; generate them with --shard I/N or --workers K first")
        if len(found) > 1:
            counts = ", ".join(str(c) for c in sorted(found))
            raise DataError(f"'{folder}' holds shard files of different shard counts ({counts}); delete the stale ones")
        count = next(iter(found))
    paths = found.get(count, {})
    missing = [i for i in range(count) if i not in paths]
    if missing:
        if quiet:
            return None
        unfinished = [
            i
            for i in missing
            if shard_path(out, i, count).with_name(shard_path(out, i, count).name + ".partial").exists()
        ]
        text = ", ".join(f"{i}{' (unfinished)' if i in unfinished else ''}" for i in missing[:8])
        more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
        raise DataError(
            f"cannot assemble '{out}': shard(s) {text}{more} of {count} are missing; run them with --shard I/{count}"
        )
    shards = [(paths[i], read_meta(paths[i])) for i in range(count)]
    first = shards[0][1]
    for i, (path, meta) in enumerate(shards):
        differing = [k for k in (*_SHARED, "n_total", "shard_count") if meta.get(k) != first.get(k)]
        if meta.get("shard_index") != i or meta.get("shard_count") != count:
            differing.append("shard_index")
        if differing:
            raise DataError(
                f"shard file '{path}' does not match '{shards[0][0].name}' ({', '.join(differing)}); "
                "the shards come from different recipes: delete the stale ones and regenerate them"
            )
        expected = sum(hi - lo for _, lo, hi in _shard_chunks(int(meta["n_total"]), int(meta["chunk_size"]), i, count))
        if meta.get("n") != expected:
            raise DataError(
                f"shard file '{path}' holds {meta.get('n')} samples; its recipe says {expected}: regenerate it"
            )
    return shards


def assemble_shards(out: str | Path) -> Path:
    """Write ``out`` presenting the complete shard files in ``<out>.shards/`` as one dataset.

    Use this when the shards were generated separately (e.g. on different machines) and
    copied into one ``<out>.shards`` folder. Replaces ``out`` atomically; returns it.
    """
    out = Path(out)
    return _assemble(out, _collect_shards(out))


def _try_assemble(out: Path, count: int) -> Path | None:
    shards = _collect_shards(out, count, quiet=True)
    return None if shards is None else _assemble(out, shards)


def _assemble(out: Path, shards: list[tuple[Path, dict]]) -> Path:
    count = len(shards)
    first_path, first = shards[0]
    n, chunk_size = int(first["n_total"]), int(first["chunk_size"])
    tmp = out.with_name(f".{out.name}.assembling-{os.getpid()}")
    try:
        with h5py.File(first_path, "r") as src, h5py.File(tmp, "w") as f:
            for key in _SHARED:
                if key in src.attrs:
                    f.attrs[key] = src.attrs[key]
            f.attrs["n"] = n
            f.attrs["n_complete"] = n
            f.attrs["versions"] = src.attrs.get("versions", _versions())
            f.attrs["created"] = timestamp()
            f.attrs["shard_count"] = count
            relative = [path.relative_to(out.parent).as_posix() for path, _ in shards]
            f.attrs["shard_files"] = json.dumps(relative)
            chunks = [_shard_chunks(n, chunk_size, i, count) for i in range(count)]
            _layout(meta=first).assemble(
                f, [(name, path) for name, (path, _) in zip(relative, shards)], chunks, n, chunk_size
            )
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


# ---------------------------------------------------------------------------------------------
# local worker processes


def _worker_init() -> None:
    torch.set_num_threads(1)


def generate_parallel(
    pde: PDE,
    n: int,
    resolution: int,
    out: str | Path,
    workers: int,
    seed: int = 0,
    chunk_size: int = 32,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Generate ``out`` with ``workers`` local processes (``spawn``, one torch thread each),
    one shard per worker, then assemble it. Resumable like :func:`generate_dataset`."""
    if workers < 1:
        raise DataError(f"--workers must be at least 1, got {workers}")
    out = _check_request(pde, n, resolution, out, chunk_size, overwrite)
    workers = min(workers, -(-n // chunk_size))  # no empty shards
    if workers == 1:
        return generate_dataset(pde, n, resolution, out, seed, chunk_size, overwrite, progress)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
        jobs = [
            pool.submit(
                generate_dataset, pde, n, resolution, out, seed, chunk_size, overwrite, False, (i, workers), False
            )
            for i in range(workers)
        ]
        with progress_bar(total=workers, unit="shard", desc=f"{pde.name} {resolution}", enabled=progress) as bar:
            for job in jobs:
                job.result()
                bar.update()
    return _assemble(out, _collect_shards(out, workers))
