"""A trajectory ensemble held against the master-equation solution on the same (q, p) grid
(docs/physics.md, "The master equation on phase space").

The estimator of ``ϱ(z, t) = E[δ(z − Z_t) ρ_t]`` on a cell is the ensemble mean of
``1[Z_t ∈ cell] ρ_t / area``. Its marginals over bins (of q or of p) and its expectation values
are means of per-trajectory quantities, so they are unbiased and come with standard errors;
``∫|ϱ_ab|`` is not (the modulus of a noisy cell estimate is biased upwards), so
:func:`total_coherence` reports it for a solution and is never used for a z-score.

All functions take and return xarray objects. A trajectory counts on the grid at time t while
it is inside the grid and not yet frozen (``status_time`` > t); otherwise it counts in
``escaped``, as the solution's outflow does.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = [
    "ensemble_states",
    "bin_ensemble",
    "compare_marginals",
    "compare_expectations",
    "total_coherence",
]

SE_FLOOR = 1e-9
"""Standard errors at or below this (a degenerate ensemble, e.g. at t = 0, where every
trajectory sits at z0) give NaN z-scores: the comparison is then exact or meaningless."""


def ensemble_states(ensemble: xr.Dataset, solution: xr.Dataset):
    """Per-trajectory ρ, position, and on-grid mask at the solution's times.

    Returns ``rho`` (time, trajectory, d, d), ``q``/``p`` (time, trajectory), ``on_grid``
    (time, trajectory) as NumPy arrays. The ensemble must hold every solution time.
    """
    times = solution["time"].values
    sel = ensemble.sel(time=times, method="nearest")
    if not np.allclose(sel["time"].values, times, atol=1e-9 * max(1.0, times[-1])):
        raise ValueError(
            "the ensemble must be saved at the solution's times "
            f"{times.tolist()}, got {ensemble['time'].values.tolist()}"
        )
    if "rho" in sel:
        rho = sel["rho"].transpose("time", "trajectory", "ket", "bra").values
    else:
        psi = sel["psi"].transpose("time", "trajectory", "level").values
        rho = psi[..., :, None] * psi.conj()[..., None, :]
    z = sel["classical"].transpose("time", "trajectory", "coord").values
    q, p = z[..., 0], z[..., 1]
    stop = ensemble["status_time"].values  # NaN: never frozen
    active = ~(stop[None, :] <= times[:, None] + 1e-12)
    qe, pe = solution["q_edge"].values, solution["p_edge"].values
    on_grid = active & (q >= qe[0]) & (q < qe[-1]) & (p >= pe[0]) & (p < pe[-1])
    return rho, q, p, on_grid


def bin_ensemble(ensemble: xr.Dataset, solution: xr.Dataset) -> xr.Dataset:
    """The ensemble's estimate of ϱ on the solution's grid: ``rho`` (time, q, p, ket, bra)."""
    rho, q, p, on_grid = ensemble_states(ensemble, solution)
    qe, pe = solution["q_edge"].values, solution["p_edge"].values
    nt, n = q.shape
    nq, np_ = len(qe) - 1, len(pe) - 1
    d = rho.shape[-1]
    out = np.zeros((nt, nq * np_, d, d), dtype=complex)
    for t in range(nt):
        ok = on_grid[t]
        iq = np.clip(np.searchsorted(qe, q[t, ok], side="right") - 1, 0, nq - 1)
        ip = np.clip(np.searchsorted(pe, p[t, ok], side="right") - 1, 0, np_ - 1)
        np.add.at(out[t], iq * np_ + ip, rho[t, ok])
    area = (qe[1] - qe[0]) * (pe[1] - pe[0])
    est = out.reshape(nt, nq, np_, d, d) / (n * area)
    return xr.Dataset(
        {"rho": (("time", "q", "p", "ket", "bra"), est)},
        coords={k: solution[k] for k in ("time", "q", "p", "ket", "bra")},
        attrs={"long_name": "ensemble estimate of ϱ (cell averages)", "n_traj": n},
    )


def _coarse_edges(edges: np.ndarray, factor: int) -> np.ndarray:
    coarse = edges[::factor]
    return coarse if coarse[-1] == edges[-1] else np.append(coarse, edges[-1])


def _binned_mass(solution: xr.Dataset, key: str, bins: np.ndarray) -> np.ndarray:
    """∫ over each bin of ``key`` (and over the other coordinate) of the diagonal elements
    ϱ_aa: shape (time, bins, d). The bin edges must be edges of the solution's grid."""
    edges = solution[f"{key}_edge"].values
    other = solution["p_edge" if key == "q" else "q_edge"].values
    starts = np.searchsorted(edges, bins[:-1] - 1e-9 * (edges[1] - edges[0]))
    if not np.allclose(edges[starts], bins[:-1], rtol=0, atol=1e-9 * abs(edges).max()):
        raise ValueError(f"the reference solution's {key} grid does not nest in the solution's")
    diag = np.real(np.einsum("tqpaa->tqpa", solution["rho"].values))
    axis = 1 if key == "q" else 2
    mass = diag.sum(axis=3 - axis) * (edges[1] - edges[0]) * (other[1] - other[0])
    return np.add.reduceat(mass, starts, axis=1)


