"""The ``figure`` and ``table`` commands of ``python -m cq_core``: draw from stored results.

Each function takes the parsed arguments of its command (cq_core/cli.py) and writes the files
it names; the figures are drawn by :mod:`cq_core.plots` from stored cells and summaries only.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from .layout import sweep_dir_of

__all__ = [
    "cell_paths",
    "figure_paths",
    "figure_summary",
    "figure_tradeoff",
    "open_cells",
    "save",
    "store_path",
    "table_born",
]

LOGGER = logging.getLogger("cq_core.cli")


def store_path(path: Path) -> Path:
    """A store's folder: the workflow names a store by its ``zarr.json`` (no directory output)."""
    path = Path(path)
    return path.parent if path.name == "zarr.json" else path


def cell_paths(paths: Sequence[Path]) -> list[Path]:
    """Cell stores, with each batch manifest (``.json``) replaced by the stores it lists."""
    from .batch import manifest_cells

    cells: list[Path] = []
    for path in paths:
        cells += manifest_cells([path]) if Path(path).suffix == ".json" else [store_path(path)]
    return cells


def save(fig, outputs: Sequence[Path], dpi: int | None) -> None:
    """Write ``fig`` to every path in ``outputs`` (format from the suffix) and log it."""
    from ..plots import PNG_DPI

    for i, path in enumerate(outputs):
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi or PNG_DPI)
        LOGGER.info("wrote %s", path)
        if i == 0 and fig.get_layout_engine() is not None:
            # the layout is in figure coordinates, the same at any dpi: keep the one the
            # first file computed rather than solving it again for each further format
            fig.set_layout_engine("none")


def open_cells(cells: Sequence[Path]):
    """The sweep of the given cell stores (``results/<sweep>/cells/sigma=…/seed=….zarr``)."""
    from ..version import NUMERICS_VERSION
    from .sweep_dataset import open_sweep

    cells = cell_paths(cells)
    sweep_dir = sweep_dir_of(cells[0])
    return open_sweep(sweep_dir, cells=cells, numerics_version=NUMERICS_VERSION)


def figure_paths(args: argparse.Namespace) -> None:
    from .. import plots

    if args.realisations < 1:
        raise ValueError(f"--realisations must be >= 1, got {args.realisations}")
    cells = open_cells(args.cells)
    mean_field = open_cells(args.mean_field_cells) if args.mean_field_cells else None
    if args.figure == "mean_field":
        if mean_field is None:
            raise ValueError("the mean_field figure needs --mean-field-cells")
        fig = plots.plot_mean_field_comparison(cells, mean_field, realisations=args.realisations)
    else:
        fig = plots.plot_trajectories(cells, mean_field, realisations=args.realisations)
    save(fig, args.output, args.dpi)


def figure_summary(args: argparse.Namespace) -> None:
    from .. import plots
    from .summary_store import open_summary

    summary = open_summary(store_path(args.summary))
    options = {key: getattr(args, key, None) for key in ("axis", "time")}
    save(plots.summary_figure(args.figure, summary, **options), args.output, args.dpi)


def figure_tradeoff(args: argparse.Namespace) -> None:
    from .. import plots
    from .summary_store import open_summary

    fig = plots.plot_tradeoff([open_summary(store_path(path)) for path in args.summaries])
    save(fig, args.output, args.dpi)


def table_born(args: argparse.Namespace) -> None:
    from ..tables import born_table, born_table_html
    from .summary_store import open_summary

    table = born_table(open_summary(store_path(args.summary)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.output, index=False)
    LOGGER.info("wrote %s (%d rows)", args.output, len(table))
    if args.html is not None:
        args.html.write_text(born_table_html(table), encoding="utf-8")
        LOGGER.info("wrote %s", args.html)
