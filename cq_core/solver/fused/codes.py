"""The integer codes by which the hand-written fused kernels (C and Numba) tell models apart.

A built-in model names itself in ``Model.compiled_form`` (``"linear"``, ...); this is the one
place that turns that name into the code ``fused_kernel.c`` and ``numba_kernel.py`` switch on.
"""

from __future__ import annotations

__all__ = ["CODES", "LINEAR", "MASS_SUPERPOSITION", "QUBIT_LATTICE"]

LINEAR = 0
"""``linear`` (ω = 0): params (lam, m, phi); table = σz diagonal (1, d)."""
MASS_SUPERPOSITION = 1
"""``mass_superposition``: params (G·M·m, m, d, eps², phi); table = σz diagonal (1, d)."""
QUBIT_LATTICE = 2
"""``qubit_lattice``: params (lam, m, gamma); table = spins (n, d)."""

CODES = {"linear": LINEAR, "mass_superposition": MASS_SUPERPOSITION, "qubit_lattice": QUBIT_LATTICE}
"""Model name (``compiled_form[0]``) → kernel code. Every model's params hold the mass at
index 1 (used by the free-particle flow)."""
