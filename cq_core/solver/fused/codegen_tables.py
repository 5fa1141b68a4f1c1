"""C source of a large diagonal model's kernel: a few functions of Z times constant level tables.

For a diagonal ``H_I`` with many levels (``qubit_lattice`` with n sites has d = 2ⁿ) printing one
expression per level (:mod:`.codegen`) does not scale. Here the diagonal is written as

    H_a(Z) = Σ_k f_k(Z) T_ak

with a few functions f_k of the phase-space point and a constant table T (d × KT). Then every
operator of the exponential step is a combination of the same table columns
(docs/physics.md, "Equations → code"):

- ``L_j = {Z_j, H_I}``: ``L_ja = Σ_k b_jk(Z) T_ak`` with ``b_jk = {Z_j, f_k}``;
- ``K_i = ½ Σ_j (S⁺)_ij L_j``: ``K_ia = Σ_k κ_ik(Z) T_ak`` with ``κ = ½ S⁺ b``;
- ``K2 = Σ_i K_i²``: ``K2_a = Σ_kl Q_kl(Z) T_ak T_al`` with ``Q = κᵀ κ``.

Only the flow, the noise shape and the small matrices f, b, κ, Q are printed (common
subexpressions shared); the table is kept beside the library in the cache (:mod:`.build`
points the kernel at it), and the step (``table_step.c``)
loops per trajectory over its levels with p_a ≠ 0 only (a pure exponential step keeps
p_a = 0 forever). :func:`diagonal_terms` finds f and T: from a built-in model's own
description where it has one (no d-entry SymPy matrix is ever built), else by expanding each
diagonal entry of the model's ``H_I`` into numbers times functions of Z.

Only :mod:`.build` imports this module, on a cache miss.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy

from ...models import Model
from ...models.symbolic import is_zero
from ...models.symbolic_builtins import builtin_diagonal_terms
from .codegen import _pinv, to_c
from .ziggurat import c_tables

__all__ = ["DiagonalTerms", "diagonal_terms", "generate_table_source", "terms_from_symbolic"]

STEP = Path(__file__).with_name("table_step.c")
"""The loop and step of a table kernel (appended after the generated part)."""
SHARED = Path(__file__).with_name("loop_shared.c")
"""The C every generated kernel's loop shares (the freeze-and-flag rule, the keyed noise
draw): both kinds of kernel draw the same bits and flag the same way."""


@dataclass(frozen=True, eq=False)
class DiagonalTerms:
    """A diagonal model as ``H_I = Σ_k f_k(Z) diag(T[:, k])``.

    Attributes
    ----------
    positions, momenta
        The phase-space symbols; Z = (positions, momenta), n components.
    H_C
        The classical Hamiltonian (a SymPy expression of Z, parameters substituted).
    functions
        The KT functions f_k of Z (SymPy expressions; a number for a constant column).
    table
        T, shape (d, KT) float64, level-major.
    noise
        The noise shape per unit sigma, an n × m SymPy matrix.
    domain
        A SymPy relation of Z, or None.
    """

    positions: tuple[Any, ...]
    momenta: tuple[Any, ...]
    H_C: Any
    functions: tuple[Any, ...]
    table: np.ndarray
    noise: Any
    domain: Any = None


def terms_from_symbolic(symbolic: Any) -> DiagonalTerms:
    """Split each diagonal entry of a SymbolicModel's ``H_I`` into numbers times functions of Z
    (``sympy.expand``, then the coefficient of each term)."""
    d = symbolic.dim
    columns: dict[Any, int] = {}
    entries: list[dict[int, float]] = []
    for a in range(d):
        row: dict[int, float] = {}
        for term, coefficient in sympy.expand(symbolic.H_I[a, a]).as_coefficients_dict().items():
            value = complex(coefficient)
            if value.imag != 0:
                raise ValueError(f"H_I[{a}, {a}] has an imaginary part {value.imag} * {term}")
            k = columns.setdefault(term, len(columns))
            row[k] = row.get(k, 0.0) + value.real
        entries.append(row)
    table = np.zeros((d, max(1, len(columns))))
    for a, row in enumerate(entries):
        for k, value in row.items():
            table[a, k] = value
    functions = tuple(columns) or (sympy.S.Zero,)
    return DiagonalTerms(
        tuple(symbolic.positions),
        tuple(symbolic.momenta),
        symbolic.H_C,
        functions,
        table,
        sympy.Matrix(symbolic.noise),
        symbolic.domain,
    )


def diagonal_terms(model: Model) -> DiagonalTerms:
    """The model's :class:`DiagonalTerms`: a built-in's own (cheap at any d), else split from
    its SymPy description."""
    from ...models import MODELS
    from ...models.symbolic import LazySymbolicModel
    from .build import symbolic_of

    lazy = callable(model.symbolic) or isinstance(model.symbolic, LazySymbolicModel)
    if lazy and model.name in MODELS:  # a built-in as its builder made it (build._key too)
        spec = builtin_diagonal_terms(model.name, model.params)
        if spec is not None:
            return DiagonalTerms(**spec)
    return terms_from_symbolic(symbolic_of(model))


def _bracket(terms: DiagonalTerms, j: int, expr: Any) -> Any:
    """``{Z_j, f}``: ∂f/∂p for a position, −∂f/∂q for a momentum."""
    k = len(terms.positions)
    if j < k:
        return sympy.diff(expr, terms.momenta[j])
    return -sympy.diff(expr, terms.positions[j - k])


Entry = tuple[str, Any, int, int]
"""One printed entry: its C target (``b[5]``), its expression, its row and its column."""


def _nonzero(matrix: Any, name: str, upper: bool = False) -> list[Entry]:
    """The entries of ``matrix`` (row major; the upper triangle only with ``upper``) that are
    not identically zero, as :data:`Entry` of the C array ``name``."""
    rows, cols = matrix.shape
    return [
        (f"{name}[{r * cols + c}]", matrix[r, c], r, c)
        for r in range(rows)
        for c in range(r if upper else 0, cols)
        if not is_zero(matrix[r, c])
    ]


def _point_function(outputs: list[Entry], n: int) -> list[str]:
    """``cq_table_point``: every entry of ``outputs`` as C, common subexpressions shared."""
    replacements, reduced = sympy.cse([e for _, e, _, _ in outputs], optimizations="basic")
    lines = [
        "static inline void cq_table_point(const double *z, double *flow, double *f, double *b,",
        "                                  double *kappa, double *Q, double *S)",
        "{",
    ]
    lines += [f"    const double z_{r} = z[{r}];" for r in range(n)]
    lines += [f"    const double {s} = {to_c(e)};" for s, e in replacements]
    lines += [f"    {t} = {to_c(e)};" for (t, _, _, _), e in zip(outputs, reduced, strict=True)]
    lines += ["    (void)z; (void)flow; (void)f; (void)b; (void)kappa; (void)Q; (void)S;", "}", ""]
    return lines


def _contractions(
    b: list[Entry], kappa: list[Entry], Q: list[Entry], S: list[Entry], sizes: dict[str, int]
) -> list[str]:
    """``cq_means``, ``cq_weights``, ``cq_square`` and ``cq_noise`` (contract of each in
    ``table_step.c``), written out over the non-zero entries only."""

    def total(products: list[str]) -> str:
        return " + ".join(products) if products else "0.0"

    lines = [
        "static inline void cq_means(const double *b, const double *kappa, const double *tau,",
        "                            double *mean_L, double *mean_K)",
        "{",
    ]
    for j in range(sizes["NLC"]):  # ⟨L_j⟩ = Σ_k b_jk τ_k
        lines.append(
            f"    mean_L[{j}] = {total([f'{t} * tau[{c}]' for t, _, r, c in b if r == j])};"
        )
    for i in range(sizes["M"]):  # ⟨K_i⟩ = Σ_k κ_ik τ_k per unit sigma
        products = [f"{t} * tau[{c}]" for t, _, r, c in kappa if r == i]
        lines.append(f"    mean_K[{i}] = {total(products)};")
    lines += ["    (void)b; (void)kappa; (void)tau; (void)mean_L; (void)mean_K;", "}", ""]
    lines += ["static inline void cq_weights(const double *kappa, const double *dY, double *u)"]
    lines += ["{"]
    for k in range(sizes["KT"]):  # u_k = Σ_i κ_ik dY_i
        lines.append(f"    u[{k}] = {total([f'{t} * dY[{r}]' for t, _, r, c in kappa if c == k])};")
    lines += ["    (void)kappa; (void)dY;", "}", ""]
    squares = [  # K2_a = Σ_k Q_kk T_ak² + 2 Σ_{k<l} Q_kl T_ak T_al per unit sigma²
        f"{t} * (t[{k}] * t[{k}])" if k == col else f"2.0 * {t} * (t[{k}] * t[{col}])"
        for t, _, k, col in Q
    ]
    lines += ["static inline double cq_square(const double *Q, const double *t)", "{"]
    lines += ["    (void)Q; (void)t;", f"    return {total(squares)};", "}", ""]
    lines += [
        "static inline void cq_noise(const double *S, const double *w, double sigma, "
        "double *z_new)",
        "{",
    ]
    for r in range(sizes["NC"]):  # z_new_r += sigma Σ_i S_ri w_i
        products = [f"{t} * w[{c}]" for t, _, row, c in S if row == r]
        if products:
            lines.append(f"    z_new[{r}] += sigma * ({total(products)});")
    lines += ["    (void)S; (void)w; (void)sigma; (void)z_new;", "}", ""]
    return lines


def generate_table_source(terms: DiagonalTerms, *, ziggurat_tables: dict | None = None) -> str:
    """The whole C source of a table kernel (pure mode, exponential scheme): the model's part
    (sizes, ``cq_table_point``, the contractions, ``cq_inside``), then ``table_step.c``.

    With ``ziggurat_tables`` (NumPy's, :func:`.ziggurat.tables`) the kernel draws the keyed
    noise itself. The level table is not in the source (the loader passes it), only its
    digest: one library per table.
    """
    coords = terms.positions + terms.momenta
    n, (d, kt) = len(coords), terms.table.shape
    to_real = {x: sympy.Symbol(f"z_{r}", real=True) for r, x in enumerate(coords)}

    def on_z(expr: Any) -> Any:
        return sympy.sympify(expr).xreplace(to_real)

    flow = [on_z(_bracket(terms, r, terms.H_C)) for r in range(n)]
    brackets = [[_bracket(terms, r, f) for f in terms.functions] for r in range(n)]
    coupled = [r for r in range(n) if not all(is_zero(x) for x in brackets[r])]
    b = sympy.Matrix(len(coupled), kt, lambda j, k: on_z(brackets[coupled[j]][k]))
    S = sympy.Matrix(terms.noise).xreplace(to_real)
    m = S.shape[1]
    kappa = (
        (_pinv(S)[:, coupled] * b / 2).applyfunc(sympy.expand) if coupled else sympy.zeros(m, kt)
    )
    Q = (kappa.T * kappa).applyfunc(sympy.expand)
    entries = [_nonzero(b, "b"), _nonzero(kappa, "kappa"), _nonzero(Q, "Q", True), _nonzero(S, "S")]
    outputs = [(f"flow[{r}]", e, r, 0) for r, e in enumerate(flow)]
    outputs += [(f"f[{k}]", on_z(f), k, 0) for k, f in enumerate(terms.functions)]
    outputs += [entry for group in entries for entry in group]
    sizes = dict(NC=n, D=d, M=m, NLC=len(coupled), KT=kt)
    inside = "1" if terms.domain is None else to_c(on_z(terms.domain))
    table = np.ascontiguousarray(terms.table, dtype=np.float64)
    keyed = ziggurat_tables is not None
    lines = [
        "/* generated by cq_core.solver.fused.codegen_tables from the model's SymPy description */",
        "#include <math.h>",
        "#include <stdint.h>",
        "#include <stdlib.h>",
        "#include <string.h>",
        *(f"#define {key} {value}" for key, value in sizes.items()),
        f"#define KEYED_NOISE {int(keyed)}",
        "static const int64_t COUPLED[{}] = {{{}}};".format(
            max(1, len(coupled)), ", ".join(map(str, coupled)) or "0"
        ),
        # one library per table: each loaded library holds its own cq_table pointer
        f"/* level table sha256 {hashlib.sha256(table.tobytes()).hexdigest()} */",
        "",
    ]
    if keyed:
        lines.append(c_tables(ziggurat_tables))
    lines.append(SHARED.read_text())
    lines += _point_function(outputs, n) + _contractions(*entries, sizes)
    lines += ["static inline int cq_inside(const double *z)", "{"]
    lines += [f"    const double z_{r} = z[{r}];" for r in range(n)]
    lines += [f"    (void)z_0; return ({inside}) ? 1 : 0;", "}", ""]
    return "\n".join(lines) + "\n" + STEP.read_text()
