"""One job per sweep: its cells (when they fit one batch), its summary, its figures and tables.

The workflow runs each sweep's work that needs no other process in one job, so that a sweep
pays for one Python start-up and one import of NumPy, xarray, Zarr and matplotlib instead of
one per batch, summary, figure and table (issue 17: the default run was 34 such processes).
The job is ``python -m cq_core steps STEPS_JSON --batch-options ...``: ``STEPS_JSON`` is a list
of ``python -m cq_core`` command lines (``run-batch``, ``summarise``, ``figure``, ``table``, and
nothing else), run one after the other in the job's process.

* A sweep whose cells fit one batch (``batch.cells_per_job``) runs that batch first; a bigger
  sweep's batches are jobs of their own (on a cluster they run side by side), and its sweep job
  starts when they are done.
* Then the summary, merged from the per-cell statistics written as the cells were stored.
* Then every figure and table that ``sweeps.<name>.analysis.figures`` names.

Execution settings (``--threads``, the Dask options) are not part of ``STEPS_JSON``: they come
after ``--batch-options`` on the command line and are appended to a ``run-batch`` step, so
changing them never reruns a job (the steps are the rule's params, its rerun trigger).

:func:`sweep_outputs` and :func:`sweep_steps` are the two functions the workflow calls; they
are plain functions of the checked configuration, tested without Snakemake.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout

__all__ = [
    "FIGURE_OUTPUTS",
    "STEP_COMMANDS",
    "Output",
    "figure_paths",
    "parse_steps",
    "summary_target",
    "sweep_outputs",
    "sweep_steps",
]

STEP_COMMANDS = ("run-batch", "summarise", "figure", "table")
"""The ``python -m cq_core`` commands a step may run."""


@dataclass(frozen=True)
class Output:
    """One file a sweep job writes: its path below ``results/<sweep>/`` and how the HTML report
    shows it (``caption`` is a file of workflow/report/; ``None``: not in the report)."""

    path: str
    caption: str | None = None
    category: str = ""
    subcategory: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)


def _shown(path: str, caption: str, category: str, subcategory: str, **labels: str) -> Output:
    return Output(path, caption, category, subcategory, labels)


FIGURE_OUTPUTS: dict[str, dict[str, Output]] = {
    "trajectories": {
        "png": _shown(
            "figures/trajectories.png",
            "trajectories.rst",
            "Trajectories",
            "seed Fig. 1: realisations",
            figure="x-y plane, Bloch sphere, <σz>(t)",
        ),
        "pdf": Output("figures/trajectories.pdf"),
    },
    "mean_field": {
        "png": _shown(
            "figures/mean_field.png",
            "mean_field.rst",
            "Trajectories",
            "realisations vs. mean field",
            figure="phase space, Bloch sphere, <σz>(t)",
        ),
        "pdf": Output("figures/mean_field.pdf"),
    },
    "histograms": {
        "png": _shown(
            "figures/histograms.png",
            "histograms.rst",
            "Histograms",
            "seed Fig. 2: <σz> densities",
            figure="one panel per σ",
        ),
        "pdf": Output("figures/histograms.pdf"),
    },
    "decoherence": {
        "png": _shown(
            "figures/{sweep}_decoherence.png",
            "decoherence.rst",
            "Decoherence",
            "C(t) and Γ(σ) per sweep",
            figure="C(t) per σ, fitted Γ(σ)",
        ),
        "pdf": Output("figures/{sweep}_decoherence.pdf"),
    },
    "rate_vs_axis": {
        "png": _shown(
            "figures/{sweep}_rate_vs_axis.png",
            "rate_vs_axis.rst",
            "Decoherence",
            "Γ against a sweep axis",
            figure="fitted Γ against the grid axis, power-law slope",
        ),
        "pdf": Output("figures/{sweep}_rate_vs_axis.pdf"),
    },
    "convergence": {
        "png": _shown(
            "figures/{sweep}_convergence.png",
            "convergence.rst",
            "Convergence",
            "weak order in dt",
            figure="weak error of C(t) and E⟨σz⟩ against dt",
        ),
        "pdf": Output("figures/{sweep}_convergence.pdf"),
    },
    "born": {
        "csv": _shown(
            "tables/born.csv",
            "born_table.rst",
            "Born rule",
            "Born rule and martingale per σ",
            format="raw CSV",
        ),
        "html": _shown(
            "tables/born.html",
            "born_table.rst",
            "Born rule",
            "Born rule and martingale per σ",
            format="HTML table",
        ),
    },
    "phase_space": {
        "png": _shown(
            "figures/phase_space.png",
            "phase_space.rst",
            "Phase space",
            "master equation beside the trajectories",
            figure="ϱ_LL, ϱ_RR, |ϱ_LR| on (q, p)",
        ),
        "marginals_png": _shown(
            "figures/phase_space_marginals.png",
            "phase_space.rst",
            "Phase space",
            "master equation beside the trajectories",
            figure="q and p marginals of ϱ_LL, ϱ_RR",
        ),
    },
}
"""Figure (or table) name in ``analysis.figures`` → its files, by output name. The phase-space
figure is PNG only: its panels are images either way, and a PDF costs another full draw."""


def figure_paths(results: str, sweep: str, figure: str) -> dict[str, Output]:
    """The files of one figure of a sweep, paths below ``results/<sweep>/`` made whole.

    Raises ValueError for a figure not in :data:`FIGURE_OUTPUTS`, naming the valid ones."""
    if figure not in FIGURE_OUTPUTS:
        raise ValueError(f"unknown figure {figure!r}; valid: {', '.join(FIGURE_OUTPUTS)}")
    base = Path(results) / sweep
    return {
        key: Output(str(base / out.path.format(sweep=sweep)), out.caption, out.category,
                    out.subcategory, {"sweep": sweep, **out.labels})
        for key, out in FIGURE_OUTPUTS[figure].items()
    }  # fmt: skip


def summary_target(results: str, sweep: str) -> str:
    """The summary's ``zarr.json``: the workflow names a store by it (no directory output)."""
    return str(Path(results) / sweep / layout.SUMMARY_STORE / "zarr.json")


