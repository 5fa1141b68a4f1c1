"""The ``phase_space`` figure of a sweep: the master equation beside the stored trajectories
(docs/physics.md, "The master equation on phase space").

``sweeps.<name>.analysis.figures: [..., phase_space]`` asks for it; the optional block
``sweeps.<name>.analysis.phase_space`` sets ``sigma`` (one of the sweep's; default its first),
``grid`` ([Nq, Np] cells; default [64, 64]) and ``times`` (stored times after 0, at most
:data:`MAX_TIMES`; default the sweep's ``analysis.time_slices`` after 0). The figure job

1. solves the master equation for the sweep's model, σ and excess v
   (:func:`cq_core.solve_master_equation`) on that grid, up to the last time;
2. bins the stored trajectories of that σ, every seed pooled, onto the same grid
   (:func:`cq_core.analysis.phase_space.bin_ensemble`) and compares the marginals
   (:func:`cq_core.analysis.phase_space.compare_marginals`);
3. draws the panels and the marginals (:mod:`cq_core.plots.phase_space`).

:func:`check_phase_space` runs while the workflow is parsed, so ``snakemake -n`` refuses a bad
block (or a model the solver cannot take) with a ``ValueError`` naming the key.
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ..models import Model
from .layout import sweep_dir_of

if TYPE_CHECKING:  # matplotlib and the solver's SciPy are imported by the jobs that draw
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_GRID",
    "MAX_GRID",
    "MAX_TIMES",
    "PhaseSpaceSettings",
    "add_arguments",
    "check_phase_space",
    "phase_space_figures",
    "run",
]

LOGGER = logging.getLogger("cq_core.cli")

DEFAULT_GRID = (64, 64)
"""Cells (Nq, Np) of the figure's grid unless ``analysis.phase_space.grid`` says otherwise."""
MIN_GRID, MAX_GRID = 8, 512
"""Fewest and most cells per side."""
MAX_TIMES = 6
"""Most time slices one figure draws (each is a column pair)."""
MAX_SOLVER_TIMES = 10_001
"""Most equally spaced output times of the solve that holds every asked time."""
MARGINAL_COARSEN = 4
"""Grid cells per bin of the marginal comparison."""


@dataclass(frozen=True)
class PhaseSpaceSettings:
    """What one phase_space figure draws: σ, the grid (Nq, Np) and the times after 0."""

    sigma: float
    grid: tuple[int, int]
    times: tuple[float, ...]

    def to_params(self) -> dict[str, Any]:
        """Plain values (the rule's params: a change reruns only the figure)."""
        return {"sigma": self.sigma, "grid": list(self.grid), "times": list(self.times)}


def _error(name: str, key: str, message: str) -> ValueError:
    return ValueError(f"invalid config: sweeps.{name}.{key}: {message}")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_sigma(name: str, sweep: Mapping[str, Any], value: Any) -> float:
    sigmas = [float(s) for s in sweep["sigma"]]
    if value is None:
        return sigmas[0]
    key = "analysis.phase_space.sigma"
    if not _is_number(value):
        raise _error(name, key, f"must be a number, one of the sweep's sigma {sigmas}")
    for sigma in sigmas:
        if math.isclose(float(value), sigma, rel_tol=1e-12, abs_tol=0.0):
            return sigma
    raise _error(name, key, f"{value!r} is not one of the sweep's sigma {sigmas}")


def _check_grid(name: str, value: Any) -> tuple[int, int]:
    if value is None:
        return DEFAULT_GRID
    ok = (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
        and all(MIN_GRID <= n <= MAX_GRID for n in value)
    )
    if not ok:
        raise _error(
            name,
            "analysis.phase_space.grid",
            f"must be [Nq, Np], two integers from {MIN_GRID} to {MAX_GRID}, got {value!r}",
        )
    return int(value[0]), int(value[1])


