"""Tables of a sweep: the Born-rule and martingale check as a pandas DataFrame.

:func:`born_table` takes a sweep summary (``summary.zarr``, :func:`cq_core.analysis.summarise`)
or the trajectories themselves (a cell from :func:`cq_core.simulate`, a sweep from
:func:`cq_core.open_sweep`; the same statistics are then computed with
:mod:`cq_core.analysis`) and returns one row per σ. Writing it (``DataFrame.to_csv``) is left
to the caller; :func:`born_table_html` renders a table as a small standalone HTML page
(the pipeline's report shows it inline).

docs/physics.md, "Checks of a run": when σz commutes with H_I, ``E[⟨σz⟩_t] = ⟨σz⟩_0`` for
all t, and the fraction of trajectories ending near |L⟩ tends to ``|⟨L|ψ0⟩|²``.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import xarray as xr

from . import analysis
from .analysis.checks import SWEEP_ALPHA, binomial_se, born_interval, check_statistics
from .analysis.grid_axes import axis_name, grid_axes, point_attrs, point_label

__all__ = ["BORN_COLUMNS", "born_table", "born_table_html"]

BORN_COLUMNS = (
    "sweep",
    "model",
    "mode",
    "sigma",
    "n_used",
    "n_flagged",
    "t_final",
    "sigma_z_0",
    "sigma_z_T",
    "sigma_z_T_se",
    "martingale_z",
    "coherence_T",
    "fraction_L",
    "fraction_L_ci_low",
    "fraction_L_ci_high",
    "born_weight",
    "born_in_ci",
    "martingale_p_holm",
    "born_z",
    "born_p_holm",
    "checks_passed",
)
"""Columns of :func:`born_table`, in order (the CSV header)."""


def _born_summary(ds: xr.Dataset) -> xr.Dataset:
    """The summary variables the table needs, computed from trajectories (lazy → loaded)."""
    ds = analysis.as_sweep(ds)
    parts = xr.merge(
        [
            analysis.sigma_z_moments(ds),
            analysis.coherence_curve(ds),
            analysis.born_statistics(ds),
            analysis.flagged_count(ds).rename("n_flagged").to_dataset(),
        ],
        compat="override",
        join="exact",
        combine_attrs="drop",
    )
    parts["n_trajectories"] = xr.full_like(
        parts["n_flagged"], ds.sizes["seed"] * ds.sizes["trajectory"]
    )
    parts.attrs = dict(ds.attrs)
    return parts


def _axis_value(point: xr.Dataset, axis: str):
    """A grid axis's value at one point for its table column (a vector axis: its text)."""
    if axis_name(axis) != axis:
        return point_label(point, (axis,)).split(" = ", 1)[1]
    value = point[axis].values.item()
    return float(value) if isinstance(value, int | float) else value


def _point_rows(
    summary: xr.Dataset, checks: xr.Dataset, confidence: float, ci_method: str
) -> list[dict]:
    """The rows of one grid point (one per σ), columns :data:`BORN_COLUMNS`."""
    attrs = point_attrs(summary)  # a mode axis: this point's mode
    last = summary.isel(time=-1)
    first = summary.isel(time=0)
    n_used = (summary["n_trajectories"] - summary["n_flagged"]).astype(int)
    rows = []
    for sigma in summary["sigma"].values:
        check = checks.sel(sigma=sigma)
        n = int(n_used.sel(sigma=sigma))
        fraction = float(summary["born_fraction"].sel(sigma=sigma))
        successes = int(round(fraction * n)) if n > 0 else 0
        if n > 0:
            low, high = born_interval(successes, n, confidence, ci_method)
        else:
            low = high = np.nan
        weight = float(summary["born_weight"].sel(sigma=sigma))
        initial = float(first["sigma_z_mean"].sel(sigma=sigma))
        final = float(last["sigma_z_mean"].sel(sigma=sigma))
        final_se = float(last["sigma_z_se"].sel(sigma=sigma))
        rows.append(
            {
                "sweep": attrs.get("sweep", ""),
                "model": attrs.get("model", ""),
                "mode": attrs.get("mode", ""),
                "sigma": float(sigma),
                "n_used": n,
                "n_flagged": int(summary["n_flagged"].sel(sigma=sigma)),
                "t_final": float(summary["time"][-1]),
                "sigma_z_0": initial,
                "sigma_z_T": final,
                "sigma_z_T_se": final_se,
                "martingale_z": float(check["z"].sel(check="martingale")),
                "coherence_T": float(last["coherence"].sel(sigma=sigma)),
                "fraction_L": successes / n if n > 0 else np.nan,
                "fraction_L_ci_low": low,
                "fraction_L_ci_high": high,
                "born_weight": weight,
                "born_in_ci": bool(low <= weight <= high),
                "martingale_p_holm": float(check["p_holm"].sel(check="martingale")),
                "born_z": float(check["z"].sel(check="born")),
                "born_p_holm": float(check["p_holm"].sel(check="born")),
                "checks_passed": not bool(
                    check["rejected"].sel(check=["martingale", "born"]).any()
                ),
            }
        )
    return rows


