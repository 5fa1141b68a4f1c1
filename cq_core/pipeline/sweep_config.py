"""Check one ``sweeps.<name>`` block of the pipeline configuration and return its cells.

:func:`sweep_cell_specs` and :func:`check_analysis` check one ``sweeps.<name>`` block of the
pipeline configuration (the Snakefile calls them while parsing, so ``snakemake -n`` already
fails on a bad value) and return its cells; every error names the configuration key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..models import get_model, is_registered, registered_models
from .cell_spec import CellSpec
from .layout import sigma_label

__all__ = ["RUN_KEYS", "check_analysis", "sigma_label", "sweep_cell_specs"]


RUN_KEYS = (
    "n_traj",
    "t_final",
    "dt",
    "save_every",
    "method",
    "mode",
    "excess",
    "backend",
    "seed",
)
"""Keys of a sweep that :func:`cq_core.check_run` checks (its messages start with the key)."""


def _model_exists(name: Any) -> bool:
    return is_registered(name)  # a declared builder only; nothing is imported here


def _failing_key(message: str, sigma_index: int, seed_index: int) -> str:
    """The configuration key a :func:`cq_core.check_run` message is about."""
    first = message.split(" ", 1)[0]
    if first == "sigma":
        return f"sigma[{sigma_index}]"
    if first == "seed":
        return f"seeds[{seed_index}]"
    if first in RUN_KEYS:
        return first
    if "would store" in message:  # the memory check: too many trajectories or saved times
        return "n_traj"
    return "params"


def _config_error(name: str, key: str, err: Exception | str) -> ValueError:
    where = "base_seed" if key == "base_seed" else f"sweeps.{name}.{key}"
    return ValueError(f"invalid config: {where}: {err}")


def sweep_cell_specs(
    name: str, sweep: Mapping[str, Any], *, base_seed: int = 0
) -> dict[tuple[str, int], CellSpec]:
    """Check one ``sweeps.<name>`` block and return its cells by ``(sigma_label, seed)``.

    Builds the model (``get_model``), checks every σ and every seed with ``check_run`` and
    rejects duplicate σ (after ``float``) or seed values. The cells come back with their
    kernel resolved (``backend="auto"`` becomes ``"c"``, ``"numba"`` or ``"numpy"`` here), so the
    pipeline's parameters name the kernel that computes the numbers. Raises ``ValueError``
    naming the key, e.g. ``invalid config: sweeps.hist.sigma[1]: sigma must be > 0, got -1.0``.
    """
    model = sweep.get("model")
    if not _model_exists(model):
        raise _config_error(
            name,
            "model",
            f"unknown model {model!r}; valid models: {', '.join(registered_models())} "
            "(declare a user model with @cq_core.register_model or an entry point, "
            "see docs/models.md)",
        )
    params = sweep.get("params") or {}
    if not isinstance(params, Mapping):
        raise _config_error(name, "params", f"must be a mapping, got {params!r}")
    try:
        get_model(model, **params)
    except (ValueError, TypeError) as err:
        raise _config_error(name, "params", err) from err
    for key in ("sigma", "seeds", "n_traj", "t_final", "dt"):
        if key not in sweep:
            raise _config_error(name, key, "missing")
    sigmas, seeds = list(sweep["sigma"]), list(sweep["seeds"])
    for key, values in (("sigma", sigmas), ("seeds", seeds)):
        if not values:
            raise _config_error(name, key, "give at least one value")
    for j, seed in enumerate(seeds):
        if seed in seeds[:j]:
            raise _config_error(name, f"seeds[{j}]", f"duplicate seed {seed!r}")
    run = {key: sweep[key] for key in RUN_KEYS if key in sweep and key != "seed"}
    cells: dict[tuple[str, int], CellSpec] = {}
    labels: dict[str, int] = {}
    backend = None
    for i, sigma in enumerate(sigmas):
        for j, seed in enumerate(seeds):
            spec = CellSpec(
                model=model, params=params, sigma=sigma, seed=seed, base_seed=base_seed, **run
            )
            # check_run's checks of σ and of the seed are independent of each other, so the
            # cells of the first seed and of the first σ check every value: a 10 000-cell
            # sweep is checked in 200 calls, not 10 000
            if i == 0 or j == 0:
                try:
                    settings = spec.check()
                except ValueError as err:
                    key = "base_seed" if str(err).startswith("base_seed") else None
                    raise _config_error(name, key or _failing_key(str(err), i, j), err) from err
                backend = settings.backend
            spec = replace(spec, backend=backend)  # "auto" fixed for this machine
            label = sigma_label(spec.sigma)
            if j == 0 and label in labels:
                raise _config_error(
                    name, f"sigma[{i}]", f"duplicate of sigma[{labels[label]}] = {sigma!r}"
                )
            labels[label] = i
            cells[(label, spec.seed)] = spec
    return cells


def check_analysis(name: str, sweep: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``sweeps.<name>.analysis`` against the sweep; return the summary's settings.

    Time slices must lie in ``[0, t_final]``, ``hist_bins`` be an integer >= 1 and the fit
    window ``[t_start, t_end]`` satisfy ``0 <= t_start < t_end <= t_final``. Returns
    ``{"time_slices", "hist_bins", "fit_window"}`` (the figures list is left out: it does not
    change the summary).
    """
    analysis = sweep.get("analysis") or {}
    t_final = float(sweep["t_final"])
    tolerance = 1e-9 * max(1.0, t_final)
    slices = analysis.get("time_slices", [0.0, t_final])
    if not isinstance(slices, list) or not slices:
        raise _config_error(name, "analysis.time_slices", "give a non-empty list of times")
    for i, t in enumerate(slices):
        if (
            isinstance(t, bool)
            or not isinstance(t, (int, float))
            or not math.isfinite(t)
            or not -tolerance <= t <= t_final + tolerance
        ):
            raise _config_error(
                name, f"analysis.time_slices[{i}]", f"{t!r} is not a time in [0, {t_final!r}]"
            )
    bins = analysis.get("hist_bins", 40)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise _config_error(name, "analysis.hist_bins", f"must be an integer >= 1, got {bins!r}")
    window = analysis.get("fit_window")
    if window is not None:
        ok = (
            isinstance(window, list)
            and len(window) == 2
            and all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in window)
            and -tolerance <= window[0] < window[1] <= t_final + tolerance
        )
        if not ok:
            raise _config_error(
                name,
                "analysis.fit_window",
                f"must be [t_start, t_end] with 0 <= t_start < t_end <= t_final = {t_final!r}, "
                f"got {window!r}",
            )
    return {
        "time_slices": [float(t) for t in slices],
        "hist_bins": int(bins),
        "fit_window": None if window is None else [float(t) for t in window],
    }
