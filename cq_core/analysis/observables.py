"""Observables of the two levels the analysis refers to: ⟨σz⟩, the pair coherence and the
Bloch vector.

Conventions (docs/physics.md, "Observables"): ⟨σz⟩ and the coherence refer to the two levels
``(a, b) = attrs["basis_pair"]``: ``⟨σz⟩ = |ψ_a|² − |ψ_b|²`` (``ρ_aa − ρ_bb``), coherence
``2|ψ_a ψ_b*|`` (``2|ρ_ab|``). Trajectories flagged by the kernel (``status ≠ 0``) are left
out of every average.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

__all__ = [
    "TRAJECTORY_DIMS",
    "as_sweep",
    "basis_pair",
    "bloch_vector",
    "pair_coherence",
    "sigma_z",
    "unflagged",
]

TRAJECTORY_DIMS = ("seed", "trajectory")
"""Dimensions that together enumerate the trajectories of one σ in a sweep Dataset."""


def as_sweep(ds: xr.Dataset) -> xr.Dataset:
    """Promote scalar ``sigma``/``seed`` coordinates of a single cell to length-1 dimensions."""
    for dim in ("seed", "sigma"):
        if dim not in ds.dims:
            ds = ds.expand_dims(dim)
    return ds.transpose("sigma", "seed", "trajectory", ...)


def trajectory_dims(x: xr.DataArray) -> list[str]:
    """The dimensions of ``x`` that enumerate trajectories (a subset of TRAJECTORY_DIMS)."""
    return [d for d in TRAJECTORY_DIMS if d in x.dims]


def basis_pair(ds: xr.Dataset) -> tuple[int, int]:
    """The levels ``(a, b)`` that ⟨σz⟩ and the coherence refer to (``attrs["basis_pair"]``)."""
    a, b = ds.attrs.get("basis_pair", (0, 1))
    return int(a), int(b)


def _amplitudes(ds: xr.Dataset) -> tuple[xr.DataArray, xr.DataArray]:
    a, b = basis_pair(ds)
    return ds["psi"].isel(level=a, drop=True), ds["psi"].isel(level=b, drop=True)


def sigma_z(ds: xr.Dataset) -> xr.DataArray:
    """Conditional ``⟨σz⟩ = |ψ_a|² − |ψ_b|²`` (or ``ρ_aa − ρ_bb``) per trajectory and time."""
    a, b = basis_pair(ds)
    if "psi" in ds:
        psi_a, psi_b = _amplitudes(ds)
        values = abs(psi_a) ** 2 - abs(psi_b) ** 2
    else:
        rho = ds["rho"]
        values = np.real(rho.isel(ket=a, bra=a, drop=True)) - np.real(
            rho.isel(ket=b, bra=b, drop=True)
        )
    return values.rename("sigma_z").assign_attrs(
        long_name="conditional <sigma_z> of the basis pair", units="1"
    )


def pair_coherence(ds: xr.Dataset) -> xr.DataArray:
    """Conditional coherence ``2|ψ_a ψ_b*|`` (or ``2|ρ_ab|``) per trajectory and time."""
    a, b = basis_pair(ds)
    if "psi" in ds:
        psi_a, psi_b = _amplitudes(ds)
        values = 2.0 * abs(psi_a) * abs(psi_b)
    else:
        values = 2.0 * abs(ds["rho"].isel(ket=a, bra=b, drop=True))
    return values.rename("pair_coherence").assign_attrs(
        long_name="conditional coherence 2|rho_ab|", units="1"
    )


def unflagged(ds: xr.Dataset) -> xr.DataArray:
    """True for the trajectories the kernel did not flag (``status == 0``)."""
    return ds["status"] == 0


def bloch_vector(ds: xr.Dataset) -> xr.DataArray:
    """Bloch vector of the basis pair ``(a, b)``: dims (…, time, component = x, y, z).

    ``x = 2 Re ρ_ab``, ``y = −2 Im ρ_ab``, ``z = ρ_aa − ρ_bb`` (``ρ_ab = ψ_a ψ_b*`` for pure
    states), so |L⟩ = level a is the north pole and |+⟩ = (|L⟩+|R⟩)/√2 is +x. Dimensionless;
    length 1 for a pure qubit.
    """
    a, b = (int(i) for i in ds.attrs.get("basis_pair", (0, 1)))
    if "psi" in ds:
        psi_a = ds["psi"].isel(level=a, drop=True)
        psi_b = ds["psi"].isel(level=b, drop=True)
        rho_ab = psi_a * np.conj(psi_b)
        z = abs(psi_a) ** 2 - abs(psi_b) ** 2
    else:
        rho = ds["rho"]
        rho_ab = rho.isel(ket=a, bra=b, drop=True)
        z = np.real(rho.isel(ket=a, bra=a, drop=True)) - np.real(rho.isel(ket=b, bra=b, drop=True))
    vector = xr.concat(
        [2.0 * np.real(rho_ab), -2.0 * np.imag(rho_ab), z],
        dim=xr.DataArray(["x", "y", "z"], dims="component", name="component"),
    )
    return vector.transpose(..., "component").rename("bloch").assign_attrs(units="1")
