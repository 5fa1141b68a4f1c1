"""How often the run's checks pass for a correct engine, and catch a wrong one.

Over many base seeds, a reduced default run (the ``histograms`` sweep of ``mass_superposition``
and the ``linear`` sweep, each σ sharing its base seed's Brownian increments as in the
pipeline) is simulated in-process with :func:`cq_core.simulate` and summarised; its checks
(:mod:`cq_core.analysis.checks`, Holm–Bonferroni at 1 %) are then read three ways: as they
are (a correct engine: should pass ≥ 99 % of base seeds), with Γ_theory 10 % off, and with
the Born weight 0.05 off (wrong engines: should fail). Run:

    python -m benchmarks.checks_calibration --seeds 200

Not a section of ``python -m benchmarks``: 200 base seeds are 200 reduced default runs
(tens of minutes on 2 cores), so it runs on its own (docs/performance.md says so).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import xarray as xr

import cq_core
from cq_core.analysis import summarise
from cq_core.analysis.checks import check_statistics

SWEEPS = {
    "histograms": dict(
        model="mass_superposition",
        sigmas=(0.015, 0.02),
        n_traj=2000,
        t_final=0.3,
        seeds=(0, 1),
        fit_window=[0.0, 0.15],
    ),
    "linear": dict(
        model="linear",
        sigmas=(0.5, 0.7, 1.0, 1.4, 2.0),
        n_traj=2000,
        t_final=0.2,
        seeds=(0, 1),
        fit_window=None,
    ),
}


def reduced_run(base_seed: int, scale: float = 1.0) -> xr.Dataset:
    """Summaries of the reduced default run for one base seed, concatenated along ``sweep``."""
    summaries = []
    for name, sweep in SWEEPS.items():
        model = cq_core.get_model(sweep["model"])
        n_traj = max(50, int(sweep["n_traj"] * scale))
        per_seed = []
        for seed in sweep["seeds"]:
            cells = [
                cq_core.simulate(
                    model,
                    sigma=s,
                    n_traj=n_traj,
                    t_final=sweep["t_final"],
                    dt=1e-4,
                    seed=seed,
                    save_every=10,
                    base_seed=base_seed,
                )  # fmt: skip
                for s in sweep["sigmas"]
            ]
            per_seed.append(xr.concat(cells, dim="sigma", combine_attrs="override"))
        ds = xr.concat(per_seed, dim="seed", combine_attrs="override")
        summary = summarise(ds, time_slices=[0.0], bins=4, fit_window=sweep["fit_window"]).compute()
        summaries.append(summary.expand_dims(sweep=[name]).reset_coords(drop=True))
    return summaries


def decisions(summaries, **wrong) -> bool:
    """Whether the run passes: Holm over every check of every sweep of the run."""
    from cq_core.analysis.checks import holm_reject

    p = np.concatenate(
        [check_statistics(s.isel(sweep=0), **wrong)["p"].values.ravel() for s in summaries]
    )
    rejected, _ = holm_reject(p)
    return not rejected.any()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the trajectories")
    parser.add_argument(
        "--record",
        action="store_true",
        help="merge the result into benchmarks/results.json and regenerate docs/performance.md",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    outcomes = {"correct": [], "gamma_10pc_off": [], "born_0.05_off": []}
    z_max = []
    for base_seed in range(args.seeds):
        summaries = reduced_run(base_seed, args.scale)
        outcomes["correct"].append(decisions(summaries))
        outcomes["gamma_10pc_off"].append(decisions(summaries, gamma_factor=1.1))
        outcomes["born_0.05_off"].append(
            decisions(summaries, born_shift=0.05 if base_seed % 2 else -0.05)
        )
        for s in summaries:
            z = check_statistics(s.isel(sweep=0))["z"]
            print(
                base_seed,
                str(s.sweep.values[0]),
                {c: np.round(z.sel(check=c).values, 2).tolist() for c in z.check.values},
                flush=True,
            )
        z_max.append(
            max(float(np.nanmax(np.abs(check_statistics(s.isel(sweep=0))["z"]))) for s in summaries)
        )
    result = {
        "base_seeds": args.seeds,
        "scale": args.scale,
        "pass_rate_correct": float(np.mean(outcomes["correct"])),
        "fail_rate_gamma_10pc_off": 1.0 - float(np.mean(outcomes["gamma_10pc_off"])),
        "fail_rate_born_0.05_off": 1.0 - float(np.mean(outcomes["born_0.05_off"])),
        "median_max_abs_z_correct": float(np.median(z_max)),
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(json.dumps(result, indent=2))
    if args.record:
        _record(result, argv)
    return result


def _record(result: dict, argv) -> None:
    """Merge ``result`` into benchmarks/results.json and regenerate docs/performance.md."""
    import os
    import sys
    from datetime import UTC, datetime

    from .performance import DOCUMENT, RESULTS, render

    command = " ".join(["python -m benchmarks.checks_calibration", *(argv or sys.argv[1:])])
    result = {
        **result,
        "command": command,
        "measured": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_after": list(os.getloadavg()),
    }
    results = json.loads(RESULTS.read_text())
    results["checks_calibration"] = result
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    DOCUMENT.write_text(render(results))


if __name__ == "__main__":
    main()