def compare_marginals(
    ensemble: xr.Dataset,
    solution: xr.Dataset,
    *,
    coarsen: int = 4,
    min_count: int = 20,
    reference: xr.Dataset | None = None,
) -> xr.Dataset:
    """q- and p-marginals of each diagonal element ϱ_aa, solution against ensemble.

    Bins are ``coarsen`` grid cells wide. For a bin B the compared quantity is the mass
    ``∫_B ϱ_aa`` (the other coordinate integrated out): for the ensemble the mean of
    ``1[Z_t ∈ B] (ρ_t)_aa`` with its standard error. Bins whose effective number of
    contributing trajectories ``(Σx)²/Σx²`` is below ``min_count`` get NaN z-scores: there
    a few trajectories dominate and the error estimate is not yet normal (e.g. the residual
    ϱ_LL in the region of the R branch, carried by the rare trajectories not yet collapsed).

    ``reference``: the same equation solved on a grid with half the cells per side (every
    second edge of ``solution``'s; ``coarsen`` must then be even). Its difference from
    ``solution`` on each bin is the estimated grid error ``{axis}_grid_error``, added in
    quadrature to the standard error in the z-score.

    Returns a Dataset with ``{axis}_solution``, ``{axis}_estimate``, ``{axis}_se``,
    ``{axis}_grid_error``, ``{axis}_z`` (time, {axis}_bin, level) for axis in (q, p), and
    ``max_abs_z``.
    """
    rho, q, p, on_grid = ensemble_states(ensemble, solution)
    n = q.shape[1]
    levels = solution["ket"].values
    diag_est = np.real(np.einsum("tnaa->tna", rho))  # (time, trajectory, d)
    out = {}
    coords = {"time": solution["time"].values, "level": levels}
    for values, key in ((q, "q"), (p, "p")):
        coarse = _coarse_edges(solution[f"{key}_edge"].values, coarsen)
        sol = _binned_mass(solution, key, coarse)
        grid_error = np.zeros_like(sol)
        if reference is not None:
            grid_error = np.abs(sol - _binned_mass(reference, key, coarse))
        idx = np.searchsorted(coarse, values, side="right") - 1  # (t, n)
        nb = len(coarse) - 1
        onehot = (idx[..., None] == np.arange(nb)) & on_grid[..., None]  # (t, n, bins)
        x = onehot[..., None] * diag_est[:, :, None, :]  # (t, n, bins, d)
        est = x.mean(axis=1)
        se = x.std(axis=1, ddof=1) / np.sqrt(n)
        with np.errstate(divide="ignore", invalid="ignore"):  # Kish's effective sample size
            count = np.sum(x, axis=1) ** 2 / np.sum(x**2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            error = np.sqrt(se**2 + grid_error**2)
            z = np.where((count >= min_count) & (se > SE_FLOOR), (est - sol) / error, np.nan)
        dims = ("time", f"{key}_bin", "level")
        coords[f"{key}_bin"] = 0.5 * (coarse[1:] + coarse[:-1])
        out[f"{key}_solution"] = (dims, sol)
        out[f"{key}_estimate"] = (dims, est)
        out[f"{key}_se"] = (dims, se)
        out[f"{key}_grid_error"] = (dims, grid_error)
        out[f"{key}_z"] = (dims, z)
    ds = xr.Dataset(out, coords=coords, attrs={"n_traj": n, "coarsen": coarsen})
    zs = np.concatenate([np.abs(ds[f"{k}_z"].values).ravel() for k in ("q", "p")])
    # no testable bin at all (a tiny or degenerate ensemble): NaN, without a warning
    ds["max_abs_z"] = float(np.nanmax(zs)) if np.isfinite(zs).any() else np.nan
    return ds


def compare_expectations(
    ensemble: xr.Dataset, solution: xr.Dataset, *, reference: xr.Dataset | None = None
) -> xr.Dataset:
    """⟨σz⟩, ⟨σx⟩, ⟨σy⟩ of the on-grid part and the escaped fraction, as time series.

    σ refers to the model's ``basis_pair`` (a, b): σz = ϱ_aa − ϱ_bb, σx = 2 Re ϱ_ab,
    σy = −2 Im ϱ_ab, integrated over the grid (solution) or averaged with
    ``1[on grid]`` over trajectories (ensemble, with standard errors). Returns
    ``{name}_solution``, ``{name}_estimate``, ``{name}_se``, ``{name}_grid_error``,
    ``{name}_z`` (time); ``reference`` as in :func:`compare_marginals`.
    """
    a, b = solution.attrs.get("basis_pair", [0, solution.sizes["ket"] - 1])
    rho, q, p, on_grid = ensemble_states(ensemble, solution)
    n = q.shape[1]

    def observables(r):
        return {
            "sigma_z": np.real(r[..., a, a] - r[..., b, b]),
            "sigma_x": 2 * np.real(r[..., a, b]),
            "sigma_y": -2 * np.imag(r[..., a, b]),
        }

    def solved(state):
        obs = observables(_total(state))
        obs["escaped"] = np.real(np.trace(state["escaped"].values, axis1=1, axis2=2))
        return obs

    per_traj = observables(rho * on_grid[..., None, None])
    per_traj["escaped"] = (~on_grid).astype(float)
    sol = solved(solution)
    ref = solved(reference) if reference is not None else sol
    out = {}
    for name, x in per_traj.items():
        est, se = x.mean(axis=1), x.std(axis=1, ddof=1) / np.sqrt(n)
        grid_error = np.abs(sol[name] - ref[name])
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > SE_FLOOR, (est - sol[name]) / np.hypot(se, grid_error), np.nan)
        for suffix, value in (
            ("solution", sol[name]),
            ("estimate", est),
            ("se", se),
            ("grid_error", grid_error),
            ("z", z),
        ):
            out[f"{name}_{suffix}"] = ("time", value)
    ds = xr.Dataset(out, coords={"time": solution["time"].values}, attrs={"n_traj": n})
    zs = [np.abs(ds[f"{k}_z"].values) for k in per_traj]
    ds["max_abs_z"] = float(np.nanmax(np.concatenate(zs))) if np.any(np.isfinite(zs)) else 0.0
    return ds


def _total(state: xr.Dataset) -> np.ndarray:
    """∫ϱ dq dp over the grid: (time, d, d)."""
    dq = float(state["q_edge"][1] - state["q_edge"][0])
    dp = float(state["p_edge"][1] - state["p_edge"][0])
    return state["rho"].values.sum(axis=(1, 2)) * dq * dp


def total_coherence(state: xr.Dataset) -> xr.DataArray:
    """``∫|ϱ_ab| dq dp`` (time) for the basis pair (a, b) of a solution (or an estimate).

    Of an ensemble estimate (:func:`bin_ensemble`) this is biased upwards by the binning noise
    (|mean| of few samples per cell), so compare it only qualitatively.
    """
    a, b = state.attrs.get("basis_pair", [0, state.sizes["ket"] - 1])
    dq = float(state["q"][1] - state["q"][0])
    dp = float(state["p"][1] - state["p"][0])
    coh = np.abs(state["rho"].isel(ket=a, bra=b)).sum(("q", "p")) * dq * dp
    return coh.rename("total_coherence").assign_attrs(long_name="∫|ϱ_ab| dq dp")