def sweep_outputs(
    results: str, sweep: str, figures: Sequence[str], own_batch: str | None
) -> dict[str, Output]:
    """Every file the sweep job writes, by output name: ``manifest`` (when the job runs the
    sweep's one batch, ``own_batch`` = its manifest), ``summary``, then ``<figure>_<key>`` for
    each file of each figure in ``figures`` (config order)."""
    outputs = {"manifest": Output(own_batch)} if own_batch else {}
    outputs["summary"] = Output(summary_target(results, sweep))
    for figure in figures:
        for key, out in figure_paths(results, sweep, figure).items():
            outputs[f"{figure}_{key}"] = out
    return outputs


def _figure_step(
    figure: str,
    files: Mapping[str, Output],
    *,
    summary: str,
    manifests: Sequence[str],
    mean_field_manifests: Sequence[str],
    settings: Mapping[str, Any],
) -> list[str]:
    dpi = ["--dpi", str(settings["dpi"])]
    if figure in ("trajectories", "mean_field"):
        return [
            "figure", figure, "--cells", *manifests,
            "--mean-field-cells", *mean_field_manifests,
            "--realisations", str(settings["realisations"]), *dpi,
            "--output", files["png"].path, files["pdf"].path,
        ]  # fmt: skip
    if figure in ("histograms", "decoherence", "rate_vs_axis", "convergence"):
        axis = settings.get("rate_axis") if figure == "rate_vs_axis" else None
        return [
            "figure", figure, "--summary", summary, *dpi, *(["--axis", axis] if axis else []),
            "--output", files["png"].path, files["pdf"].path,
        ]  # fmt: skip
    if figure == "born":
        return [
            "table", "born", "--summary", summary,
            "--output", files["csv"].path, "--html", files["html"].path,
        ]  # fmt: skip
    if figure == "phase_space":
        phase = settings["phase_space"]
        return [
            "figure", "phase_space", "--cells", *manifests,
            "--sigma", str(phase["sigma"]), "--grid", *map(str, phase["grid"]),
            "--times", *map(str, phase["times"]), *dpi,
            "--output", files["png"].path, "--marginals-output", files["marginals_png"].path,
        ]  # fmt: skip
    raise ValueError(f"unknown figure {figure!r}; valid: {', '.join(FIGURE_OUTPUTS)}")


