"""The sweep pipeline, one module per job (above models, solver and analysis).

Cells: ``cell_spec`` (what a cell is), ``dask_runner`` (its blocks on Dask, the Dask
settings), ``cell_to_store`` (blocks written into the store as they come), ``batch`` (the
cells of one Snakemake job). Stores: ``layout`` (where every file lives), ``store_encoding``
(chunks, compression), ``zarr_layout`` (a cell store's arrays written with Zarr),
``cell_store`` (atomic writes), ``manifest`` and ``identity`` (what a store holds),
``locks`` (stale temporaries and locks), ``store_checks`` and ``verify`` (verify/repair),
``statistics_store`` and ``summary_store`` (per-cell statistics, summaries). Sweeps:
``config_file`` and ``config_values`` (the configuration files), ``sweep_config`` (a sweep's
cells), ``sweep_dataset`` and ``lazy_sweep`` (``open_sweep``). The package imports only
:func:`cq_core.open_sweep` from here; the CLI and the workflow use the rest.
"""