def _check_times(name: str, sweep: Mapping[str, Any], value: Any) -> tuple[float, ...]:
    """Stored times after 0 (multiples of dt·save_every up to t_final), at most MAX_TIMES."""
    key = "analysis.phase_space.times"
    t_final = float(sweep.get("t_final", 1.0))
    saved = float(sweep.get("dt", 1.0e-4)) * int(sweep.get("save_every", 1))
    if value is None:
        slices = (sweep.get("analysis") or {}).get("time_slices") or [t_final]
        value = [t for t in slices if _is_number(t) and t > 1e-9 * saved] or [t_final]
        source = f"{key} (default: the sweep's analysis.time_slices after 0)"
    else:
        source = key
    if not isinstance(value, (list, tuple)) or not value:
        raise _error(name, key, "give a non-empty list of times after 0")
    if len(value) > MAX_TIMES:
        raise _error(name, source, f"at most {MAX_TIMES} times, got {len(value)}")
    times = []
    for i, t in enumerate(value):
        steps = t / saved if _is_number(t) else math.nan
        if not (
            0 < t <= t_final * (1 + 1e-9)
            and math.isfinite(steps)
            and abs(steps - round(steps)) <= 1e-6 * max(1.0, steps)
        ):
            raise _error(
                name,
                f"{source}[{i}]" if source == key else source,
                f"{t!r} is not a stored time: a multiple of dt·save_every = {saved:g} in "
                f"(0, t_final = {t_final:g}]",
            )
        times.append(float(f"{round(steps) * saved:.12g}"))
    if len(set(round(t / saved) for t in times)) != len(times) or times != sorted(times):
        raise _error(name, source, f"times must increase, got {list(value)}")
    return tuple(times)


def check_phase_space(
    name: str, sweep: Mapping[str, Any], model: Model, figure_key: str
) -> PhaseSpaceSettings:
    """Check ``sweeps.<name>.analysis.phase_space`` and the sweep's model for the figure.

    ``model`` is the sweep's model (built from its params); ``figure_key`` the key that asks
    for the figure (``sweeps.<name>.analysis.figures[i]``), named when the solver cannot take
    the model or the sweep stores no stochastic trajectories. Raises ``ValueError``
    ``invalid config: <key>: ...``; returns the settings with the defaults filled in.
    """
    block = (sweep.get("analysis") or {}).get("phase_space") or {}
    if not isinstance(block, Mapping):
        raise _error(name, "analysis.phase_space", "must be a mapping {sigma, grid, times}")
    unknown = sorted(set(block) - {"sigma", "grid", "times"})
    if unknown:
        raise _error(
            name, f"analysis.phase_space.{unknown[0]}", "unknown key; valid: sigma, grid, times"
        )
    sigma = _check_sigma(name, sweep, block.get("sigma"))
    grid = _check_grid(name, block.get("grid"))
    times = _check_times(name, sweep, block.get("times"))
    if sweep.get("mode", "pure") == "mean_field":
        raise ValueError(
            f"invalid config: {figure_key}: the phase_space figure needs stochastic "
            "trajectories; this sweep has mode: mean_field"
        )
    try:
        from ..solver.master_equation import check_master_equation_model

        check_master_equation_model(model, sigma)
    except ValueError as err:
        raise ValueError(
            f"invalid config: {figure_key}: the phase_space figure cannot solve this "
            f"sweep's model: {err}"
        ) from None
    return PhaseSpaceSettings(sigma=sigma, grid=grid, times=times)


def solver_times(times: Sequence[float]) -> tuple[int, float]:
    """``(n_times, t_final)`` of an equally spaced solve from 0 that holds every time."""
    t_final = float(max(times))
    for n_times in range(2, MAX_SOLVER_TIMES + 1):
        steps = [t / t_final * (n_times - 1) for t in times]
        if all(abs(s - round(s)) <= 1e-6 for s in steps):
            return n_times, t_final
    raise ValueError(f"times {list(times)} lie on no grid of at most {MAX_SOLVER_TIMES} steps")


def pooled_ensemble(sweep: xr.Dataset, sigma: float, times: Sequence[float]) -> xr.Dataset:
    """The trajectories of one σ of an opened sweep, every seed pooled, at ``times`` (loaded).

    Returns a Dataset with ``classical`` (trajectory, time, coord), ``psi`` or ``rho`` and
    ``status_time`` (trajectory), as :func:`cq_core.analysis.phase_space.bin_ensemble` reads.
    """
    cells = sweep.sel(sigma=sigma, method="nearest")
    if not math.isclose(float(cells["sigma"]), sigma, rel_tol=1e-12):
        raise ValueError(f"the sweep stores no cells of sigma = {sigma!r}")
    names = [v for v in ("classical", "psi", "rho", "status_time") if v in cells]
    cells = cells[names].sel(time=list(times), method="nearest").load()
    pooled = cells.stack(pooled=("seed", "trajectory")).reset_index("pooled", drop=True)
    pooled = pooled.drop_vars(["seed", "trajectory"], errors="ignore")
    pooled = pooled.rename(pooled="trajectory").transpose("trajectory", ...)
    return pooled.assign_coords(trajectory=np.arange(pooled.sizes["trajectory"]))


