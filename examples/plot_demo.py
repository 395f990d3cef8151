"""
The demo: an FNO on Darcy flow, evaluated across resolutions
=============================================================

``make demo`` runs ``oplearn demo``: it generates Darcy-flow data (random piecewise-constant
permeability :math:`a`, pressure :math:`u` solving :math:`-\\nabla\\cdot(a\\nabla u) = 1` with
:math:`u = 0` on the boundary), trains a Fourier neural operator on 32x32 samples, evaluates it
at 32x32 and, without retraining, at 64x64, and writes a report with figures.

This script runs the same pipeline (:func:`oplearn.demo.run_demo`) at a reduced size so that it
finishes in about a minute on a CPU: fewer samples, fewer epochs, a narrower network. The
figures are the report's own: the training curves, and the input, truth, prediction and error
of test samples at both resolutions.
"""

import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import torch

from oplearn.demo import run_demo

torch.set_num_threads(1)
SMALL = [
    "data.generate.n=240",
    "data.n_train=200",
    "data.n_val=40",
    "data.test.0.generate.n=20",
    "data.test.1.generate.n=20",
    "model.width=16",
    "model.modes=8",
    "train.epochs=12",
]

out = Path(tempfile.mkdtemp()) / "demo"
report = run_demo(out, SMALL, progress=False)

# %%
# The report's figures, as ``oplearn report`` writes them (``runs/demo/report/`` after ``make demo``).
for png in sorted(report.parent.glob("*.png")):
    image = plt.imread(png)
    fig, ax = plt.subplots(figsize=(image.shape[1] / 100, image.shape[0] / 100), dpi=100)
    ax.imshow(image)
    ax.set_axis_off()
    ax.set_title(png.stem.replace("_", " "), fontsize=9)
    fig.tight_layout()
shutil.rmtree(out.parent)
plt.show()
