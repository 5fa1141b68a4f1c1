"""The sweep pipeline: cells, their execution on Dask, stores, per-cell statistics,
verify/repair and open_sweep. Only the CLI and the workflow import this package."""