def born_table(
    data: xr.Dataset, *, confidence: float = 0.95, ci_method: str = "exact"
) -> pd.DataFrame:
    """Born-rule and martingale check per σ, one row per σ (per grid point and σ).

    Parameters
    ----------
    data
        A summary with ``sigma_z_mean``, ``sigma_z_se``, ``coherence`` (sigma, time) and
        ``born_fraction``, ``born_weight``, ``n_trajectories``, ``n_flagged`` (sigma); or
        trajectories (``status`` present: a cell or an :func:`cq_core.open_sweep` Dataset).
    confidence
        Level of the binomial confidence interval of the fraction.
    ci_method
        ``scipy.stats.binomtest(...).proportion_ci`` method: ``"exact"`` (Clopper–Pearson),
        ``"wilson"`` or ``"wilsoncc"``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BORN_COLUMNS`: ``sigma_z_0`` = E[⟨σz⟩_0]; ``sigma_z_T`` ±
        ``sigma_z_T_se`` = E[⟨σz⟩_T] at the last stored time T = ``t_final``;
        ``martingale_z`` = (E[⟨σz⟩_T] − E[⟨σz⟩_0]) / SE;
        ``coherence_T`` = C(T) (how far the trajectories have collapsed);
        ``fraction_L`` = fraction of the ``n_used`` unflagged trajectories with ⟨σz⟩_T > 0
        (ending nearer |L⟩) with its binomial confidence interval; ``born_weight`` =
        |⟨L|ψ0⟩|² (of the basis pair); ``born_in_ci`` = whether the interval contains it;
        ``born_z`` = (fraction − weight) / binomial SE; ``*_p_holm`` = Holm-adjusted p-values
        over every check of the summary (:mod:`cq_core.analysis.checks`: the σ rows share
        their noise, so single rows are not read alone); ``checks_passed`` = neither check
        of the row rejected at the family-wise level ``SWEEP_ALPHA`` (in ``attrs["alpha"]``).
        A summary with grid axes (``lam``, ``r0_index``, …) gives a row per grid point and σ
        and a column per axis before ``sigma`` (``r0``: the vector as text); the Holm
        procedure then runs over every check of every point.
    """
    summary = _born_summary(data) if "status" in data else data
    summary = summary.load()
    checks = check_statistics(summary, alpha=SWEEP_ALPHA)  # Holm over every grid point
    axes = grid_axes(summary)
    rows = []
    for index in np.ndindex(*[summary.sizes[a] for a in axes]):
        where = dict(zip(axes, index, strict=True))
        point = summary.isel(where)
        # grid axes: one column each, between mode and sigma (mode itself has its column)
        columns = {axis_name(a): _axis_value(point, a) for a in axes if a not in BORN_COLUMNS}
        rows += [
            {**columns, **row}
            for row in _point_rows(point, checks.isel(where), confidence, ci_method)
        ]
    names = list(BORN_COLUMNS)
    names[names.index("sigma") : names.index("sigma")] = [
        axis_name(a) for a in axes if a not in BORN_COLUMNS
    ]
    table = pd.DataFrame(rows, columns=names)
    table.attrs = {
        "confidence": confidence,
        "ci_method": ci_method,
        "alpha": SWEEP_ALPHA,
        "equation": "E[<sigma_z>_t] = <sigma_z>_0; P(end near |L>) -> |<L|psi0>|^2",
    }
    return table


