"""Command line of the pipeline: ``python -m cq_core <command>`` (docs/physics.md, §4).

The Snakemake rules call these thin commands (``shell:``), so a rule's code is its command
line and the physics lives in the package: editing or touching a workflow file does not mark
every stored cell out of date, while a change of :data:`cq_core.NUMERICS_VERSION` does (the
cell rule passes it as a parameter).

``run-cell``
    Run one cell (a :class:`cq_core.pipeline.cell_spec.CellSpec` given as JSON) on Dask and store it
    atomically as Zarr. Execution settings (block size, threads, scheduler address) are
    options: they never change a stored number.
``summarise``
    Open the given cells with :func:`cq_core.open_sweep`, compute the summary of
    :func:`cq_core.analysis.summarise` and store it atomically as ``summary.zarr``.
``figure <name>``
    Draw one docs/physics.md figure with :mod:`cq_core.plots` from stored results only and write it
    to the given ``.png``/``.pdf`` paths: ``trajectories`` and ``mean_field`` from cell
    stores (a sweep and, optionally, its mean-field twin), ``histograms`` and
    ``decoherence`` (one row per value of a grid axis), ``rate_vs_axis`` (Γ against
    ``--axis``) and ``convergence`` (weak order in dt) from a ``summary.zarr``,
    ``tradeoff`` from several summaries,
    ``phase_space`` (the master equation beside the trajectories of one σ) from cell stores.
``steps``
    Several of these commands one after the other in this process (a JSON list of their
    command lines): the job of one sweep (:mod:`cq_core.pipeline.sweep_job`).
``table born``
    The Born-rule / martingale table of :func:`cq_core.tables.born_table` from a
    ``summary.zarr``, as CSV (and optionally as a small HTML page for the report).

Progress and errors go to stderr (the rules redirect it to the job's log). Invalid input
exits with status 2 and a one-line message naming the key; other failures with status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

LOGGER = logging.getLogger("cq_core.cli")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("cq_core").setLevel(logging.DEBUG if verbose else logging.INFO)


def _run_cell(args: argparse.Namespace) -> None:
    from .pipeline.cell_spec import CellSpec
    from .pipeline.cell_to_store import run_cell_to_store
    from .pipeline.locks import remove_stale_temporaries

    spec = CellSpec.from_json(args.spec)
    removed = remove_stale_temporaries(args.output)
    for stale in removed:
        LOGGER.info("removed a stale temporary store %s", stale)
    if args.numerics_version is not None:
        from .version import NUMERICS_VERSION

        if args.numerics_version != NUMERICS_VERSION:
            raise ValueError(
                f"--numerics-version {args.numerics_version!r} does not match the installed "
                f"cq_core ({NUMERICS_VERSION!r}): the workflow and the package disagree"
            )
    start = time.perf_counter()
    path = run_cell_to_store(
        spec,
        args.output,
        block_size=args.block_size,
        scheduler_address=args.scheduler_address or None,
        threads=args.threads,
        processes={"auto": None, "true": True, "false": False}[args.processes],
        connect_timeout=args.connect_timeout,
        worker_timeout=args.worker_timeout,
        log=logging.getLogger("cq_core.cells"),
    )
    LOGGER.info(
        "stored %s in %.2f s (cell hash %s)", path, time.perf_counter() - start, spec.config_hash
    )


def _run_batch(args: argparse.Namespace) -> None:
    from .pipeline.analysis_settings import read_analysis_settings
    from .pipeline.batch import run_batch
    from .pipeline.cell_spec import CellSpec
    from .pipeline.layout import cell_store
    from .pipeline.statistics_store import compute_cell_statistics
    from .version import NUMERICS_VERSION

    # distributed is imported (and quietened) only when a cell goes to Dask (dask_client)
    if args.numerics_version is not None and args.numerics_version != NUMERICS_VERSION:
        raise ValueError(
            f"--numerics-version {args.numerics_version!r} does not match the installed "
            f"cq_core ({NUMERICS_VERSION!r}): the workflow and the package disagree"
        )
    specs = [CellSpec.from_dict(cell) for cell in json.loads(args.cells)]
    sweep_dir = Path(args.sweep_dir)
    cells = [
        (cell_store(sweep_dir.parent, sweep_dir.name, s.point_label, s.seed), s) for s in specs
    ]
    analysis = read_analysis_settings(sweep_dir)

    def store_statistics(store: Path, spec: CellSpec) -> None:
        # the summary then merges these instead of reading the trajectories again
        compute_cell_statistics(store, analysis)

    start = time.perf_counter()
    run_batch(
        cells,
        args.manifest,
        block_size=args.block_size,
        threads=args.threads,
        processes={"auto": None, "true": True, "false": False}[args.processes],
        scheduler_address=args.scheduler_address or None,
        connect_timeout=args.connect_timeout,
        worker_timeout=args.worker_timeout,
        dask_min_trajectory_steps=args.dask_min_trajectory_steps,
        after_store=store_statistics if analysis is not None else None,
        log=logging.getLogger("cq_core.batch"),
    )
    LOGGER.info("batch %s done in %.2f s", args.manifest, time.perf_counter() - start)


def _summarise(args: argparse.Namespace) -> None:
    """The sweep's summary merged from its cells' statistics (computed where missing)."""
    from .pipeline.figure_commands import cell_paths, store_path
    from .pipeline.statistics_store import summarise_stores
    from .pipeline.summary_store import write_summary
    from .pipeline.sweep_dataset import sweep_cells
    from .version import NUMERICS_VERSION

    analysis = json.loads(args.analysis)
    start = time.perf_counter()
    cells = cell_paths(args.cells) or sweep_cells(args.sweep_dir)
    summary = summarise_stores(
        cells, analysis, workers=args.threads, numerics_version=NUMERICS_VERSION
    )
    LOGGER.info("merged the statistics of %d cell(s) of %s", len(cells), args.sweep_dir)
    path = write_summary(summary, store_path(args.output))
    LOGGER.info("stored %s in %.2f s", path, time.perf_counter() - start)


def _steps(args: argparse.Namespace) -> None:
    """Several commands in this one process: a sweep's job (cq_core/pipeline/sweep_job.py)."""
    from .pipeline.sweep_job import parse_steps

    steps = parse_steps(args.steps, args.batch_options)
    for i, argv in enumerate(steps, 1):
        start = time.perf_counter()
        code = main(argv)
        if code:
            LOGGER.error("step %d/%d (%s) failed", i, len(steps), " ".join(argv[:2]))
            raise SystemExit(code)
        LOGGER.info("step %d/%d (%s) done in %.2f s", i, len(steps), " ".join(argv[:2]),
                    time.perf_counter() - start)  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    from .pipeline import figure_commands, verify
    from .pipeline.batch import DASK_MIN_TRAJECTORY_STEPS
    from .pipeline.dask_runner import CONNECT_TIMEOUT, WORKER_TIMEOUT

    parser = argparse.ArgumentParser(prog="python -m cq_core", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # -v also after a subcommand (default SUPPRESS: it never overrides one given before it)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def sub(group, name: str, **kwargs) -> argparse.ArgumentParser:
        return group.add_parser(name, parents=[common], **kwargs)

    checker = sub(
        commands,
        "verify",
        help="read every chunk of the stored cells and name damaged or stale ones",
        description=verify.DESCRIPTION,
    )
    verify.add_arguments(checker)
    checker.set_defaults(action=verify.run)

    cell = sub(commands, "run-cell", help="run one cell on Dask and store it as Zarr")
    cell.add_argument("--spec", required=True, help="the cell as JSON (CellSpec.to_json)")
    cell.add_argument("--output", required=True, type=Path, help="the .zarr store to write")
    cell.add_argument("--block-size", type=int, default=None, help="trajectories per Dask task")
    cell.add_argument("--threads", type=int, default=1, help="workers of the local cluster")
    cell.add_argument(
        "--processes",
        choices=("auto", "true", "false"),
        default="auto",
        help="local cluster of worker processes (true) or threads (false); auto decides by the "
        "kernel and the amount of work",
    )
    cell.add_argument("--scheduler-address", default=None, help="an existing Dask scheduler")
    cell.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT, help="seconds")
    cell.add_argument("--worker-timeout", type=float, default=WORKER_TIMEOUT, help="seconds")
    cell.add_argument(
        "--numerics-version",
        default=None,
        help="fail unless the installed cq_core has this numerics version",
    )
    cell.set_defaults(action=_run_cell)

    batch = sub(
        commands, "run-batch", help="store every missing or stale cell of a batch in one process"
    )
    batch.add_argument("--sweep-dir", required=True, type=Path, help="results/<sweep>")
    batch.add_argument("--cells", required=True, help="JSON list of the batch's cells")
    batch.add_argument("--manifest", required=True, type=Path, help="the manifest to write")
    batch.add_argument("--numerics-version", default=None, help="as for run-cell")
    batch.add_argument(
        "--dask-min-trajectory-steps",
        type=int,
        default=DASK_MIN_TRAJECTORY_STEPS,
        help="smaller cells run in this process, without Dask",
    )
    batch.add_argument("--block-size", type=int, default=None, help="trajectories per block")
    batch.add_argument("--threads", type=int, default=1, help="workers of the local cluster")
    batch.add_argument(
        "--processes", choices=("auto", "true", "false"), default="auto", help="as for run-cell"
    )
    batch.add_argument("--scheduler-address", default=None, help="an existing Dask scheduler")
    batch.add_argument("--connect-timeout", type=float, default=CONNECT_TIMEOUT, help="seconds")
    batch.add_argument("--worker-timeout", type=float, default=WORKER_TIMEOUT, help="seconds")
    batch.set_defaults(action=_run_batch)

    summary = sub(commands, "summarise", help="summarise the cells of a sweep")
    summary.add_argument("--sweep-dir", required=True, type=Path, help="results/<sweep>")
    summary.add_argument(
        "--analysis",
        required=True,
        help='JSON: {"time_slices": [...], "hist_bins": N, "fit_window": [t0, t1] | null}',
    )
    summary.add_argument("--output", required=True, type=Path, help="the summary.zarr to write")
    summary.add_argument("--threads", type=int, default=1, help="Dask threads")
    summary.add_argument(
        "cells", nargs="*", type=Path, help="cell stores or batch manifests (default: all stores)"
    )
    summary.set_defaults(action=_summarise)

    figure = sub(commands, "figure", help="draw a figure from stored cells or summaries")
    figures = figure.add_subparsers(dest="figure", required=True)
    for name, help_text in (
        ("trajectories", "seed Fig. 1: realisations in the x-y plane, on the Bloch sphere"),
        ("mean_field", "stochastic realisations against the mean-field path"),
    ):
        paths = sub(figures, name, help=help_text)
        paths.add_argument(
            "--cells", required=True, nargs="+", type=Path, help="cell stores of the sweep"
        )
        paths.add_argument(
            "--mean-field-cells",
            nargs="*",
            type=Path,
            default=[],
            help="cell stores of the mean-field twin sweep (drawn dashed; none: no path)",
        )
        paths.add_argument("--realisations", type=int, default=4, help="how many to draw")
        paths.set_defaults(action=figure_commands.figure_paths)
    for name, help_text in (
        ("histograms", "seed Fig. 2: densities of <sigma_z> at the time slices"),
        ("decoherence", "C(t) per sigma and the fitted Gamma(sigma)"),
        ("rate_vs_axis", "Gamma against one sweep axis, with the power-law slope"),
        ("convergence", "weak error of C(t) and E<sigma_z> against dt, with the weak order"),
    ):
        from_summary = sub(figures, name, help=help_text)
        from_summary.add_argument("--summary", required=True, type=Path, help="summary.zarr")
        if name in ("rate_vs_axis", "convergence"):
            from_summary.add_argument("--axis", default=None, help="the sweep axis (lam, dt, …)")
        if name == "convergence":
            from_summary.add_argument("--time", type=float, default=None, help="fixed time")
        from_summary.set_defaults(action=figure_commands.figure_summary)
    tradeoff = sub(figures, "tradeoff", help="measured Gamma against D2 = sigma^2/2")
    tradeoff.add_argument("summaries", nargs="+", type=Path, help="summary.zarr of each sweep")
    tradeoff.set_defaults(action=figure_commands.figure_tradeoff)
    from .pipeline import phase_space_figure

    phase_space = sub(figures, "phase_space", help="master equation beside the trajectories")
    phase_space_figure.add_arguments(phase_space)
    phase_space.set_defaults(action=phase_space_figure.run)
    for parser_of_figure in figures.choices.values():
        parser_of_figure.add_argument(
            "--output",
            required=True,
            nargs="+",
            type=Path,
            help="files to write; the format follows the suffix (.png, .pdf, .svg)",
        )
        parser_of_figure.add_argument("--dpi", type=int, default=None, help="PNG resolution")

    steps = sub(commands, "steps", help="run several of these commands in one process")
    steps.add_argument(
        "steps", help="JSON list of command lines: run-batch, summarise, figure, table"
    )
    steps.add_argument(
        "--batch-options",
        nargs=argparse.REMAINDER,
        default=[],
        help="the rest of the line is appended to each run-batch step (threads, Dask settings)",
    )
    steps.set_defaults(action=_steps)

    table = sub(commands, "table", help="write a table from a summary")
    tables = table.add_subparsers(dest="table", required=True)
    born = sub(tables, "born", help="Born rule / martingale check per sigma")
    born.add_argument("--summary", required=True, type=Path, help="summary.zarr")
    born.add_argument("--output", required=True, type=Path, help="the .csv to write")
    born.add_argument("--html", type=Path, default=None, help="also an .html view of the table")
    born.set_defaults(action=figure_commands.table_born)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m cq_core``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    if args.command == "verify":  # its own exit statuses and messages
        return args.action(args)
    try:
        args.action(args)
    except (ValueError, ConnectionError, FileNotFoundError) as err:
        LOGGER.error("%s", err)
        return 2
    except Exception:
        LOGGER.exception("failed")
        return 1
    return 0
