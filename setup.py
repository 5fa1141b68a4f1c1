"""Build step of cq-sweep: everything else is in pyproject.toml.

One extension: ``cq_core/solver/fused/_fused_kernel*.so``, the C version of the fused kernel
(``cq_core/solver/fused/fused_kernel.c``), loaded through ctypes by
``cq_core/solver/fused/c_kernel.py``. It is a plain
shared library (no Python API), and optional: without a C compiler the install still
succeeds and ``backend="auto"`` falls back to the Numba kernel, then to NumPy.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "cq_core.solver.fused._fused_kernel",
            sources=["cq_core/solver/fused/fused_kernel.c"],
            # every sum and product rounds as written (no FMA contraction, no fast-math): the
            # same bits as the Numba kernel; sqrt inline (errno is never read). gcc's
            # straight-line vectoriser packs pairs of scalars with shuffles that cost more than
            # they save here: the mass kernel ran 0.087 s without it, 0.091 s with it.
            extra_compile_args=[
                "-O2",
                "-std=c99",
                "-ffp-contract=off",
                "-fno-math-errno",
                "-fno-tree-slp-vectorize",
            ],
            libraries=["m"],
            optional=True,
        )
    ]
)
