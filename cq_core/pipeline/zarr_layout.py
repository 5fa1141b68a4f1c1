"""A cell store's layout and its block writes, straight with Zarr (the bytes xarray writes).

:func:`_direct_layout` / :func:`_create_store` lay a cell store out (shapes, chunks,
coordinates, attrs) and :func:`_write_arrays` writes a block's trajectory range with Zarr's
own ``setitem``, instead of xarray's ``to_zarr``; both give the same bytes
(``tests/test_store_writes.py``) and fall back to xarray (:func:`_xarray_layout`, a region
write) for anything that needs CF encoding.
"""

from __future__ import annotations

import asyncio
import base64
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .store_encoding import _cell_encoding, _compressors, chunks_bytes, store_chunks

__all__ = ["NAN_FILL_VALUE"]


def _layout_coords(sample: xr.Dataset, n_traj: int) -> dict[str, xr.Variable]:
    """The stored coordinates of a cell: the sample's, but ``trajectory`` spans the whole cell.

    Coordinates along ``trajectory`` other than ``trajectory`` itself are not stored.
    """
    coords = {
        str(name): coord.variable
        for name, coord in sample.coords.items()
        if "trajectory" not in coord.dims
    }
    coords["trajectory"] = xr.Variable("trajectory", np.arange(n_traj, dtype=np.int64))
    return coords


def _xarray_layout(temporary: Path, sample: xr.Dataset, n_traj: int) -> None:
    """Lay a cell store out with xarray: data variables as lazy zeros, so no chunk is written.

    The reference of :func:`_direct_layout` (same bytes), and its fallback for a sample whose
    variables need CF encoding (~50 ms per cell: the Dask graph and one Zarr call per step).
    """
    import dask.array as da

    sizes = {**sample.sizes, "trajectory": n_traj}
    template = xr.Dataset(coords=_layout_coords(sample, n_traj), attrs=sample.attrs)
    chunks = store_chunks(sizes, chunks_bytes(sample))
    for name, var in sample.data_vars.items():
        shape = tuple(sizes[d] for d in var.dims)
        var_chunks = tuple(chunks.get(d, sizes[d]) for d in var.dims)
        template[name] = (var.dims, da.zeros(shape, dtype=var.dtype, chunks=var_chunks), var.attrs)
    template.to_zarr(
        temporary,
        mode="w-",
        compute=False,
        encoding=_cell_encoding(template),
        consolidated=False,
        zarr_format=3,
    )


NAN_FILL_VALUE = base64.standard_b64encode(struct.pack("<d", math.nan)).decode()
"""The ``_FillValue`` attribute xarray gives a float64 variable (NaN, as base64 of its bytes)."""
_TIME_UNITS = frozenset(
    {"days", "hours", "minutes", "seconds", "milliseconds", "microseconds", "nanoseconds"}
)
_CF_ATTRS = frozenset(
    {"_FillValue", "missing_value", "scale_factor", "add_offset", "calendar", "dtype",
     "_Unsigned", "coordinates"}
)  # fmt: skip
"""Attributes through which CF encoding could change a variable's values or metadata."""
_PLAIN_DTYPES = frozenset(
    np.dtype(name)
    for name in ("float64", "complex128", "int8", "int16", "int32", "int64", "uint8", "uint16",
                 "uint32", "uint64", "object")
)  # fmt: skip
"""Dtypes that xarray hands to Zarr unconverted (``object``: strings, coordinates only)."""


@dataclass(frozen=True)
class _StoreArray:
    """One array of a cell store's layout, with the arguments xarray's ``to_zarr`` gives Zarr."""

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: Any  # a NumPy dtype, or ``str`` for variable-length strings
    chunks: tuple[int, ...] | str  # "auto": Zarr's choice (xarray's for strings and scalars)
    fill_value: Any  # None: Zarr's default for the dtype
    attributes: dict[str, Any]
    values: np.ndarray | None  # written with the layout (coordinates); None: by the blocks


