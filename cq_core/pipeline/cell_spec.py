"""A sweep cell: the frozen description of one (model, σ, seed) block of trajectories.

A *cell* is the unit of work, storage and caching of the pipeline (README.md, "The sweep
pipeline"): ``(model, params, σ, seed, base_seed, n_traj, t_final, dt, save_every, method,
mode, excess, backend)``, described by the frozen :class:`CellSpec`, whose
:attr:`CellSpec.config_hash` names the numbers a store of the cell holds.
:func:`split_blocks` cuts a cell's trajectories into the blocks that run as Dask tasks.

Reproducibility: trajectory ``i`` of a cell is driven by Brownian increments fixed by
``(base_seed, seed, i)`` (:mod:`cq_core.noise`), so the stored numbers do not depend on the
block size, the number of workers, or whether the workers are local or on an external
scheduler.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import xarray as xr

from ..models import Model, get_model, params_to_json
from ..solver.settings import RunSettings, check_run
from ..solver.simulate import simulate
from ..version import NUMERICS_VERSION
from .layout import axis_label, point_label

__all__ = ["RUN_AXES", "CellSpec", "decode_params", "split_blocks"]

RUN_AXES = ("dt", "excess", "mode")
"""Run settings that may be grid axes (the others are model parameters)."""


def _number(value: Any, kind: type) -> Any:
    """Coerce plain numbers so equal values give equal JSON (``1`` and ``1.0`` for a float).

    Anything else (a bool, a string, None) is left as it is for :func:`check_run` to reject
    with a message naming the key.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return value
    if kind is float:
        return float(value)
    if float(value).is_integer():
        return int(value)
    return value


