"""Old import path of verify, kept for ``python -m cq_core.verify`` and scripts.

The checks of one store are :mod:`cq_core.pipeline.store_checks`; the results tree, repair
and the command line are :mod:`cq_core.pipeline.verify`.
"""

from .pipeline.store_checks import REQUIRED_ATTRS, recorded_hash, stale_reason, verify_store
from .pipeline.verify import (
    DAMAGED_SUFFIX,
    DESCRIPTION,
    add_arguments,
    cell_stores,
    load_config,
    main,
    move_aside,
    repair,
    run,
    verify_results,
)

__all__ = [
    "DAMAGED_SUFFIX",
    "DESCRIPTION",
    "REQUIRED_ATTRS",
    "add_arguments",
    "cell_stores",
    "load_config",
    "main",
    "move_aside",
    "recorded_hash",
    "repair",
    "run",
    "stale_reason",
    "verify_results",
    "verify_store",
]

if __name__ == "__main__":
    raise SystemExit(main())
