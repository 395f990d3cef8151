"""``oplearn convert``: files of other programs as oplearn datasets, with their provenance.

Each input layout is one entry of :data:`LAYOUTS`: how to recognise a file (``detect``) and
how to write it as an oplearn dataset (``convert``). The grid layouts (NeuralOperator ``.pt``,
PDEBench, The Well, plain HDF5) read through :func:`oplearn.data.readers.read_dataset` and
write one oplearn file (:func:`oplearn.data.files.write_fields`) whose root attribute
``source`` records the original: its path, format, size and SHA-256, the reader's notes
(a periodicity guessed from the file name, skipped fields, scalars) and the time of the
conversion. The problem (:mod:`oplearn.data.problem`) is the source format's, so a converted
file and its original are interchangeable for training and evaluation (``train`` and
``evaluate`` also read the originals directly). A layout of another kind (meshes, say) is
one more entry, with its own ``convert``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import h5py

from oplearn.data.files import check_data_file, write_fields
from oplearn.data.problem import describe_problem
from oplearn.data.readers import detect_format, read_dataset
from oplearn.errors import DataError
from oplearn.paths import output_file
from oplearn.provenance import timestamp


@dataclass(frozen=True)
class ConvertOptions:
    """What a conversion may be told; each layout uses what applies to it and refuses the rest.

    Attributes
    ----------
    periodic : whether the grid is periodic, for formats that do not record it (``None``: the
        reader's default or guess)
    limit : convert only the first samples
    inputs, outputs : names of the arrays or fields that are the inputs and the outputs (plain
        HDF5: one array each)
    """

    periodic: bool | None = None
    limit: int | None = None
    inputs: tuple[str, ...] = field(default_factory=tuple)
    outputs: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Layout:
    """An input layout of ``oplearn convert``: ``detect(path, options)`` says whether it reads a
    file (with those options); ``convert(paths, out, options)`` writes ``out`` and returns a
    one-line summary."""

    name: str
    summary: str
    detect: Callable[[Path, ConvertOptions], bool]
    convert: Callable[[list[Path], Path, ConvertOptions], str]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _grid_layout(fmt: str, summary: str) -> Layout:
    """A layout read by :func:`read_dataset` with format ``fmt``."""

    def detect(path: Path, options: ConvertOptions) -> bool:
        if fmt == "hdf5" and (
            options.inputs or options.outputs
        ):  # arrays named: any HDF5 file not of an earlier layout
            return h5py.is_hdf5(path)
        try:
            return detect_format(path) == fmt
        except DataError:
            return False

    def convert(paths: list[Path], out: Path, options: ConvertOptions) -> str:
        if len(paths) != 1:
            raise DataError(f"the {fmt} layout converts one file at a time, got {len(paths)}")
        if len(options.inputs) > 1 or len(options.outputs) > 1:
            raise DataError("give one input and one output array name")
        source = paths[0]
        data = read_dataset(
            source,
            fmt,
            options.limit,
            options.periodic,
            inputs=options.inputs[0] if options.inputs else None,
            outputs=options.outputs[0] if options.outputs else None,
        )
        problem = describe_problem(data.meta)
        record = {
            "path": str(source.resolve()),
            "format": fmt,
            "bytes": source.stat().st_size,
            "sha256": _sha256(source),
            "reader": {k: v for k, v in data.meta.items() if k not in ("input_names", "output_names")},
            "converted": timestamp(),
        }
        write_fields(
            out,
            data.inputs,
            data.outputs,
            data.grid,
            (problem["input_names"], problem["output_names"]),
            problem["pde"],
            problem["pde_params"],
            None,
            time=data.time,
            attrs={"source": record},
        )
        kind = "periodic" if data.grid.periodic else "bounded"
        frames = f", {len(data.time)} frames" if data.time is not None else ""
        return (
            f"wrote {len(data)} samples ({fmt}, {data.resolution} {kind} grid{frames}, inputs "
            f"{', '.join(problem['input_names'])}, outputs {', '.join(problem['output_names'])}) from {source} to {out}"
        )

    return Layout(fmt, summary, detect, convert)


#: File name endings of meshes that meshio reads (the common ones; ``--format mesh`` takes any).
MESH_SUFFIXES = (".vtu", ".vtk", ".msh", ".xdmf", ".xmf", ".inp", ".mesh", ".med", ".obj", ".off", ".ply", ".stl")


def _mesh_layout() -> Layout:
    """Meshes read by meshio, one sample per file, into the ragged mesh layout
    (:func:`oplearn.data.mesh_io.convert_meshes`); ``--inputs``/``--outputs`` name the nodal fields."""

    def detect(path: Path, options: ConvertOptions) -> bool:
        return path.suffix.lower() in MESH_SUFFIXES

    def convert(paths: list[Path], out: Path, options: ConvertOptions) -> str:
        from oplearn.data.mesh_io import convert_meshes

        if options.periodic is not None or options.limit is not None:
            raise DataError("--periodic, --bounded and --limit do not apply to meshes; convert the files you want")
        if not options.outputs:
            raise DataError("name the nodal fields of the meshes: --inputs NAME ... --outputs NAME ...")
        convert_meshes(paths, out, options.inputs, options.outputs)
        with h5py.File(out, "r+") as f:
            files = [{"path": str(p.resolve()), "bytes": p.stat().st_size, "sha256": _sha256(p)} for p in paths]
            more = f" and {len(paths) - 1} more" if len(paths) > 1 else ""
            f.attrs["source"] = json.dumps(
                {
                    "path": files[0]["path"] + more,
                    "format": "mesh (meshio)",
                    "sha256": files[0]["sha256"],
                    "files": files,
                    "converted": timestamp(),
                }
            )
        return (
            f"wrote {len(paths)} mesh samples (inputs {', '.join(options.inputs) or 'none'}, outputs "
            f"{', '.join(options.outputs)}) to {out}"
        )

    return Layout(
        "mesh",
        "meshes that meshio reads (VTU, VTK, Gmsh, XDMF, ...), one sample per file, nodal fields "
        "named by --inputs/--outputs (extra oplearn[mesh])",
        detect,
        convert,
    )


#: The layouts ``oplearn convert`` reads, tried in this order by ``--format auto``.
LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        _grid_layout(
            "neuraloperator", "NeuralOperator .pt dictionaries of tensors x and y (darcy, burgers, navier-stokes)"
        ),
        _grid_layout("pdebench", "PDEBench HDF5 (single-file 'tensor' or CFD fields, or one group per sample)"),
        _grid_layout("the-well", "The Well HDF5 on Cartesian grids (t0/t1/t2 fields, dimensions, boundary conditions)"),
        _grid_layout(
            "hdf5", "plain HDF5 with arrays inputs (n, c, *spatial) and outputs (n, c, *spatial) or (n, t, c, *spatial)"
        ),
        _mesh_layout(),
    )
}


def detect_layout(path: Path, options: ConvertOptions = ConvertOptions()) -> str:
    """The first layout of :data:`LAYOUTS` that reads ``path`` with ``options`` (one-line DataError if none)."""
    for name, layout in LAYOUTS.items():
        if layout.detect(path, options):
            return name
    fmt = detect_format(path)  # raises the reader's description of what the file is not
    raise DataError(
        f"'{path}' is already an oplearn dataset; nothing to convert"
        if fmt == "oplearn"
        else f"'{path}' is a {fmt} file, which convert does not read"
    )


def convert(
    paths: list[str | Path],
    out: str | Path,
    layout: str = "auto",
    options: ConvertOptions = ConvertOptions(),
    overwrite: bool = False,
) -> str:
    """Convert ``paths`` (one file for the grid layouts) into the oplearn dataset ``out``;
    returns a one-line summary. ``layout`` is a name of :data:`LAYOUTS` or ``"auto"``."""
    paths = [Path(p) for p in paths]
    out = output_file(out)
    for path in paths:
        check_data_file(path)
        if path.resolve() == out.resolve():
            raise DataError(f"'{out}' is also an input; choose another output file")
    if out.exists() and not overwrite:
        raise DataError(f"'{out}' already exists; choose another output or pass --overwrite")
    if layout == "auto":
        layout = detect_layout(paths[0], options)
    if layout not in LAYOUTS:
        raise DataError(f"unknown layout '{layout}'; choose one of: auto, {', '.join(LAYOUTS)}")
    return LAYOUTS[layout].convert(paths, out, options)


def _command(args: argparse.Namespace) -> None:
    options = ConvertOptions(
        periodic=args.periodic, limit=args.limit, inputs=tuple(args.inputs), outputs=tuple(args.outputs)
    )
    print(convert(args.files, args.out, args.format, options, overwrite=args.overwrite))


def add_command(sub: argparse._SubParsersAction) -> None:
    """Register ``oplearn convert``."""
    from oplearn.arguments import file_argument, positive_int

    layouts = "; ".join(f"{name}: {layout.summary}" for name, layout in LAYOUTS.items())
    p = sub.add_parser(
        "convert",
        help="convert a NeuralOperator, PDEBench, The Well or plain HDF5 file into an oplearn dataset",
        description=f"Write a file of another program as an oplearn dataset, recording its provenance. Layouts: "
        f"{layouts}. 'oplearn train' and 'oplearn evaluate' also read these files directly.",
    )
    p.add_argument("files", nargs="+", metavar="IN", help="the file to convert")
    p.add_argument("out", metavar="OUT.h5", type=file_argument("OUT"), help="the oplearn dataset to write")
    p.add_argument("--format", default="auto", choices=("auto", *LAYOUTS), help="layout of IN (auto: detected)")
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--periodic",
        dest="periodic",
        action="store_true",
        default=None,
        help="the grid is periodic (for formats that do not record it; PDEBench guesses from the file name)",
    )
    group.add_argument(
        "--bounded", dest="periodic", action="store_false", help="the grid is bounded (both ends are nodes)"
    )
    p.add_argument("--limit", type=positive_int, help="convert only the first LIMIT samples")
    p.add_argument(
        "--inputs",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="name of the input array (plain HDF5; default: the first of inputs, x, a)",
    )
    p.add_argument(
        "--outputs",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME",
        help="name of the output array (plain HDF5; default: the first of outputs, y, u)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=_command)
