"""
PDE families: one sample of each
=================================

Every family registered for ``oplearn generate`` draws a random input and solves for the
output with its reference solver. Here each family generates one sample at a small
resolution, the same call that ``oplearn generate NAME --n 1 --resolution R`` makes, and the
input is drawn next to the solution (the last stored time for time-dependent families, the
first channel of vector fields). One-dimensional families are drawn as curves, families on
irregular domains on their triangle meshes. Navier-Stokes runs a shorter horizon on the
sample grid itself here (its defaults integrate to a later time on a 4x finer grid).
"""

import matplotlib.pyplot as plt
import torch

from oplearn.pdes import PDES, MeshPDE

torch.set_num_threads(1)
RESOLUTION = {1: 64, 2: 32}  # nodes per dimension: small, so that every family solves in seconds
SMALL = {"navier_stokes": {"t_final": 2.0, "n_times": 4, "dt": 1e-3, "refine": 1}}

COLUMNS = 2  # families side by side, each as input | solution
rows = -(-len(PDES) // COLUMNS)
fig, axes = plt.subplots(rows, 2 * COLUMNS, figsize=(14, 2.4 * rows), squeeze=False)
panels = axes.reshape(rows * COLUMNS, 2)
for ax in panels[len(PDES) :].ravel():
    ax.set_axis_off()
for row, (name, cls) in zip(panels, PDES.items()):
    pde = cls(**SMALL.get(name, {}))
    generator = torch.Generator().manual_seed(0)
    if isinstance(pde, MeshPDE):
        (sample,) = pde.generate(1, 24, generator)
        x, y = sample.nodes.T.numpy()
        triangles = sample.triangles.numpy()
        for ax, values, label in (
            (row[0], sample.inputs[:, 0], pde.input_names[0]),
            (row[1], sample.outputs[:, 0], "u"),
        ):
            image = ax.tripcolor(x, y, triangles, values.numpy(), shading="gouraud", cmap="viridis")
            ax.set_aspect("equal")
            ax.set_title(f"{name}: {label}", fontsize=9)
            fig.colorbar(image, ax=ax, shrink=0.8)
        continue
    inputs, outputs = pde.generate(1, RESOLUTION[cls.ndim], generator)
    output = outputs[0, -1] if pde.times is not None else outputs[0]  # (channels, *grid)
    when = f" at t={float(pde.times[-1]):g}" if pde.times is not None else ""
    for ax, field, label in (
        (row[0], inputs[0, 0], pde.input_names[0]),
        (row[1], output[0], pde.output_names[0] + when),
    ):
        if cls.ndim == 1:
            ax.plot(torch.linspace(0, 1, len(field)), field.numpy())
        else:
            image = ax.imshow(field.numpy().T, origin="lower", extent=(0, 1, 0, 1), cmap="viridis")
            fig.colorbar(image, ax=ax, shrink=0.8)
        ax.set_title(f"{name}: {label}", fontsize=9)
fig.tight_layout()
plt.show()
