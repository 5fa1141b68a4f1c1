"""Verify every cell store under ``results/``, and the ``verify`` command (issue 9).

:func:`verify_results` runs :func:`verify_store` on every cell store under ``results/`` and,
given the pipeline configuration, reports stores whose recorded cell is not the cell the
configuration asks for at that path (*stale* stores). :func:`stale_reason` is the cheap form
of that check (root metadata only) for the workflow to call while parsing.

Command line::

    python -m cq_core verify results/ [--config config/config.yaml ...] [--repair]

prints one line per bad cell store (its path, then its problems) and exits with status 1 if
there is one, 0 if every store is sound (2 for unusable arguments). ``--repair`` moves every
bad store aside (to ``<store>.damaged``) and removes its sweep's ``summary.zarr``, so that the
next ``snakemake`` run recomputes exactly those cells (and the aggregates built from them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .cell_spec import CellSpec
from .layout import SUMMARY_STORE, cell_id, find_cell_stores, sweep_dir_of
from .locks import TEMPORARY_SUFFIX
from .store_checks import _read_attrs, stale_reason, verify_store

__all__ = [
    "DAMAGED_SUFFIX",
    "cell_stores",
    "load_config",
    "main",
    "move_aside",
    "repair",
    "verify_results",
]

DAMAGED_SUFFIX = ".damaged"
"""``--repair`` moves ``seed=0.zarr`` to ``seed=0.zarr.damaged`` (``.damaged.1``, … if taken)."""


# --------------------------------------------------------------------- the results tree


def cell_stores(results_dir: str | os.PathLike) -> list[Path]:
    """Every cell store under ``results_dir``: ``<sweep>/cells/[<axis>=*/…]sigma=*/seed=*.zarr``."""
    root = Path(results_dir)
    return sorted(
        store
        for cells in root.glob("*/cells")
        for store in find_cell_stores(cells)
        if store.is_dir() and TEMPORARY_SUFFIX not in store.name
    )


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def load_config(*paths: str | os.PathLike) -> dict[str, Any]:
    """The pipeline configuration from YAML files, deep-merged in order (as ``--configfile``).

    The schema defaults are filled in (Snakemake's ``validate``) when ``schema.yaml`` lies
    beside the first file, as it does in ``config/``; an invalid configuration raises.
    """
    import yaml

    config: dict[str, Any] = {}
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            config = _deep_merge(config, yaml.safe_load(handle) or {})
    schema = Path(paths[0]).with_name("schema.yaml") if paths else None
    if schema is not None and schema.is_file():
        from snakemake.utils import validate

        validate(config, str(schema))
    return config


def _config_cells(config: Mapping[str, Any], sweep: str) -> dict[tuple[str, int], CellSpec]:
    from .sweep_config import sweep_cell_specs

    sweeps = config.get("sweeps") or {}
    if sweep not in sweeps:
        return {}
    return sweep_cell_specs(sweep, sweeps[sweep], base_seed=config.get("base_seed", 0))


def _path_problem(store: Path) -> str | None:
    """The recorded cell must be the one the store's path names (sigma=<label>/seed=<seed>)."""
    try:
        spec = CellSpec.from_json(_read_attrs(store)["cell_spec"])
    except (KeyError, TypeError, ValueError):
        return None  # reported by verify_store
    expected = f"{cell_id(spec.point_label, spec.seed)}.zarr"
    depth = expected.count("/") + 1
    if "/".join(store.parts[-depth:]) != expected:
        return f"the store holds sigma={spec.sigma!r}, seed={spec.seed} but its path names another"
    return None


def verify_results(
    results_dir: str | os.PathLike,
    config: Mapping[str, Any] | str | os.PathLike | None = None,
) -> dict[Path, list[str]]:
    """Verify every cell store under ``results_dir``; return ``{store: problems}``.

    Every store found is a key (an empty list: sound). Besides :func:`verify_store`, each
    store must sit at the path of the cell it records, and, when ``config`` is given (the
    configuration as Snakemake sees it, or the path of a YAML file, see :func:`load_config`),
    a store at the path of one of the configuration's cells must hold exactly that cell
    (:func:`stale_reason`). Stores of cells that the configuration no longer names are only
    checked for damage: the pipeline never reads them. Raises ``ValueError`` for an invalid
    configuration.
    """
    if config is not None and not isinstance(config, Mapping):
        config = load_config(config)
    wanted: dict[str, dict[tuple[str, int], CellSpec]] = {}
    report: dict[Path, list[str]] = {}
    for store in cell_stores(results_dir):
        spec = None
        if config is not None:
            cells_dir = next(p for p in store.parents if p.name == "cells")
            sweep = cells_dir.parent.name
            if sweep not in wanted:
                wanted[sweep] = _config_cells(config, sweep)
            seed = store.stem.partition("=")[2]
            point = store.parent.relative_to(cells_dir).as_posix()
            label = point.removeprefix("sigma=") if "/" not in point else point
            cell = (label, int(seed) if seed.isdigit() else -1)
            spec = wanted[sweep].get(cell)
        problems = verify_store(store, spec)
        where = _path_problem(store)
        if where is not None:
            problems.append(where)
        reason = stale_reason(store, spec) if spec is not None else None
        if reason is not None:
            problems.append(reason)
        report[store] = problems
    return report


def move_aside(store: str | os.PathLike) -> Path:
    """Move a bad store out of the pipeline's way (``<store>.damaged[.N]``); return where to.

    The damaged copy is kept for inspection (no glob of the pipeline matches its name).
    """
    store = Path(store)
    target = store.with_name(store.name + DAMAGED_SUFFIX)
    number = 0
    while target.exists():
        number += 1
        target = store.with_name(f"{store.name}{DAMAGED_SUFFIX}.{number}")
    os.replace(store, target)
    return target


def repair(store: str | os.PathLike) -> str:
    """Move a bad cell store aside and remove its sweep's summary; say what was done.

    Snakemake does not recreate a missing intermediate file while the outputs built from it
    are present and newer, so moving the store alone would not make ``snakemake`` recompute
    it. Removing ``<results>/<sweep>/summary.zarr`` (an aggregate built from that store,
    recomputed from the cells) makes the next run rebuild the summary, which needs the cell:
    exactly that cell is recomputed, then the aggregates and figures that depend on it.
    """
    store = Path(store)
    done = [f"moved aside to {move_aside(store).name}"]
    summary = sweep_dir_of(store) / SUMMARY_STORE
    if summary.is_dir():
        shutil.rmtree(summary)
        done.append(f"removed {summary.parent.name}/{summary.name}")
    return ", ".join(done)


# -------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The verify command's arguments (``python -m cq_core verify`` and ``cq_core.verify``)."""
    parser.add_argument("results", type=Path, help="the results directory (e.g. results/)")
    parser.add_argument(
        "--config",
        action="append",
        type=Path,
        default=[],
        help="pipeline configuration (repeatable, deep-merged in order); stores that do not "
        "hold the configuration's cell are reported as stale",
    )
    parser.add_argument(
        "--repair",
        action="store_true",
        help=f"move every bad store aside (<store>{DAMAGED_SUFFIX}) and remove its sweep's "
        "summary.zarr, so that the next snakemake run recomputes that cell",
    )
    return parser


DESCRIPTION = (
    "Check every cell store under a results directory: every chunk is read and compared "
    "with the recorded cell. One line per bad store; exit status 1 if any."
)


def _parser() -> argparse.ArgumentParser:
    return add_arguments(
        argparse.ArgumentParser(prog="python -m cq_core.verify", description=DESCRIPTION)
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m cq_core.verify``; returns the exit status."""
    return run(_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run verify with parsed arguments (:func:`add_arguments`); returns the exit status."""
    if not args.results.is_dir():
        print(f"verify: {args.results} is not a directory", file=sys.stderr)
        return 2
    try:
        report = verify_results(args.results, load_config(*args.config) if args.config else None)
    except (OSError, ValueError) as err:
        print(f"verify: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # e.g. snakemake's WorkflowError for a config off its schema
        print(f"verify: invalid configuration: {err}", file=sys.stderr)
        return 2
    bad = {store: problems for store, problems in report.items() if problems}
    for store, problems in bad.items():
        line = f"{store}: {'; '.join(problems)}"
        if args.repair:
            line += f" -> {repair(store)}"
        print(line, flush=True)
    print(
        f"verify: {len(report)} cell store(s) under {args.results}, {len(bad)} bad"
        + (" (moved aside: rerun snakemake to recompute them)" if bad and args.repair else ""),
        file=sys.stderr,
    )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
