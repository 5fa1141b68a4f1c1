"""Command line of the pipeline: ``python -m cq_core run-cell | summarise`` (SPEC §4).

The Snakemake rules call these thin commands (``shell:``), so a rule's code is its command
line and the physics lives in the package: editing or touching a workflow file does not mark
every stored cell out of date, while a change of :data:`cq_core.NUMERICS_VERSION` does (the
cell rule passes it as a parameter).

``run-cell``
    Run one cell (a :class:`cq_core.cells.CellSpec` given as JSON) on Dask and store it
    atomically as Zarr. Execution settings (block size, threads, scheduler address) are
    options: they never change a stored number.
``summarise``
    Open the given cells with :func:`cq_core.open_sweep`, compute the summary of
    :func:`cq_core.analysis.summarise` and store it atomically as ``summary.zarr``.

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


def _quiet_distributed() -> None:
    """Keep the job log readable: distributed logs every worker start and stop at INFO.

    distributed sets its loggers' levels when it is first imported, so import it first.
    """
    import distributed  # noqa: F401

    logging.getLogger("distributed").setLevel(logging.WARNING)


def _run_cell(args: argparse.Namespace) -> None:
    from .cells import CellSpec, remove_stale_temporaries, run_cell, write_cell

    _quiet_distributed()
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
    cell = run_cell(
        spec,
        block_size=args.block_size,
        scheduler_address=args.scheduler_address or None,
        threads=args.threads,
        processes={"auto": None, "true": True, "false": False}[args.processes],
        connect_timeout=args.connect_timeout,
        worker_timeout=args.worker_timeout,
        log=logging.getLogger("cq_core.cells"),
    )
    path = write_cell(cell, args.output)
    LOGGER.info(
        "stored %s in %.2f s (cell hash %s)", path, time.perf_counter() - start, spec.config_hash
    )


def _summarise(args: argparse.Namespace) -> None:
    import dask

    from .analysis import summarise, write_summary
    from .sweep import open_sweep
    from .version import NUMERICS_VERSION

    analysis = json.loads(args.analysis)
    start = time.perf_counter()
    sweep = open_sweep(args.sweep_dir, cells=args.cells or None, numerics_version=NUMERICS_VERSION)
    LOGGER.info(
        "opened %d cell(s) of %s: %s", sweep.attrs["n_cells"], args.sweep_dir, dict(sweep.sizes)
    )
    summary = summarise(
        sweep,
        time_slices=analysis["time_slices"],
        bins=analysis["hist_bins"],
        fit_window=analysis.get("fit_window"),
    )
    with dask.config.set(scheduler="threads", num_workers=args.threads):
        path = write_summary(summary, args.output)
    LOGGER.info("stored %s in %.2f s", path, time.perf_counter() - start)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cq_core", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    cell = commands.add_parser("run-cell", help="run one cell on Dask and store it as Zarr")
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
    cell.add_argument("--connect-timeout", type=float, default=10.0, help="seconds")
    cell.add_argument("--worker-timeout", type=float, default=60.0, help="seconds")
    cell.add_argument(
        "--numerics-version",
        default=None,
        help="fail unless the installed cq_core has this numerics version",
    )
    cell.set_defaults(action=_run_cell)

    summary = commands.add_parser("summarise", help="summarise the cells of a sweep")
    summary.add_argument("--sweep-dir", required=True, type=Path, help="results/<sweep>")
    summary.add_argument(
        "--analysis",
        required=True,
        help='JSON: {"time_slices": [...], "hist_bins": N, "fit_window": [t0, t1] | null}',
    )
    summary.add_argument("--output", required=True, type=Path, help="the summary.zarr to write")
    summary.add_argument("--threads", type=int, default=1, help="Dask threads")
    summary.add_argument("cells", nargs="*", type=Path, help="cell stores (default: all)")
    summary.set_defaults(action=_summarise)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m cq_core``; returns the exit status."""
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        args.action(args)
    except (ValueError, ConnectionError, FileNotFoundError) as err:
        LOGGER.error("%s", err)
        return 2
    except Exception:
        LOGGER.exception("failed")
        return 1
    return 0
