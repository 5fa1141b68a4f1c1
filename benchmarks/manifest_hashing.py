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

from cq_core.cells import CellSpec, write_cell
from cq_core.pipeline.manifest import check_manifest, write_manifest


def _median_seconds(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-traj", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    spec = CellSpec(
        model="mass_superposition",
        params={"phi": 1.0},
        sigma=0.02,
        seed=1,
        n_traj=args.n_traj,
        t_final=args.steps * 1e-4,
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
                lambda: write_manifest(store, identity=identity), args.repeats
            ),
            "check_manifest": _median_seconds(
                lambda: check_manifest(store, identity=identity), args.repeats
            ),
            "hashlib sha256 (memory)": _median_seconds(
                lambda: hashlib.sha256(data).digest(), args.repeats
            ),
            "hashlib blake2b (memory)": _median_seconds(
                lambda: hashlib.blake2b(data).digest(), args.repeats
            ),
        }
        assert check_manifest(store, identity=identity) == []
    print(f"store: {len(files)} files, {size / 1e6:.1f} MB ({args.n_traj} trajectories)")
    for name, seconds in rows.items():
        print(f"{name:26s} {seconds * 1e3:8.1f} ms  {size / seconds / 1e6:8.0f} MB/s")


if __name__ == "__main__":
    main()