def round_to_se(value: float, se: float) -> str:
    """``value ± se`` with se to 2 significant digits and value to the same decimal place."""
    if not (np.isfinite(value) and np.isfinite(se)) or se <= 0:
        return f"{value:.4g}" if np.isfinite(value) else "–"
    decimals = max(0, 1 - int(np.floor(np.log10(se))))
    return f"{value:.{decimals}f} ± {se:.{decimals}f}"


def _cell_text(value) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _html_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    """The compact columns of the HTML table: numbers rounded to their standard error."""
    header = [
        "σ", "n used", "flagged", "⟨σz⟩₀", "E⟨σz⟩_T", "z", "p (Holm)", "C(T)",
        "fraction near |L⟩", "Born weight", "z", "p (Holm)", "checks",
    ]  # fmt: skip
    axes = [c for c in table.columns if c not in BORN_COLUMNS]  # grid axes, if any
    header = axes + header
    rows, failed = [], []
    for _, row in table.iterrows():
        n = max(int(row["n_used"]), 1)
        p = float(row["fraction_L"])
        fraction_se = binomial_se(p, n)
        passed = bool(row["checks_passed"]) and int(row["n_flagged"]) == 0
        rows.append(
            [_cell_text(row[axis]) for axis in axes]
            + [
                f"{row['sigma']:g}",
                str(int(row["n_used"])),
                str(int(row["n_flagged"])),
                f"{row['sigma_z_0']:.3g}",
                round_to_se(float(row["sigma_z_T"]), float(row["sigma_z_T_se"])),
                f"{row['martingale_z']:+.2f}",
                f"{row['martingale_p_holm']:.2g}",
                f"{row['coherence_T']:.2g}",
                round_to_se(p, fraction_se),
                f"{row['born_weight']:.3g}",
                f"{row['born_z']:+.2f}",
                f"{row['born_p_holm']:.2g}",
                "pass" if passed else "FAIL",
            ]
        )
        failed.append(not passed)
    return header, rows, failed


def born_table_html(table: pd.DataFrame) -> str:
    """A :func:`born_table` as a standalone HTML page (UTF-8, inline CSS, no scripts).

    Compact columns, each value rounded to its standard error, z-scores and Holm-adjusted
    p-values shown; rows failing a check (or with discarded trajectories) are highlighted.
    The CSV keeps every column at full precision.
    """
    sweep = str(table["sweep"].iloc[0]) if len(table) else ""
    model = str(table["model"].iloc[0]) if len(table) else ""
    names, rows, failed = _html_rows(table)
    header = "".join(f"<th>{html.escape(name)}</th>" for name in names)
    body = []
    for cells, bad in zip(rows, failed, strict=True):
        style = ' class="check"' if bad else ""
        body.append(f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    alpha = table.attrs.get("alpha", SWEEP_ALPHA)
    title = f"Born rule and martingale check: sweep {sweep} ({model})"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; font-size: 13px; margin: 1em; max-width: 60em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }}
th {{ background: #f0f0f0; }}
tr.check td {{ background: #fff0e0; }}
</style></head><body>
<h3>{html.escape(title)}</h3>
<p>Martingale: E⟨σz⟩<sub>T</sub> ± SE against ⟨σz⟩<sub>0</sub>. Born rule: the fraction of
trajectories ending near |L⟩ ± its binomial SE against |⟨L|ψ0⟩|². z = difference / SE; the
σ rows share their Brownian increments, so the checks are decided together: p-values are
Holm-adjusted over every check of the sweep, and a row fails when one is ≤ {alpha:g}
(a correct engine fails the default run's checks with probability ≤ 1 %).</p>
<table><thead><tr>{header}</tr></thead><tbody>
{chr(10).join(body)}
</tbody></table></body></html>
"""