def phase_space_figures(
    sweep: xr.Dataset, model: Model, settings: PhaseSpaceSettings
) -> tuple[Figure, Figure]:
    """Solve, bin and draw: (the (q, p) panels, the marginal comparison) of one σ of a sweep.

    ``sweep``: the cells of the sweep (:func:`cq_core.open_sweep`); ``model``: its model.
    """
    from .. import plots
    from ..analysis.phase_space import bin_ensemble, compare_marginals
    from ..solver.master_equation import solve_master_equation

    n_times, t_final = solver_times(settings.times)
    solution = solve_master_equation(
        model,
        sigma=settings.sigma,
        t_final=t_final,
        n_times=n_times,
        excess=float(sweep.attrs.get("excess", 0.0)),
        shape=settings.grid,
    )
    solution = solution.sel(time=[0.0, *settings.times], method="nearest")
    ensemble = pooled_ensemble(sweep, settings.sigma, solution["time"].values)
    estimate = bin_ensemble(ensemble, solution)
    coarsen = MARGINAL_COARSEN if min(settings.grid) >= 4 * MARGINAL_COARSEN else 1
    comparison = compare_marginals(ensemble, solution, coarsen=coarsen)
    described = sweep.assign_attrs(model=sweep.attrs.get("model", model.name))
    title = (
        f"{plots.model_title(described)}, {plots.sigma_text(described, settings.sigma)}: "
        r"$\varrho(q, p, t)$, master equation and trajectories"
    )
    panels = plots.plot_phase_space(solution, estimate, title=title)
    marginals = plots.plot_marginals(
        comparison,
        ("q", "p"),
        title=f"{plots.model_title(described)}, {plots.sigma_text(described, settings.sigma)}: "
        "marginals of the diagonal elements",
    )
    return panels, marginals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``python -m cq_core figure phase_space`` (besides --output, --dpi)."""
    parser.add_argument(
        "--cells",
        required=True,
        nargs="+",
        type=Path,
        help="cell stores or batch manifests of the sweep",
    )
    parser.add_argument("--sigma", required=True, type=float, help="the sigma to draw")
    parser.add_argument(
        "--grid", required=True, nargs=2, type=int, metavar=("NQ", "NP"), help="grid cells"
    )
    parser.add_argument(
        "--times", required=True, nargs="+", type=float, help="stored times after 0 to draw"
    )
    parser.add_argument(
        "--marginals-output",
        required=True,
        nargs="+",
        type=Path,
        help="files of the marginal comparison (format from the suffix)",
    )


def run(args: argparse.Namespace) -> None:
    """``python -m cq_core figure phase_space``: open the cells (stores or batch manifests),
    draw both figures and write them to ``--output`` and ``--marginals-output``."""
    from ..cells import CellSpec
    from ..plots import PNG_DPI
    from ..sweep import open_store, open_sweep
    from ..version import NUMERICS_VERSION
    from .batch import manifest_cells

    cells: list[Path] = []
    for path in args.cells:
        if path.name == "zarr.json":  # a store named by its metadata file
            path = path.parent
        cells += manifest_cells([path]) if path.suffix == ".json" else [path]
    model = CellSpec.from_json(open_store(cells[0]).attrs["cell_spec"]).build_model()
    sweep = open_sweep(sweep_dir_of(cells[0]), cells=cells, numerics_version=NUMERICS_VERSION)
    settings = PhaseSpaceSettings(args.sigma, tuple(args.grid), tuple(args.times))
    panels, marginals = phase_space_figures(sweep, model, settings)
    for figure, outputs in ((panels, args.output), (marginals, args.marginals_output)):
        for path in outputs:
            path.parent.mkdir(parents=True, exist_ok=True)
            figure.savefig(path, dpi=args.dpi or PNG_DPI)
            LOGGER.info("wrote %s", path)