def sweep_steps(
    results: str,
    sweep: str,
    *,
    analysis: Mapping[str, Any],
    manifests: Sequence[str],
    figures: Sequence[str] = (),
    batch: tuple[str, str] | None = None,
    numerics_version: str | None = None,
    mean_field_manifests: Sequence[str] = (),
    settings: Mapping[str, Any] | None = None,
) -> list[list[str]]:
    """The sweep job's steps, each the command line of one ``python -m cq_core`` command.

    Parameters
    ----------
    analysis
        The sweep's checked summary settings (``time_slices``, ``hist_bins``, ``fit_window``).
    manifests
        Every batch manifest of the sweep (batch order).
    figures
        Names in ``analysis.figures`` (keys of :data:`FIGURE_OUTPUTS`).
    batch
        ``(cells_json, manifest)`` when the job runs the sweep's one batch itself.
    mean_field_manifests
        The manifests of the sweep's mean-field twin (the trajectories figures draw it).
    settings
        Figure settings: ``dpi``, ``realisations``, ``rate_axis`` (the axis of the
        ``rate_vs_axis`` figure; None: its default), and ``phase_space`` (``sigma``, ``grid``,
        ``times``) when the phase-space figure is asked for.
    """
    sweep_dir = str(Path(results) / sweep)
    steps: list[list[str]] = []
    if batch is not None:
        cells, manifest = batch
        step = ["run-batch", "--sweep-dir", sweep_dir, "--cells", cells, "--manifest", manifest]
        if numerics_version is not None:
            step += ["--numerics-version", numerics_version]
        steps.append(step)
    summary = summary_target(results, sweep)
    analysis_json = json.dumps(dict(analysis), sort_keys=True, separators=(",", ":"))
    steps.append(
        ["summarise", "--sweep-dir", sweep_dir, "--analysis", analysis_json,
         "--output", summary, *manifests]
    )  # fmt: skip
    for figure in figures:
        steps.append(
            _figure_step(
                figure,
                figure_paths(results, sweep, figure),
                summary=summary,
                manifests=manifests,
                mean_field_manifests=mean_field_manifests,
                settings=settings or {},
            )
        )
    return steps


def parse_steps(text: str, batch_options: Sequence[str] = ()) -> list[list[str]]:
    """The steps of ``python -m cq_core steps`` from their JSON, checked before any runs.

    Each step is a non-empty list of strings whose first is one of :data:`STEP_COMMANDS`;
    ``batch_options`` (threads, Dask settings) are appended to each ``run-batch`` step.
    Raises ValueError naming the step otherwise.
    """
    try:
        steps = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"steps: not JSON ({err})") from None
    if not isinstance(steps, list) or not steps:
        raise ValueError("steps: expected a non-empty JSON list of command lines")
    checked = []
    for i, step in enumerate(steps):
        if not (isinstance(step, list) and step and all(isinstance(arg, str) for arg in step)):
            raise ValueError(f"steps[{i}]: expected a non-empty list of strings, got {step!r}")
        if step[0] not in STEP_COMMANDS:
            raise ValueError(
                f"steps[{i}]: {step[0]!r} is not a step command; valid: {', '.join(STEP_COMMANDS)}"
            )
        checked.append(step + list(batch_options) if step[0] == "run-batch" else step)
    return checked
