"""Build a model's generated kernel on first use, cached on disk across processes.

A kernel is keyed by what determines its source: the shared C (``generic_step.c``,
``diagonal_step.c``, ``kraus_step.c``, ``loop_shared.c``, ``run_loop.c``, ``table_step.c``)
and the code that writes it (``codegen.py``, ``codegen_tables.py``, ``ziggurat.py``), the
flags (diagonal, density, mean field), NumPy's version (its ziggurat tables) and the model.
A model with a ``symbolic`` description is keyed by its SymPy text (``srepr``); a built-in
model whose ``symbolic`` is a zero-argument function (built only when called) by its name and
parameters, so that a cached run never builds the SymPy expressions nor imports SymPy. On a
miss the source is generated (:mod:`.codegen`, SymPy), compiled with the system C compiler
into ``<cache>/<sha256 of the source>.so`` and the key recorded beside it; the next process
finds it by the key and only loads it (ctypes).

The cache is ``$CQ_KERNEL_CACHE``, else ``$XDG_CACHE_HOME/cq-sweep/kernels``, else
``~/.cache/cq-sweep/kernels``. Files are written under temporary names and renamed, so
processes building the same kernel at once do not see each other's half-written files.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ...models import MODELS, Model, params_to_json
from ...models.symbolic import LazySymbolicModel

__all__ = ["COMPILE_FLAGS", "cache_dir", "compiler", "load_kernel", "symbolic_of"]

COMPILE_FLAGS = (
    "-O3",  # unrolls the small fixed-size loops (d, m known), dropping structural zeros
    "-std=c11",
    "-fPIC",
    "-shared",
    "-ffp-contract=off",  # every sum and product rounds as written
    "-fno-math-errno",
    # no floating-point traps and no sign of zero to keep: 0.0 + x is x (sums over the
    # structure of an operator start at a zero), and no nonzero value changes by a bit
    "-fno-trapping-math",
    "-fno-signed-zeros",
    "-fcx-limited-range",  # complex products as written (no inf/NaN recovery calls)
)
_TEMPLATE = tuple(
    Path(__file__).with_name(name)
    for name in (
        "generic_step.c",
        "diagonal_step.c",
        "kraus_step.c",
        "loop_shared.c",
        "run_loop.c",
        "codegen.py",
        "ziggurat.py",
        "table_step.c",
        "codegen_tables.py",
    )
)  # what a kernel's source is made by: part of its key
_LOADED: dict[str, Any] = {}  # key → the loaded cq_run, per process

_PTR, _INT, _DOUBLE = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double


def cache_dir() -> Path:
    """Where compiled kernels are kept (created on first use)."""
    if os.environ.get("CQ_KERNEL_CACHE"):
        return Path(os.environ["CQ_KERNEL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "cq-sweep" / "kernels"


def compiler() -> str | None:
    """The system C compiler (``$CC``, else cc, gcc or clang), or None."""
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def npyrandom() -> Path | None:
    """NumPy's static ``libnpyrandom.a`` (its random distributions, shipped in the wheel for C
    extensions), whose ziggurat tables let a kernel draw the keyed noise itself (:mod:`.ziggurat`);
    None if not shipped."""
    library = Path(np.random.__file__).with_name("lib") / "libnpyrandom.a"
    return library if library.is_file() else None


def symbolic_of(model: Model) -> Any:
    """The model's SymbolicModel (calling a lazy ``symbolic``), or None."""
    symbolic = model.symbolic
    return symbolic() if callable(symbolic) else symbolic


@functools.cache
def _makers() -> str:
    """The digest of the files a kernel's source is made by and NumPy's version (read once)."""
    text = json.dumps([[p.read_text() for p in _TEMPLATE], str(npyrandom()), np.__version__])
    return hashlib.sha256(text.encode()).hexdigest()


_DESCRIPTIONS: dict[int, tuple[Any, list[str]]] = {}  # id → (SymbolicModel, its SymPy text)


def _description(symbolic: Any) -> list[str]:
    """A SymbolicModel's SymPy text (``srepr``), computed once per object: a run asks for its
    kernel several times, and printing a model costs milliseconds."""
    held = _DESCRIPTIONS.get(id(symbolic))
    if held is not None and held[0] is symbolic:
        return held[1]
    import sympy  # a SymbolicModel holds SymPy objects: SymPy is loaded already

    s = symbolic
    what = [sympy.srepr(x) for x in (s.positions, s.momenta, s.H_C, s.H_I, s.noise)]
    what.append(sympy.srepr(s.domain) if s.domain is not None else "")
    _DESCRIPTIONS[id(symbolic)] = (symbolic, what)  # holding it keeps its id from being reused
    return what


