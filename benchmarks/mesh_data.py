"""What the irregular-domain benchmarks share: cached mesh datasets and the JSON result file."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: The box containing every domain of the mesh families.
BOX = ((0.0, 1.0), (0.0, 1.0))


def mesh_samples(name: str, n: int, resolution: int, seed: int, data_dir: str | Path) -> list:
    """The ``n`` samples of the mesh family ``name`` at ``resolution`` from ``seed``, generated
    into ``data_dir`` by ``oplearn.data.generate`` the first time, read back into memory."""
    from oplearn.data.generate import generate_dataset, make_pde
    from oplearn.data.mesh_files import MeshDataset

    path = Path(data_dir) / f"{name}_{n}_{resolution}_{seed}.h5"
    if not path.exists():
        generate_dataset(make_pde(name), n, resolution, path, seed=seed, progress=True)
    data = MeshDataset(path)
    return [data[i] for i in range(len(data))]


def write_result(
    out: str | Path, benchmark: str, argv: list[str] | None, settings: dict, rows: list[dict], **extra
) -> None:
    """Write the JSON result of ``benchmark`` atomically and say where."""
    result = {
        "benchmark": benchmark,
        "command": " ".join(["python", f"benchmarks/{benchmark}.py", *(sys.argv[1:] if argv is None else argv)]),
        "settings": settings,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        **extra,
        "rows": rows,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    print(f"wrote {out}")
