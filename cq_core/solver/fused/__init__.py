"""The compiled kernel: C generated from a model's SymPy description, one code path per mode.

:mod:`.codegen` prints a model's part (its flow, operators and noise as C expressions) in front
of the shared step loop (``generic_step.c``, ``diagonal_step.c``, ``kraus_step.c``,
``loop_shared.c``, ``run_loop.c``); :mod:`.codegen_tables` writes large diagonal models (more than
:data:`.generated.TABLE_MIN_LEVELS` levels) as a few functions of Z times constant level
tables, stepped by ``table_step.c``. :mod:`.build` compiles a kernel with the system C
compiler on first use and caches it on disk across processes; :mod:`.generated` binds it to a
run. Every model with a symbolic description is covered, built-in or from
``cq_core.from_hamiltonian``: pure, density and mean-field modes, diagonal (exponential) and
full (Kraus, d ≤ 16) operators. Everything else, and every run where no C compiler is found,
runs on the NumPy path (docs/physics.md, "Equations → code").
"""

from __future__ import annotations

__all__ = ["GENERATED"]

GENERATED = "generated"
"""The backend name of the generated kernel (:mod:`.generated`)."""