def decode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Model parameters from their JSON form (``params_to_json``): complex arrays restored."""

    def decode(value: Any) -> Any:
        if isinstance(value, Mapping) and set(value) == {"real", "imag"}:
            return np.asarray(value["real"]) + 1j * np.asarray(value["imag"])
        return value

    return {key: decode(value) for key, value in params.items()}


@dataclass(frozen=True)
class CellSpec:
    """Everything that fixes the numbers stored for one cell (README.md, "The sweep pipeline").

    Attributes
    ----------
    model, params
        Model name (a built-in name or ``"package.module:function"``) and its keyword
        parameters (JSON-able values; arrays as lists).
    sigma
        Noise strength σ > 0 (model units).
    seed, base_seed
        With the trajectory index they fix every Brownian increment (README.md).
    n_traj
        Trajectories of the cell, indices ``0 … n_traj − 1``.
    t_final, dt, save_every
        Final time and step (model units); every ``save_every``-th step is stored.
    method, mode, excess
        Integrator, state form and decoherence above the minimum ``v`` (docs/physics.md).
    backend
        Kernel: ``"numpy"``, ``"generated"`` (the compiled kernel: equal to NumPy's to
        rounding, not bit for bit) or ``"auto"``. :meth:`resolved` fixes ``"auto"`` for
        this machine, so that every block of a cell runs the same kernel and the stored spec
        says which.

    grid
        The sweep's grid axes this cell lies on, in config order: ``(axis, index)`` pairs,
        ``index`` the position of a vector value in the configured list (it names the
        directory) and None for a scalar axis (its value names it). The values themselves
        are in ``params`` (a model parameter) or the run fields (``dt``, ``excess``,
        ``mode``), so the hash covers them. Left out of :meth:`to_dict` when empty: a cell
        of a sweep without ``grid`` keeps its hash.

    Execution settings (block size, threads, scheduler address) are deliberately not part of
    a cell: they never change a stored number.
    """

    model: str
    params: Mapping[str, Any]
    sigma: float
    seed: int
    n_traj: int
    t_final: float
    dt: float
    base_seed: int = 0
    save_every: int = 1
    method: str = "auto"
    mode: str = "pure"
    excess: float = 0.0
    backend: str = "auto"
    grid: tuple[tuple[str, int | None], ...] = ()

    def __post_init__(self) -> None:
        params = self.params if self.params is not None else {}
        if not isinstance(params, Mapping):
            raise ValueError(f"params must be a mapping of model parameters, got {params!r}")
        # canonical, JSON-round-tripped copy: arrays become lists, keys are sorted
        object.__setattr__(self, "params", json.loads(params_to_json(params)))
        for name in ("sigma", "t_final", "dt", "excess"):
            object.__setattr__(self, name, _number(getattr(self, name), float))
        for name in ("seed", "base_seed", "n_traj", "save_every"):
            object.__setattr__(self, name, _number(getattr(self, name), int))
        grid = tuple(
            (str(axis), None if index is None else int(index)) for axis, index in self.grid or ()
        )
        for axis, _ in grid:
            if axis not in RUN_AXES and axis not in self.params:
                raise ValueError(
                    f"grid axis {axis!r} is neither a run axis ({', '.join(RUN_AXES)}) nor a "
                    "key of params"
                )
        object.__setattr__(self, "grid", grid)

    def __hash__(self) -> int:
        return hash(self.config_hash)

    def to_dict(self) -> dict[str, Any]:
        """The cell as a plain dict (the keys of the sweep configuration).

        Equal to ``dataclasses.asdict`` (params a deep copy), ~20× faster: the workflow
        hashes every cell of a sweep while it is parsed.
        """
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        data["params"] = json.loads(json.dumps(self.params))
        if self.grid:
            data["grid"] = [list(pair) for pair in self.grid]
        else:
            del data["grid"]
        return data

    def to_json(self) -> str:
        """Canonical JSON of the cell: sorted keys, no whitespace (stable across runs)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CellSpec:
        """Build a cell from a mapping; unknown keys raise ``ValueError`` naming them."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(
                f"unknown cell key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
            )
        return cls(**dict(data))

    @classmethod
    def from_json(cls, text: str) -> CellSpec:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    @property
    def config_hash(self) -> str:
        """sha256 (hex) of the canonical JSON of the cell and the kernel's numerics version.

        Two cells with the same hash store the same numbers; a change of
        :data:`cq_core.NUMERICS_VERSION` changes every hash.
        """
        payload = json.dumps(
            {"cell": self.to_dict(), "numerics_version": NUMERICS_VERSION},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def axis_value(self, axis: str) -> Any:
        """The value of grid axis ``axis`` (a run field or a model parameter, JSON form)."""
        return getattr(self, axis) if axis in RUN_AXES else self.params[axis]

    @property
    def point_label(self) -> str:
        """The cell's (grid point, σ) label of :func:`cq_core.pipeline.layout.point_label`."""
        labels = [(axis, axis_label(self.axis_value(axis), index)) for axis, index in self.grid]
        return point_label(self.sigma, labels)

    def label_dataset(self, ds: xr.Dataset) -> xr.Dataset:
        """``ds`` with the cell's grid axes recorded: a scalar coordinate per scalar axis
        (named by the axis); a vector axis as the integer coordinate ``<axis>_index`` and the
        coordinate ``<axis>`` (dim ``<axis>_component``) of its values (a coordinate, not a
        data variable, in a cell: a store's layout writes coordinates whole, data variables
        block by block). :func:`cq_core.open_sweep` returns it as a data variable."""
        if not self.grid:
            return ds
        coords: dict[str, Any] = {}
        for axis, index in self.grid:
            value = self.axis_value(axis)
            if index is None:
                coords[axis] = ((), value, {"long_name": f"grid axis {axis}"})
            else:
                coords[f"{axis}_index"] = ((), index, {"long_name": f"index of the {axis} value"})
                values = np.asarray(decode_params({axis: value})[axis])
                coords[axis] = ((f"{axis}_component",), values.ravel(), {"grid_axis": axis})
        ds = ds.assign_coords(coords)
        point = [
            [axis, self.axis_value(axis) if index is None else index] for axis, index in self.grid
        ]
        ds.attrs["grid_axes"] = json.dumps([axis for axis, _ in self.grid])
        ds.attrs["grid_point"] = json.dumps(point)
        base = {key: value for key, value in self.params.items() if key not in dict(self.grid)}
        ds.attrs["grid_base_params"] = json.dumps(base, sort_keys=True)
        return ds

    def build_model(self) -> Model:
        """The cell's model (``ValueError`` naming valid models or parameters if invalid)."""
        return get_model(self.model, **decode_params(self.params))

    def _run_kwargs(self, first_trajectory: int, n_traj: int | None) -> dict[str, Any]:
        """The keyword arguments of ``simulate``/``check_run`` for a block of this cell."""
        return dict(
            sigma=self.sigma,
            n_traj=self.n_traj if n_traj is None else n_traj,
            t_final=self.t_final,
            dt=self.dt,
            seed=self.seed,
            base_seed=self.base_seed,
            first_trajectory=first_trajectory,
            save_every=self.save_every,
            method=self.method,
            mode=self.mode,
            excess=self.excess,
            backend=self.backend,
        )

    def check(self, *, first_trajectory: int = 0, n_traj: int | None = None) -> RunSettings:
        """Validate the whole cell with :func:`cq_core.check_run` (``ValueError`` naming the key).

        ``first_trajectory``/``n_traj`` check one block of the cell instead of all of it.
        """
        return check_run(self.build_model(), **self._run_kwargs(first_trajectory, n_traj))

    def resolved(self) -> CellSpec:
        """The cell with ``backend="auto"`` replaced by the kernel it selects here (validated)."""
        return replace(self, backend=self.check(n_traj=1).backend)

    def simulate(self, *, first_trajectory: int = 0, n_traj: int | None = None) -> xr.Dataset:
        """Run trajectories ``first_trajectory … first_trajectory + n_traj − 1`` of the cell
        (with its grid axes recorded, :meth:`label_dataset`)."""
        ds = simulate(self.build_model(), **self._run_kwargs(first_trajectory, n_traj))
        return self.label_dataset(ds)


_FIELD_NAMES = tuple(f.name for f in fields(CellSpec))


def split_blocks(n_traj: int, block_size: int) -> list[tuple[int, int]]:
    """``(first_trajectory, n_traj)`` of each block, in trajectory order."""
    return [(first, min(block_size, n_traj - first)) for first in range(0, n_traj, block_size)]
