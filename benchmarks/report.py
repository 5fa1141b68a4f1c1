"""Turn the measurements into ``scaling.png`` and Markdown tables.

Units in the tables: trajectory-steps per second, ratios to the noise floor (dimensionless),
MiB (2²⁰ bytes) of resident memory, wall seconds for the Dask sweep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

MEMORY_TARGET_MIB = 200e6 / 2**20
"""Issue 8's "under 200 MB resident per cell", in MiB."""


def _rate(value: float | None) -> str:
    """A throughput in scientific notation, e.g. ``3.1×10⁷``."""
    if value is None:
        return "n/a"
    exponent = int(np.floor(np.log10(value)))
    digits = str(exponent).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return f"{value / 10**exponent:.2g}×10{digits}"


def _ratio(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}×" if value < 10 else f"{value:,.0f}×"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def throughput_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(what, trajectory-steps/s, × its noise floor) rows."""
    seed = results["seed_workload"]
    floor = seed["floor"]
    floor_per_step = floor["cpu_s"] / seed["workload"]["trajectory_steps"]
    rows = [
        (f"noise floor: `{floor['what']}`", _rate(floor["trajectory_steps_per_s"]), "1×"),
    ]
    default = seed["backends"]["default"]
    rows.append(
        (
            f"**cq_core default** ({default.get('backend', '?')} kernel + keyed noise), total",
            _rate(default["trajectory_steps_per_s"]),
            _ratio(default["ratio_to_floor"]),
        )
    )
    for key, label in (
        ("keyed_noise", "  ↳ keyed noise alone (`BrownianIncrements`, a generator/trajectory)"),
        ("kernel", "  ↳ kernel alone, given pre-drawn noise (`integrate`)"),
    ):
        part = seed["split"][key]
        rows.append((label, _rate(part["trajectory_steps_per_s"]), _ratio(part["ratio_to_floor"])))
    for name in ("numba", "numpy"):
        if name in seed["backends"]:
            run = seed["backends"][name]
            rows.append(
                (
                    f'cq_core `backend="{name}"`, total',
                    _rate(run["trajectory_steps_per_s"]),
                    _ratio(run["ratio_to_floor"]),
                )
            )
    reference = results["reference_loop"]
    loops = [("notebook-style", reference)]
    if "lean" in reference:
        loops.append(("lean", reference["lean"]))
    for label, loop in loops:
        rows.append(
            (
                f"reference-style Python Euler loop, {label} ({loop['n_traj']} × "
                f"{loop['n_steps']})",
                _rate(loop["trajectory_steps_per_s"]),
                _ratio(loop["cpu_s_per_trajectory_step"] / floor_per_step),
            )
        )
    qutip = results["qutip"]
    if qutip.get("trajectory_steps_per_s") is not None:
        rows.append(
            (
                f"QuTiP {qutip['version']} `ssesolve` ({qutip['method']}), quantum part only "
                f"({qutip['n_traj']} × {qutip['n_steps']})",
                _rate(qutip["trajectory_steps_per_s"]),
                _ratio(qutip["cpu_s_per_trajectory_step"] / floor_per_step),
            )
        )
    else:
        rows.append((f"QuTiP `ssesolve`: {qutip.get('reason', 'not run')}", "n/a", "n/a"))
    for row in results["qubit_lattice"]:
        work = row["workload"]
        rows.append(
            (
                f"qubit_lattice n = {row['n']} (d = {row['d']}), "
                f"{work['n_traj']} × {work['n_steps']}, vs its own floor",
                _rate(row["trajectory_steps_per_s"]),
                _ratio(row["ratio_to_floor"]),
            )
        )
    return rows