def _key(
    model: Model, diagonal: bool, density: bool, mean_field: bool = False, tables: bool = False
) -> str:
    """What the kernel's source depends on, hashed, without generating it."""
    lazy = callable(model.symbolic) or isinstance(model.symbolic, LazySymbolicModel)
    if lazy and model.name in MODELS:  # a built-in: its description follows from name, params
        what = ["builtin", model.name, params_to_json(model.params)]
    else:
        what = _description(model.symbolic)
    flags = [diagonal, density, mean_field] + (["tables"] if tables else [])
    text = json.dumps([_makers(), COMPILE_FLAGS, *flags, what])
    return hashlib.sha256(text.encode()).hexdigest()


def _write(path: Path, data: bytes | str) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
        handle.write(data.encode() if isinstance(data, str) else data)
    os.replace(handle.name, path)


def _compile(source: str, directory: Path) -> Path:
    """Compile ``source`` into ``<directory>/<sha256>.so`` (reused if already there)."""
    digest = hashlib.sha256(source.encode()).hexdigest()
    library = directory / f"{digest}.so"
    if library.is_file():
        return library
    cc = compiler()
    if cc is None:
        raise RuntimeError("no C compiler found (set $CC): use backend 'numpy'")
    c_file = directory / f"{digest}.c"
    _write(c_file, source)
    partial = directory / f".{digest}.{os.getpid()}.so"
    done = subprocess.run(
        [cc, *COMPILE_FLAGS, "-o", str(partial), str(c_file), "-lm"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"compiling the generated kernel {c_file} failed:\n{done.stderr}")
    os.replace(partial, library)
    return library


def load_kernel(
    model: Model, *, diagonal: bool, density: bool, mean_field: bool = False, tables: bool = False
) -> Any:
    """The model's compiled ``cq_run`` (ctypes function), generated and built if needed.

    ``tables``: the large-diagonal kernel of :mod:`.codegen_tables` (pure state, exponential
    scheme) instead of one expression per level.

    Once per process: later calls return the loaded function. Raises ``RuntimeError`` if the
    kernel cannot be built here (no compiler, a compiler error).
    """
    key = _key(model, diagonal, density, mean_field, tables)
    if key in _LOADED:
        return _LOADED[key]
    directory = cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    index = directory / f"{key}.key"
    level_table = directory / f"{key}.npy"  # a table kernel's level table (codegen_tables)
    library = None
    if index.is_file() and (not tables or level_table.is_file()):
        library = directory / index.read_text().strip()
        if not library.is_file():
            library = None
    if library is None:
        from .codegen import generate_source  # SymPy: only on a cache miss
        from .ziggurat import tables as read_ziggurat

        library_path = npyrandom()
        zig = read_ziggurat(library_path) if library_path is not None else None
        if tables:
            from .codegen_tables import diagonal_terms, generate_table_source

            terms = diagonal_terms(model)
            source = generate_table_source(terms, ziggurat_tables=zig)
            buffer = io.BytesIO()
            np.save(buffer, np.ascontiguousarray(terms.table, dtype=np.float64))
            _write(level_table, buffer.getvalue())
        else:
            source = generate_source(
                symbolic_of(model),
                diagonal=diagonal,
                density=density,
                mean_field=mean_field,
                ziggurat_tables=zig,
            )
        library = _compile(source, directory)
        _write(index, library.name)
    shared = ctypes.CDLL(str(library))
    run = shared.cq_run
    run.restype = ctypes.c_int
    run.argtypes = [
        _INT, _INT, _DOUBLE, _DOUBLE, _DOUBLE, _INT,  # N, chunk, dt, sigma, excess, first_step
        _PTR, _INT, _PTR, _PTR, _PTR,  # saved, T, Z, state, dW
        _PTR, _PTR, _PTR, _PTR,  # classical_out, quantum_out, status, status_step
        _PTR, _DOUBLE,  # rng (SFC64 states, or NULL: read dW), noise_scale
    ]  # fmt: skip
    run.keyed_noise = bool(ctypes.c_int.in_dll(shared, "cq_keyed_noise").value)
    if tables:  # the kernel reads the table through cq_table: keep it alive with run
        run.level_table = np.load(level_table)
        ctypes.c_void_p.in_dll(shared, "cq_table").value = run.level_table.ctypes.data
    _LOADED[key] = run
    return run
