"""How the suite's tests share the two workers of ``pytest -n 2 --dist loadfile`` (pyproject).

``loadfile`` hands each test module as a whole to one worker, so that a module's fixtures
(often a real Snakemake, Dask or SLURM run) are made once, not once per worker. The
scheduler below hands out the modules known to take longest first (:data:`LONGEST_FIRST`),
the others by number of tests, so that no long module starts last on a busy worker.

(``--dist loadgroup`` with per-fixture groups would spread more finely, but with pytest 9.2
pytest-xdist 3.8 no longer puts the group into the node ids, and the groups are ignored.)

With ``-n 0`` (one process) nothing here applies.
"""

from __future__ import annotations

import pytest

LONGEST_FIRST = (
    "tests/test_slurm.py",
    "tests/test_faults.py",
    "tests/test_figures_pipeline.py",
    "tests/test_bounded_memory.py",
    "tests/test_docs_examples.py",
    "tests/test_pipeline.py",
    "tests/test_load.py",
)
"""Modules of a few minutes each on a 2-core machine (``--durations``), longest first.
``test_report_browser`` shares the small run of ``test_docs_examples`` (tests/small_run.py)
and is left to the end, so that it finds the run made."""


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LongestFirst(LoadFileScheduling):
        def _assign_work_unit(self, node) -> None:
            for scope in reversed(LONGEST_FIRST):
                if scope in self.workqueue:
                    self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)

    return LongestFirst(config, log)
