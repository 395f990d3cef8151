"""Neural walk-on-spheres in 2, 5 and 10 dimensions: relative L2 error against the exact solution.

The problem on the cube [-1, 1]^d: u = mean_i sin(x_i) + x_1 x_2, so f = Lap u = -mean_i sin(x_i)
and g = u on the boundary. An MLP (3 x 64, SiLU) is fitted with the one-step bootstrapped
loss of :mod:`oplearn.wos.neural` alone (no solver, no derivatives of the network); the error is
measured at 4000 uniform points of the cube. For scale, the plain walk-on-spheres estimator's
error with 100 walks per point at 1000 of them (the network answers anywhere at once).

    python benchmarks/neural_wos.py     # about 40 s on one CPU thread
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch

from oplearn.wos import Box, DirichletProblem, walk_on_spheres
from oplearn.wos.neural import MLP, NeuralWoSConfig, train_neural_wos

RESULTS = Path(__file__).resolve().parent / "results" / "neural_wos.json"


def main() -> None:
    torch.set_num_threads(1)
    rows = []
    for d in (2, 5, 10):
        u = lambda x: torch.sin(x).mean(-1) + x[..., 0] * x[..., 1]
        box = Box((-1.0,) * d, (1.0,) * d)
        problem = DirichletProblem(box, u, lambda x: -torch.sin(x).mean(-1))
        torch.manual_seed(0)
        net = MLP(d)
        test = box.sample(4000, torch.Generator().manual_seed(1), dtype=torch.float32)
        config = NeuralWoSConfig(steps=1000, batch=256, lr=3e-3)
        t0 = time.perf_counter()
        losses = train_neural_wos(net, problem, config)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            error = ((net(test) - u(test)).norm() / u(test).norm()).item()
        points = test[:1000].double()
        est = walk_on_spheres(problem, points, 100, epsilon=1e-3, generator=torch.Generator().manual_seed(2))
        wos_error = ((est.mean - u(points)).norm() / u(points).norm()).item()
        rows.append(
            {
                "dim": d,
                "steps": config.steps,
                "batch": config.batch,
                "relative_l2": error,
                "train_seconds": seconds,
                "final_loss": sum(losses[-50:]) / 50,
                "wos_100_walks_relative_l2": wos_error,
                "wos_mean_steps": est.mean_steps,
            }
        )
        print(
            f"d={d:2d}: neural WoS relative L2 {error:.4f} after {config.steps} steps ({seconds:.0f} s); "
            f"plain WoS with 100 walks per point {wos_error:.4f} ({est.mean_steps:.0f} steps per walk)"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_name(f".{RESULTS.name}.tmp")
    tmp.write_text(json.dumps({"rows": rows, "torch": torch.__version__, "cpu_count": os.cpu_count()}, indent=2))
    os.replace(tmp, RESULTS)
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
