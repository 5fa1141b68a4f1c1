"""``python -m cq_core``: the pipeline's command line (see :mod:`cq_core.cli`)."""

from .cli import main

if __name__ == "__main__":  # spawned Dask worker processes import this module as __mp_main__
    raise SystemExit(main())
