"""Old import path of the cell layer, kept for scripts and notebooks: see :mod:`cq_core.pipeline`.

Everything that was defined here now lives in one module per job:

- :mod:`cq_core.pipeline.cell_spec`: :class:`CellSpec`, ``decode_params``, ``split_blocks``;
- :mod:`cq_core.pipeline.dask_runner`: running a cell's blocks on Dask (``run_cell``,
  ``iter_cell_blocks``, ``dask_client``, ``local_cluster``, ``use_processes``) and the Dask
  settings (``DEFAULT_BLOCK_SIZE``, ``CONNECT_TIMEOUT``, ``WORKER_TIMEOUT``,
  ``PROCESS_MIN_TRAJECTORY_STEPS``, ``LOCAL_WORKER_PROCESS_CONFIG``);
- :mod:`cq_core.pipeline.cell_to_store`: ``run_cell_to_store`` (blocks written as they come);
- :mod:`cq_core.pipeline.cell_store`: atomic stores (``write_cell``, ``atomic_write_zarr``,
  ``consolidate``, ``read_cell_attrs``);
- :mod:`cq_core.pipeline.store_encoding`: chunks and compression (``store_chunks``,
  ``STORE_TRAJECTORY_CHUNK``, ``STORE_CHUNK_BYTES``, ``ZSTD_LEVEL``);
- :mod:`cq_core.pipeline.zarr_layout`: a cell store's layout and block writes with Zarr;
- :mod:`cq_core.pipeline.locks`: ``TEMPORARY_SUFFIX``, ``remove_stale_temporaries``.

A setting patched here is not seen by the code that reads it: patch its module instead.
"""

from .pipeline.cell_spec import CellSpec, decode_params, split_blocks
from .pipeline.cell_store import (
    _CellStoreWriter,
    _store_ready,
    atomic_write_zarr,
    consolidate,
    read_cell_attrs,
    write_cell,
)
from .pipeline.cell_to_store import _layout_sample, _write_block, run_cell_to_store
from .pipeline.dask_runner import (
    CONNECT_TIMEOUT,
    DEFAULT_BLOCK_SIZE,
    LOCAL_WORKER_PROCESS_CONFIG,
    PROCESS_MIN_TRAJECTORY_STEPS,
    WORKER_TIMEOUT,
    _plan_cell,
    _simulate_block,
    dask_client,
    iter_cell_blocks,
    local_cluster,
    run_cell,
    use_processes,
)
from .pipeline.locks import TEMPORARY_SUFFIX, remove_stale_temporaries
from .pipeline.store_encoding import (
    STORE_CHUNK_BYTES,
    STORE_TRAJECTORY_CHUNK,
    ZSTD_LEVEL,
    chunks_bytes,
    store_chunks,
)
from .pipeline.zarr_layout import _create_store, _direct_layout, _write_arrays, _xarray_layout

__all__ = [
    "CONNECT_TIMEOUT",
    "CellSpec",
    "DEFAULT_BLOCK_SIZE",
    "LOCAL_WORKER_PROCESS_CONFIG",
    "PROCESS_MIN_TRAJECTORY_STEPS",
    "STORE_CHUNK_BYTES",
    "STORE_TRAJECTORY_CHUNK",
    "TEMPORARY_SUFFIX",
    "WORKER_TIMEOUT",
    "ZSTD_LEVEL",
    "_CellStoreWriter",
    "_create_store",
    "_direct_layout",
    "_layout_sample",
    "_plan_cell",
    "_simulate_block",
    "_store_ready",
    "_write_arrays",
    "_write_block",
    "_xarray_layout",
    "atomic_write_zarr",
    "chunks_bytes",
    "consolidate",
    "dask_client",
    "decode_params",
    "iter_cell_blocks",
    "local_cluster",
    "read_cell_attrs",
    "remove_stale_temporaries",
    "run_cell",
    "run_cell_to_store",
    "split_blocks",
    "store_chunks",
    "use_processes",
    "write_cell",
]