def _attr_value(value: Any) -> Any:
    """An attribute value as xarray hands it to Zarr (arrays as lists, NumPy scalars as Python)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def _plain_dtype(dtype: Any) -> bool:
    """Whether Zarr stores this dtype as it is (xarray encodes bools, dates and others)."""
    return dtype in _PLAIN_DTYPES


def _cf_neutral(attrs: Mapping[Any, Any], dtype: np.dtype, *, stored: bool) -> bool:
    """Whether xarray's CF encoding leaves a variable with these attrs and dtype as it is.

    Then xarray hands the values to Zarr unchanged and only adds the attributes
    :func:`_store_array` adds. ``stored``: attrs read back from a store, which may hold the
    ``coordinates`` and (float64) NaN ``_FillValue`` attributes that xarray writes itself.
    """
    if not _plain_dtype(dtype):
        return False
    own = {"coordinates", "_FillValue"} if stored else set()
    if any(not isinstance(key, str) or key in _CF_ATTRS - own for key in attrs):
        return False
    if "_FillValue" in attrs and (dtype.kind != "f" or attrs["_FillValue"] != NAN_FILL_VALUE):
        return False
    units = attrs.get("units")  # time units make xarray encode (or decode) dates and durations
    return not isinstance(units, str) or ("since" not in units and units not in _TIME_UNITS)


def _plain_layout(
    attrs: Mapping[Any, Any], coords: Mapping[str, xr.Variable], data: Mapping[str, xr.Variable]
) -> bool:
    """Whether :func:`_direct_layout` reproduces xarray's layout of these variables.

    That is: no variable needs CF encoding (:func:`_cf_neutral`), string coordinates hold only
    ``str``, data variables are numeric, and every non-dimension coordinate is named in some
    data variable's ``coordinates`` attribute (else xarray adds a global one).
    """
    if "coordinates" in attrs or not all(isinstance(key, str) for key in attrs):
        return False
    if set(coords) & set(data):
        return False
    for name, var in {**coords, **data}.items():
        if not _cf_neutral(var.attrs, var.dtype, stored=False):
            return False
        if var.dtype.kind == "O" and (
            name in data or not all(isinstance(v, str) for v in var.values.ravel())
        ):
            return False
    if any(var.encoding for var in coords.values()):  # data variables are made afresh
        return False
    for name, coord in coords.items():
        if coord.dims != (name,) and (
            " " in name or not any(set(coord.dims) <= set(v.dims) for v in data.values())
        ):
            return False
    return True


def _store_array(
    name: str,
    var: xr.Variable,
    shape: tuple[int, ...],
    chunks: Mapping[str, int],
    linked: list[str],
    values: np.ndarray | None,
) -> _StoreArray:
    """One array as xarray creates it: its ``coordinates``, float ``_FillValue``, chunks."""
    strings = var.dtype.kind == "O"
    attributes = {key: _attr_value(value) for key, value in var.attrs.items()}
    if linked:
        attributes["coordinates"] = " ".join(sorted(linked))
    fill_value = None  # Zarr's default (0, "", 0j), as xarray leaves it but for floats
    if var.dtype.kind == "f":
        fill_value = math.nan
        attributes["_FillValue"] = NAN_FILL_VALUE
    return _StoreArray(
        name=name,
        dims=tuple(str(d) for d in var.dims),
        shape=shape,
        dtype=str if strings else var.dtype,
        chunks="auto"
        if strings or not shape
        else tuple(chunks.get(d, n) for d, n in zip(var.dims, shape, strict=True)),
        fill_value=fill_value,
        attributes=attributes,
        values=values,
    )


def _direct_layout(
    sample: xr.Dataset, n_traj: int
) -> tuple[dict[str, Any], list[_StoreArray]] | None:
    """The group attributes and arrays :func:`_xarray_layout` would write, without xarray.

    ``None`` when the sample needs CF encoding (:func:`_plain_layout`); then xarray lays
    the store out. A cell's Dataset from :func:`cq_core.simulate` never does.
    """
    coords = _layout_coords(sample, n_traj)
    data = {str(name): var.variable for name, var in sample.data_vars.items()}
    if not _plain_layout(sample.attrs, coords, data):
        return None
    sizes = {**sample.sizes, "trajectory": n_traj}
    chunks = store_chunks(sizes, chunks_bytes(sample))
    extra = {name: var for name, var in coords.items() if var.dims != (name,)}
    arrays = [
        _store_array(name, var, var.shape, chunks, [], var.values) for name, var in coords.items()
    ]
    for name, var in data.items():
        linked = [c for c, coord in extra.items() if set(coord.dims) <= set(var.dims)]
        shape = tuple(sizes[d] for d in var.dims)
        arrays.append(_store_array(name, var, shape, chunks, linked, None))
    return {key: _attr_value(value) for key, value in sample.attrs.items()}, arrays


def _create_store(temporary: Path, attributes: dict[str, Any], arrays: list[_StoreArray]) -> None:
    """Write a store's layout with Zarr into memory, in one event-loop call, then to disk.

    Much cheaper than ``to_zarr(compute=False)`` (no Dask graph, no Zarr round trip per
    array, attribute update and file) and, for the arguments of :func:`_direct_layout`, the
    same bytes (``tests/test_store_writes.py``): Zarr encodes every file as it would for a
    directory store; only the ~20 small files are then written here, without its threads.
    """
    import zarr.api.asynchronous as zarr_async
    from zarr.core.sync import sync
    from zarr.storage import MemoryStore

    files: dict[str, Any] = {}

    async def create() -> None:
        group = await zarr_async.open_group(
            store=MemoryStore(files), mode="w-", zarr_format=3, attributes=attributes
        )
        created = await asyncio.gather(
            *(
                group.create_array(
                    a.name,
                    shape=a.shape,
                    dtype=a.dtype,
                    chunks=a.chunks,
                    fill_value=a.fill_value,
                    compressors=_compressors(),
                    dimension_names=a.dims,
                    attributes=a.attributes,
                    config={},
                )
                for a in arrays
            )
        )
        await asyncio.gather(
            *(
                array.setitem(tuple(slice(None) for _ in a.shape), a.values)
                for array, a in zip(created, arrays, strict=True)
                if a.values is not None
            )
        )

    sync(create())
    temporary.mkdir()  # like to_zarr's mode "w-": fails if anything is there
    for key, buffer in sorted(files.items()):
        path = temporary / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(buffer.to_bytes())


def _write_region(store: Path, block: xr.Dataset) -> None:
    """Write a block of consecutive trajectories into its range of a laid-out cell store.

    Straight into the Zarr arrays where that gives xarray's bytes (:func:`_write_arrays`),
    else with xarray's region write.
    """
    first = int(block.trajectory[0])
    count = block.sizes["trajectory"]
    if not np.array_equal(block.trajectory.values, np.arange(first, first + count)):
        raise ValueError("a block's trajectories must be consecutive")
    region_vars = [n for n, v in block.data_vars.items() if "trajectory" in v.dims]
    if _write_arrays(store, block, region_vars, first, count):
        return
    block[region_vars].drop_vars(
        [n for n in block.coords if n != "trajectory"]
    ).drop_encoding().to_zarr(
        store,
        region={"trajectory": slice(first, first + count)},
        consolidated=False,
        zarr_format=3,
    )


def _write_arrays(store: Path, block: xr.Dataset, names: list[str], first: int, count: int) -> bool:
    """Assign the block's variables to their trajectory range of the store's Zarr arrays.

    xarray's region write re-opens the store, decodes every array's metadata and encodes
    each variable with it (~6 ms of a block's ~23 ms write). When every array's dims and dtype
    are the block's and its attributes ask for no CF encoding (:func:`_cf_neutral`), that
    encoding hands Zarr the values unchanged, so writing them directly gives the same bytes.
    The ``trajectory`` coordinate is not rewritten: the layout holds these very values.
    Returns False, having written nothing, when xarray must write the block instead.
    """
    import zarr.api.asynchronous as zarr_async
    from zarr.core.sync import sync

    variables = [block[name].variable for name in names]
    if not all(_plain_dtype(v.dtype) and v.dtype.kind != "O" for v in variables):
        return False

    async def open_arrays() -> list[Any]:
        return await asyncio.gather(
            *(
                zarr_async.open_array(store=str(store), path=name, mode="r+", zarr_format=3)
                for name in names
            )
        )

    arrays = sync(open_arrays())
    for array, var in zip(arrays, variables, strict=True):
        metadata = array.metadata
        if (
            tuple(metadata.dimension_names or ()) != var.dims
            or array.dtype != var.dtype
            or not _cf_neutral(metadata.attributes, var.dtype, stored=True)
        ):
            return False

    async def write() -> None:  # every array at once, on Zarr's event loop
        await asyncio.gather(
            *(
                array.setitem(
                    tuple(
                        slice(first, first + count) if d == "trajectory" else slice(None)
                        for d in var.dims
                    ),
                    var.values,
                )
                for array, var in zip(arrays, variables, strict=True)
            )
        )

    sync(write())
    return True