def target_rows(results: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(check, measured, target, met) rows."""
    seed = results["seed_workload"]
    default = seed["backends"]["default"]
    rows = [
        (
            "seed workload: default total time / noise floor (least of runs; paired median)",
            f"{default['ratio_to_floor']:.2f} ({default['paired_ratio_to_floor']:.2f})",
            "≤ 2",
            _met(default["ratio_to_floor"] <= 2.0),
        )
    ]
    speedup = results["reference_loop"]["speedup_of_default"]
    rows.append(
        (
            "speed-up of the default over the notebook-style reference loop",
            f"{speedup:,.0f}×",
            "≥ 1000×",
            _met(speedup >= 1000),
        )
    )
    lean = results["reference_loop"].get("lean")
    if lean is not None:
        rows.append(
            (
                "speed-up of the default over the lean reference loop",
                f"{lean['speedup_of_default']:,.0f}×",
                "—",
                "—",
            )
        )
    qutip_speedup = results["qutip"].get("speedup_of_default")
    rows.append(
        (
            "speed-up of the default over QuTiP `ssesolve`",
            "n/a" if qutip_speedup is None else f"{qutip_speedup:,.0f}×",
            "≥ 100×",
            _met(None if qutip_speedup is None else qutip_speedup >= 100),
        )
    )
    job = results["memory"].get("cell_job", {})
    if "peak_rss_mib" in job:
        rows.append(
            (
                "peak RSS of a whole `python -m cq_core run-cell` job storing the seed cell "
                "(default kernel, in-process Dask, Zarr)",
                f"{job['peak_rss_mib']:.0f} MiB",
                f"< 200 MB ({MEMORY_TARGET_MIB:.0f} MiB)",
                _met(job["peak_rss_mib"] < MEMORY_TARGET_MIB),
            )
        )
    for key in ("default", "numba", "numpy"):
        mem = results["memory"]["seed_cell"].get(key, {})
        if "peak_rss_mib" in mem:
            rows.append(
                (
                    f"peak RSS of a fresh process simulating the seed cell ({key})",
                    f"{mem['peak_rss_mib']:.0f} MiB (imports + warm-up "
                    f"{mem['baseline_rss_mib']:.0f}, the run adds {mem['task_rss_mib']:.0f})",
                    f"< 200 MB ({MEMORY_TARGET_MIB:.0f} MiB)" if key == "default" else "—",
                    _met(mem["peak_rss_mib"] < MEMORY_TARGET_MIB) if key == "default" else "—",
                )
            )
    for row in results["qubit_lattice"]:
        mem = row.get("memory", {})
        if "peak_rss_mib" in mem:
            rows.append(
                (
                    f"peak RSS, qubit_lattice n = {row['n']} run",
                    f"{mem['peak_rss_mib']:.0f} MiB (run adds {mem['task_rss_mib']:.0f})",
                    "—",
                    "—",
                )
            )
    scaling = results["scaling"]
    for key, label in (("trajectories", "trajectories"), ("steps", "steps")):
        if key in scaling:
            rows.append(
                (
                    f"time ∝ {label}^slope, seed model (all points; largest 4)",
                    f"{scaling[key]['slope']:.2f}; {scaling[key]['slope_largest_4']:.2f}",
                    "≈ 1",
                    "—",
                )
            )
    if "dimension" in scaling:
        for name, fit in scaling["dimension"]["backends"].items():
            slope = fit["slope"]
            rows.append(
                (
                    f"qubit_lattice time/traj-step ∝ d^slope, d ≥ "
                    f"{scaling['dimension']['fit_from_d']} ({name})",
                    "n/a" if slope is None else f"{slope:.2f}",
                    "≈ 1 (d or d·log d), not 2",
                    _met(None if slope is None else slope < 1.5),
                )
            )
    dask = scaling.get("dask")
    if dask and "clusters" in dask:
        available = [dask.get("cores_available_before"), dask.get("cores_available_after")]
        available_text = "/".join(f"{c:.1f}" for c in available if c is not None)
        plain = dask.get("plain_processes")
        for kind, cluster in dask["clusters"].items():
            walls = cluster["wall_s"]
            estimate = cluster.get("speedup_expected_on_2_free_cores")
            expected = "" if estimate is None else f"; CPU-time estimate {estimate:.2f}×"
            if "median_round_speedup" in cluster:
                expected += f"; median of rounds {cluster['median_round_speedup']:.2f}×"
                if plain:
                    share = cluster["median_round_speedup"] / plain["median_round_speedup"]
                    expected += f", {share:.0%} of no-Dask's"
            rows.append(
                (
                    f"Dask sweep 2 σ × 4 seeds, 2 vs 1 workers ({kind})",
                    f"{cluster['speedup_2_vs_1']:.2f}× ({walls['1']:.2f} s → {walls['2']:.2f} s; "
                    f"2 workers used {cluster['cores_used']['2']:.2f} cores; "
                    f"{available_text} free before/after{expected})",
                    "≥ 1.7×",
                    _met(cluster["speedup_2_vs_1"] >= 1.7),
                )
            )
        if plain:
            walls, cores = plain["wall_s"], plain["cores_used"]
            rows.append(
                (
                    "the same sweep, 2 vs 1 plain processes without Dask (the ceiling)",
                    f"{plain['speedup_2_vs_1']:.2f}× ({walls['1']:.2f} s → {walls['2']:.2f} s; "
                    f"median of rounds {plain['median_round_speedup']:.2f}×; "
                    f"1 process used {cores['1']:.2f} cores, 2 used {cores['2']:.2f})",
                    "—",
                    "—",
                )
            )
    big = results.get("big_cell")
    if big:
        for run in big["runs"]:
            if "peak_rss_mib" not in run:
                continue
            rows.append(
                (
                    f"big cell {run['n_traj']:,} trajectories, block {run['block_size']:,}: "
                    "peak RSS",
                    f"{run['peak_rss_mib']:.0f} MiB (run adds {run['task_rss_mib']:.0f}; "
                    f"output {run['output_mib']:.0f})",
                    "set by block size",
                    "—",
                )
            )
    return rows


def markdown(results: dict[str, Any]) -> str:
    """Both tables as Markdown."""
    lines = ["| what | trajectory-steps/s | × noise floor |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in throughput_rows(results)]
    lines += ["", "| check | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in target_rows(results)]
    return "\n".join(lines)


def _reference_line(axis, x: list[float], y: list[float], slope: float, label: str, style: str):
    """A line of the given log–log slope through the geometric middle of the data."""
    x = np.asarray(x, float)
    x0, y0 = np.exp(np.mean(np.log(x))), np.exp(np.mean(np.log(np.asarray(y, float))))
    axis.plot(x, y0 * (x / x0) ** slope, style, color="grey", lw=1, label=label)


def plot(results: dict[str, Any], path: Path) -> None:
    """Write the scaling figure (2×2 log–log panels) to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    scaling = results["scaling"]
    figure, axes = plt.subplots(2, 2, figsize=(10, 8))
    panels = axes.ravel()

    for axis, key, xlabel in (
        (panels[0], "trajectories", "trajectories"),
        (panels[1], "steps", "time steps"),
    ):
        data = scaling.get(key)
        if not data:
            axis.set_visible(False)
            continue
        x = data["n_traj"] if key == "trajectories" else data["n_steps"]
        fixed = (
            f"{data['n_steps']} steps"
            if key == "trajectories"
            else f"{data['n_traj']} trajectories"
        )
        axis.loglog(x, data["cpu_s"], "o-", label=f"default kernel (slope {data['slope']:.2f})")
        _reference_line(axis, x, data["cpu_s"], 1.0, "slope 1", "--")
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_xlabel(f"number of {xlabel}")
        axis.set_ylabel("CPU time [s]")
        axis.set_title(f"mass_superposition, {fixed}")
        axis.legend()
        axis.grid(True, which="both", alpha=0.3)

    axis = panels[2]
    data = scaling.get("dimension")
    if data:
        d = data["d"]
        for name, fit in data["backends"].items():
            label = name if fit["slope"] is None else f"{name} (slope {fit['slope']:.2f})"
            axis.loglog(d, fit["cpu_s_per_trajectory_step"], "o-", label=label)
        first = next(iter(data["backends"].values()))["cpu_s_per_trajectory_step"]
        tail = [(x, y) for x, y in zip(d, first, strict=True) if x >= data["fit_from_d"]]
        tail_d, tail_t = [x for x, _ in tail], [y for _, y in tail]
        _reference_line(axis, tail_d, tail_t, 1.0, "∝ d", "--")
        _reference_line(axis, tail_d, tail_t, 2.0, "∝ d²", ":")
        d_log_d = np.asarray(tail_d, float) * np.log2(tail_d)
        scale = np.exp(np.mean(np.log(tail_t) - np.log(d_log_d)))
        axis.plot(tail_d, scale * d_log_d, "-.", color="grey", lw=1, label="∝ d·log d")
        axis.set_xlabel("Hilbert dimension d = 2ⁿ")
        axis.set_ylabel("CPU time per trajectory-step [s]")
        axis.set_title("qubit_lattice")
        axis.legend()
        axis.grid(True, which="both", alpha=0.3)
    else:
        axis.set_visible(False)

    axis = panels[3]
    dask = scaling.get("dask")
    if dask and dask.get("clusters"):
        workers = [1, 2]
        for kind, cluster in dask["clusters"].items():
            walls = [cluster["wall_s"][str(w)] for w in workers]
            (line,) = axis.loglog(
                workers,
                walls,
                "o-",
                label=f"{kind}: {cluster['speedup_2_vs_1']:.2f}× with 2 "
                f"(used {cluster['cores_used']['2']:.1f} cores)",
            )
            axis.loglog(workers, [walls[0], walls[0] / 2], "--", color=line.get_color(), lw=1)
        plain = dask.get("plain_processes")
        if plain:
            walls = [plain["wall_s"][str(w)] for w in workers]
            axis.loglog(
                workers,
                walls,
                "s:",
                color="black",
                label=f"plain processes, no Dask (ceiling): {plain['speedup_2_vs_1']:.2f}×",
            )
        axis.plot([], [], "--", color="grey", lw=1, label="ideal (slope −1)")
        available = dask.get("cores_available_before")
        if available is not None:
            axis.plot([], [], " ", label=f"cores free before the sweep: {available:.1f} of 2")
        axis.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        axis.yaxis.set_major_formatter(ScalarFormatter())
        axis.yaxis.set_minor_formatter(NullFormatter())
        axis.set_xticks(workers, [str(w) for w in workers])
        axis.set_xlabel("Dask workers (1 thread each) or plain processes")
        axis.set_ylabel("wall time of the sweep [s]")
        axis.set_title(
            f"{dask['cells']} cells (2 σ × 4 seeds), {dask['n_traj_per_cell']} traj × "
            f"{dask['n_steps']} steps"
        )
        axis.legend(fontsize="x-small", loc="lower left")  # four sweeps: keep it inside
        axis.grid(True, which="both", alpha=0.3)
    else:
        axis.text(0.5, 0.5, "Dask sweep not measured", ha="center", va="center")
        axis.set_axis_off()

    figure.suptitle("cq_core scaling (one core unless stated; least of repeated runs)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
