"""``python -m benchmarks.manifest_hashing``: throughput of a store's manifest (MB/s).

Writes one real cell store (mass_superposition, ~100 MB of chunks) into a temporary folder,
then times :func:`cq_core.pipeline.manifest.write_manifest` and
:func:`~cq_core.pipeline.manifest.check_manifest` over it, and plain hashlib SHA-256 and
BLAKE2b over the same bytes in memory for comparison. Files are in the page cache (warm):
the numbers are the hashing cost, not the disk's. Prints medians of ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(n_traj: int = 2000, steps: int = 1000, repeats: int = 5) -> dict[str, Any]:
    """Store size and median seconds of each hashing call over one real cell store."""
    from cq_core.pipeline.manifest import check_manifest, write_manifest

    try:  # the target layout, then the old one
        from cq_core.pipeline.cells import CellSpec, write_cell
    except ImportError:
        from cq_core.cells import CellSpec, write_cell

    spec = CellSpec(
        model="mass_superposition",
        params={"phi": 1.0},
        sigma=0.02,
        seed=1,
        n_traj=n_traj,
        t_final=steps * 1e-4,
        dt=1e-4,
    ).resolved()
    identity = {"cell_hash": spec.config_hash, "sweep": "bench", "sigma": 0.02, "seed": 1}
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "seed=1.zarr"
        ds = spec.simulate()
        ds.attrs.update(cell_spec=spec.to_json(), cell_hash=spec.config_hash)
        write_cell(ds, store)
        files = [p for p in store.rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files)
        data = b"".join(p.read_bytes() for p in files)
        rows = {
            "write_manifest": _median_seconds(
                lambda: write_manifest(store, identity=identity), repeats
            ),
            "check_manifest": _median_seconds(
                lambda: check_manifest(store, identity=identity), repeats
            ),
            "hashlib sha256 (memory)": _median_seconds(
                lambda: hashlib.sha256(data).digest(), repeats
            ),
            "hashlib blake2b (memory)": _median_seconds(
                lambda: hashlib.blake2b(data).digest(), repeats
            ),
        }
        if check_manifest(store, identity=identity) != []:
            raise RuntimeError("the manifest written does not check")
    return {
        "n_traj": n_traj,
        "steps": steps,
        "repeats": repeats,
        "files": len(files),
        "store_mb": size / 1e6,
        "median_s": rows,
        "mb_per_s": {name: size / seconds / 1e6 for name, seconds in rows.items()},
    }


def markdown(result: dict[str, Any]) -> str:
    """The measurement as a Markdown table (milliseconds and MB/s)."""
    lines = [
        f"store: {result['files']} files, {result['store_mb']:.1f} MB "
        f"({result['n_traj']} trajectories × {result['steps']} steps), median of "
        f"{result['repeats']} runs\n",
        "| call | ms | MB/s |",
        "|---|---|---|",
    ]
    for name, seconds in result["median_s"].items():
        lines.append(f"| {name} | {seconds * 1e3:.1f} | {result['mb_per_s'][name]:,.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-traj", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(markdown(measure(args.n_traj, args.steps, args.repeats)))


if __name__ == "__main__":
    main()
