"""Meshes of other programs (any format meshio reads: VTK/VTU, Gmsh, XDMF, Abaqus, ...) as
oplearn mesh datasets (:mod:`oplearn.data.mesh_files`).

:func:`read_mesh` reads one file: its nodes, its triangles and its nodal fields. Planar
meshes stored with a zero third coordinate become 2D. Quadrilaterals are split into two
triangles along their first diagonal and the corners of quadratic triangles are kept;
files without surface cells (point clouds, volume meshes) give ``triangles = None``.
:func:`convert_meshes` turns a list of such files into one dataset, choosing which nodal
fields are the inputs and which the outputs.

Needs the extra ``mesh`` (meshio).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from oplearn.data.mesh_files import write_meshes
from oplearn.errors import DataError
from oplearn.extras import require
from oplearn.geometry.mesh import MeshSample


@dataclass(frozen=True)
class ReadMesh:
    """A mesh file's content: ``nodes (N, d)`` float64, ``triangles (T, 3)`` int64 or ``None``,
    ``fields`` name -> ``(N, k)`` float64 (nodal data; ``k = 1`` for scalars)."""

    nodes: torch.Tensor
    triangles: torch.Tensor | None
    fields: dict[str, torch.Tensor]


def read_mesh(path: str | Path) -> ReadMesh:
    """Read a mesh file with meshio (see the module docstring). Raises a one-line DataError."""
    meshio = require("meshio", "mesh")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"mesh file '{path}' does not exist")
    try:
        mesh = meshio.read(path)
    except (Exception, SystemExit) as err:  # meshio raises many kinds (and exits on some): one line
        raise DataError(
            f"cannot read '{path}' as a mesh ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'unknown format'})"
        ) from None
    points = np.asarray(mesh.points, dtype=np.float64)
    if points.ndim != 2 or len(points) == 0:
        raise DataError(f"'{path}' holds no mesh nodes")
    if points.shape[1] == 3 and np.all(points[:, 2] == 0):
        points = points[:, :2]
    triangles = []
    for block in mesh.cells:
        cells = np.asarray(block.data, dtype=np.int64)
        if block.type in ("triangle", "triangle6", "triangle7"):
            triangles.append(cells[:, :3])
        elif block.type in ("quad", "quad8", "quad9"):
            triangles += [cells[:, [0, 1, 2]], cells[:, [0, 2, 3]]]
    fields = {}
    for name, values in mesh.point_data.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape[0] != len(points):
            continue
        fields[str(name)] = torch.from_numpy(values.reshape(len(points), -1))
    tri = torch.from_numpy(np.concatenate(triangles)) if triangles and points.shape[1] == 2 else None
    return ReadMesh(torch.from_numpy(points), tri, fields)


def convert_meshes(paths: Sequence[str | Path], out: str | Path, inputs: Sequence[str], outputs: Sequence[str]) -> Path:
    """Write the mesh files ``paths`` as one oplearn mesh dataset ``out``, one sample per file.

    ``inputs`` and ``outputs`` name the nodal fields (present in every file) that become the
    input and output channels, in order; a vector field ``v`` with ``k`` components gives
    channels ``v_0 .. v_{k-1}``. Returns ``out``.
    """
    if not paths:
        raise DataError("no mesh files to convert")
    samples, names = [], None
    for path in paths:
        mesh = read_mesh(path)
        parts, channel_names = [], []
        for group in (inputs, outputs):
            columns, group_names = [], []
            for name in group:
                if name not in mesh.fields:
                    known = ", ".join(sorted(mesh.fields)) or "none"
                    raise DataError(f"'{path}' has no nodal field '{name}' (its fields: {known})")
                values = mesh.fields[name]
                columns.append(values)
                group_names += [name] if values.shape[1] == 1 else [f"{name}_{k}" for k in range(values.shape[1])]
            parts.append(torch.cat(columns, 1) if columns else torch.zeros((len(mesh.nodes), 0), dtype=torch.float64))
            channel_names.append(group_names)
        if names is not None and channel_names != names:
            raise DataError(f"'{path}' gives channels {channel_names}, but the first file gave {names}")
        names = channel_names
        samples.append(MeshSample(mesh.nodes, parts[0], parts[1], mesh.triangles))
    return write_meshes(
        out, samples, names[0], names[1], pde="converted", pde_params={"files": [Path(p).name for p in paths]}
    )
