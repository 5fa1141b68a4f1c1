"""``simulate``: check a run, integrate it and label the result as an ``xarray.Dataset``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from ..models import Model, params_to_json
from ..version import NUMERICS_VERSION, __version__
from .integrate import STATUS_CODES, Trajectories, integrate
from .settings import RunSettings, check_run
from .time_grid import step_times

__all__ = ["simulate", "to_dataset"]


def to_dataset(model: Model, settings: RunSettings, result: Trajectories) -> xr.Dataset:
    """Label the raw arrays of :func:`integrate` as the Dataset described in :func:`simulate`."""
    s = settings
    times = step_times(s.saved_steps, s.dt)  # on dt's decimal grid: sel(time=0.1) selects
    trajectory = np.arange(s.first_trajectory, s.first_trajectory + s.n_traj, dtype=np.int64)
    levels = np.array(model.level_labels, dtype=object)
    status_time = np.where(result.status_step >= 0, step_times(result.status_step, s.dt), np.nan)
    data_vars = {
        "classical": (
            ("trajectory", "time", "coord"),
            result.classical,
            {"long_name": "classical phase-space point Z", "units": "model units"},
        ),
        "status": (
            ("trajectory",),
            result.status,
            {
                "long_name": "trajectory status",
                "flag_values": list(STATUS_CODES.values()),
                "flag_meanings": " ".join(STATUS_CODES),
            },
        ),
        "status_time": (
            ("trajectory",),
            status_time,
            {"long_name": "time at which the trajectory was flagged and frozen (NaN: never)"},
        ),
    }
    if s.mode == "density":
        data_vars["rho"] = (
            ("trajectory", "time", "ket", "bra"),
            result.quantum,
            {"long_name": "conditional density matrix ρ"},
        )
        level_coords = {"ket": levels, "bra": levels}
    else:
        data_vars["psi"] = (
            ("trajectory", "time", "level"),
            result.quantum,
            {"long_name": "conditional state vector ψ"},
        )
        level_coords = {"level": levels}
    coords = {
        "trajectory": trajectory,
        "time": ("time", times, {"units": "model units"}),
        "coord": np.array(model.coord_labels, dtype=object),
        **level_coords,
        "sigma": ((), s.sigma, {"long_name": f"noise strength ({model.sigma_name})"}),
        "seed": ((), np.int64(s.seed)),
    }
    attrs = {
        "model": model.name,
        "model_params": params_to_json(model.params),
        "sigma_name": model.sigma_name,
        "basis_pair": list(model.basis_pair),
        "dt": s.dt,
        "t_final": s.t_final,
        "n_steps": s.n_steps,
        "save_every": s.save_every,
        "method": s.method,
        "mode": s.mode,
        "backend": s.backend,
        "excess": s.excess,
        "base_seed": s.base_seed,
        "cq_core_version": __version__,
        "numerics_version": NUMERICS_VERSION,
        "equations": "arXiv:2208.11722; cq-sweep docs/physics.md",
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def simulate(
    model: Model,
    *,
    sigma: float,
    n_traj: int,
    t_final: float,
    dt: float,
    seed: int,
    progress: Callable[[int, int], None] | None = None,
    **options: Any,
) -> xr.Dataset:
    """Simulate ``n_traj`` classical–quantum trajectories of ``model`` (docs/physics.md).

    Optional settings (``options``) default to :data:`cq_core.solver.settings.DEFAULTS`.

    Parameters
    ----------
    model
        From :func:`cq_core.get_model` or a user-built :class:`cq_core.Model`.
    sigma
        Noise strength (> 0): the noise kernel is ``sigma * model.noise_shape``.
    n_traj, first_trajectory
        Trajectories ``first_trajectory … first_trajectory + n_traj − 1`` are run. Their Brownian
        increments are fixed by (base_seed, seed, trajectory index) and do not depend on
        sigma, so a block run alone equals the same slice of one big run, bit for bit.
    t_final, dt
        Final time and step (model units); t_final must be a whole number of steps.
    save_every
        Store every ``save_every``-th step (0 and t_final are always stored).
    method
        ``"auto"`` (default: ``"exponential"`` for diagonal models, ``"kraus"`` otherwise),
        ``"exponential"``, ``"kraus"`` or ``"euler"`` (see :mod:`cq_core.solver.schemes`).
    mode
        ``"pure"`` (ψ, trade-off saturated), ``"density"`` (ρ, allows ``excess > 0``) or
        ``"mean_field"`` (the deterministic semi-classical path, RK4).
    excess
        Decoherence above the minimum, ``v ≥ 0`` (density mode only).
    backend
        ``"auto"`` uses the kernel generated from the model (:mod:`cq_core.solver.fused`;
        same equations and noise, equal to the NumPy path to rounding) where it covers the run
        and a C compiler is found, else ``"numpy"``, the vectorised NumPy kernel (the readable
        reference); ``"generated"`` insists on the generated kernel.
    progress
        Optional callback ``progress(step, n_steps)``.

    Returns
    -------
    xarray.Dataset
        ``classical`` (trajectory, time, coord); ``psi`` (trajectory, time, level) complex128,
        or ``rho`` (trajectory, time, ket, bra) in density mode; ``status`` (trajectory) with
        CF flags ok / left_domain / non_finite and ``status_time``; scalar coordinates
        ``sigma`` and ``seed``; attrs with the model, its parameters (JSON), dt, method, mode,
        excess and the package and numerics versions.

    Raises
    ------
    ValueError
        For any invalid input, before any work starts (see :mod:`cq_core.solver.settings`).
    """
    settings = check_run(
        model, sigma=sigma, n_traj=n_traj, t_final=t_final, dt=dt, seed=seed, **options
    )
    return to_dataset(model, settings, integrate(model, settings, progress=progress))
