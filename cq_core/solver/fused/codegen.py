"""C source of a model's compiled kernel, generated from its SymPy description.

:func:`generate_source` turns a :class:`cq_core.models.symbolic.SymbolicModel` into the
model's part of the kernel: sizes, flags and two C functions of one classical point
(``cq_point``, ``cq_inside``; their contract is at the top of ``generic_step.c``), followed
by the shared C (``generic_step.c``, ``diagonal_step.c``, ``kraus_step.c``, ``loop_shared.c``,
``run_loop.c``).
Derived here, symbolically, once per model:

- the flow ``{Z_j, H_C}`` and the back-reaction operators ``L_j = {Z_j, H_I}``;
- the pseudo-inverse of the noise shape ``S(Z)`` and the measurement operators per unit
  strength ``K_i = ½ Σ_j (S⁺)_ij L_j`` with ``K2 = Σ_i K_i²`` (docs/physics.md,
  "Equations → code");
- common subexpressions shared between all of them (``sympy.cse``), printed with
  ``sympy.ccode``.

Only :mod:`.build` imports this module, and only when a kernel is not in the on-disk cache:
it is the one place of a run that imports SymPy.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import sympy
from sympy.printing.c import C99CodePrinter
from sympy.printing.precedence import precedence

from .ziggurat import c_tables

__all__ = ["TEMPLATE", "generate_source", "to_c"]

TEMPLATE = tuple(
    Path(__file__).with_name(name)
    for name in (
        "generic_step.c",
        "diagonal_step.c",
        "kraus_step.c",
        "loop_shared.c",
        "run_loop.c",
    )
)
"""The C shared by every generated kernel: the quantum steps, then the loop and RK4."""


MAX_POWER_PRODUCT = 8
"""Integer and half-integer powers up to this exponent are printed as products (and a
``sqrt``): the C library's ``pow`` costs tens of ns, more than a whole step of a small model."""


class _KernelPrinter(C99CodePrinter):
    """``sympy.ccode`` with ``x**n`` and ``x**(n/2)`` as products of ``x`` and ``sqrt(x)``."""

    def _print_Pow(self, expr: Any) -> str:
        exponent = _half_integer(expr.exp)
        if not (exponent.is_Rational and exponent.q in (1, 2)):
            return super()._print_Pow(expr)
        whole, half = divmod(abs(exponent.p), 2) if exponent.q == 2 else (abs(exponent.p), 0)
        if whole + half > MAX_POWER_PRODUCT or whole + half == 0:
            return super()._print_Pow(expr)
        base = self.parenthesize(expr.base, precedence(expr))
        factors = [base] * whole + ([f"sqrt({self._print(expr.base)})"] * half)
        product = "*".join(factors)
        return f"(1.0/({product}))" if exponent < 0 else f"({product})"


def _half_integer(exponent: Any) -> Any:
    """A Float exponent that is a multiple of ½ as a Rational (else unchanged)."""
    if exponent.is_Float and float(2 * exponent).is_integer():
        return sympy.Rational(int(2 * exponent), 2)
    return exponent


def _shared_reciprocals(expressions: list[Any]) -> tuple[list[Any], dict[Any, Any]]:
    """Negative powers ``s**(-k/2)`` of a symbol ``s`` (a coordinate or a common subexpression)
    that has any negative half-integer power, rewritten as ``r**k`` of one ``r = 1/sqrt(s)``:
    one square root and one division per symbol instead of one per power (a gravitational
    model needs |r|⁻¹, |r|⁻³ and |r|⁻⁴ of each distance). Returns the expressions and
    ``{s: r}``."""

    def negative_power(x: Any, halves: bool) -> bool:
        exponent = _half_integer(x.exp) if x.is_Pow else None
        return bool(
            x.is_Pow
            and x.base.is_Symbol
            and exponent.is_Rational
            and exponent < 0
            and exponent.q == (2 if halves else exponent.q)
            and exponent.q in (1, 2)
            and -2 * exponent <= 2 * MAX_POWER_PRODUCT
        )

    bases = {x.base for e in expressions for x in e.atoms(sympy.Pow) if negative_power(x, True)}
    reciprocal = {b: sympy.Symbol(f"rsqrt_{b.name}", positive=True) for b in bases}

    def rewrite(x: Any) -> Any:
        return reciprocal[x.base] ** int(-2 * _half_integer(x.exp))

    def shared(x: Any) -> bool:
        return negative_power(x, False) and x.base in reciprocal

    return [sympy.sympify(e).replace(shared, rewrite) for e in expressions], reciprocal


def to_c(expr: Any) -> str:
    """C text of a real SymPy expression, small powers written as products."""
    return _KernelPrinter().doprint(expr)


def _real_parts(expr: Any) -> tuple[Any, Any]:
    """(re, im) of an expression of real symbols (only expressions with i are split)."""
    expr = sympy.sympify(expr)
    if not expr.has(sympy.I):
        return expr, sympy.S.Zero
    return sympy.expand_complex(expr).as_real_imag()


def _matrix_entries(matrix: Any, diagonal: bool) -> list[Any]:
    """Diagonal entries (real) or every entry as re, im pairs, row major."""
    d = matrix.shape[0]
    if diagonal:
        return [_real_parts(matrix[a, a])[0] for a in range(d)]
    entries = []
    for a in range(d):
        for b in range(d):
            entries.extend(_real_parts(matrix[a, b]))
    return entries


def _pinv(S: Any) -> Any:
    """The Moore–Penrose pseudo-inverse of the noise shape S (n × m, full column rank when
    every Wiener process drives some component): ``(SᵀS)⁻¹ Sᵀ``, which for the usual shapes —
    one noise per component — is a diagonal inverse."""
    gram = S.T * S
    if gram.is_diagonal():
        inverse = sympy.diag(*[sympy.cancel(1 / gram[i, i]) for i in range(gram.shape[0])])
    else:
        inverse = sympy.simplify(gram.inv())
    return (inverse * S.T).applyfunc(sympy.cancel)


def _nonzero(matrices: list[Any], diagonal: bool) -> list[str]:
    """The structure of each entry (diagonal, or row major) over all ``matrices``: bit 1 if its
    real part, bit 2 if its imaginary part is not identically zero in any of them. The step
    loop skips zero entries and multiplies by real or imaginary ones in two products."""
    d = matrices[0].shape[0] if matrices else 1
    cells = [(a, a) for a in range(d)] if diagonal else [(a, b) for a in range(d) for b in range(d)]
    flags = []
    for a, b in cells:
        parts = [_real_parts(X[a, b]) for X in matrices]
        real = any(not sympy.sympify(re).is_zero for re, _ in parts)
        imaginary = any(not sympy.sympify(im).is_zero for _, im in parts)
        flags.append(str(int(real) + 2 * int(imaginary)))
    return flags


def _kraus_structure(masks: dict[str, list[str]], d: int) -> list[str]:
    """The structure (as :func:`_nonzero`) of the Kraus operator
    ``M = 1 − i H dt − c K2 dt + A + ½ A²`` with ``A = Σ_i K_i dY_i`` (dY_i real), as
    ``kraus_step.c`` builds it from the structures of H, K2 and K: real parts from 1, the
    imaginary part of H and the real parts of K2, K and A²; imaginary parts from the real part
    of H and the imaginary parts of the others."""
    H, K2, K = ([int(x) for x in masks[name]] for name in ("NZ_H", "NZ_K2", "NZ_K"))
    structure = []
    for a in range(d):
        for b in range(d):
            x, square = a * d + b, 0
            for c in range(d):
                left, right = K[a * d + c], K[c * d + b]
                if left and right:
                    square |= int(bool(left & right & 1 or left & right & 2))
                    square |= 2 * int(bool(left & 1 and right & 2 or left & 2 and right & 1))
            real = a == b or H[x] & 2 or K2[x] & 1 or K[x] & 1 or square & 1
            imaginary = H[x] & 1 or K2[x] & 2 or K[x] & 2 or square & 2
            structure.append(str(int(bool(real)) + 2 * int(bool(imaginary))))
    return structure


def _point_functions(symbolic: Any, diagonal: bool) -> tuple[str, dict[str, int], list[int]]:
    """C text of ``cq_point`` and ``cq_inside``, the sizes, and the coupled components."""
    coords = symbolic.coords
    n = len(coords)
    real = [sympy.Symbol(f"z_{k}", real=True) for k in range(n)]
    to_real = dict(zip(coords, real, strict=True))

    def on_z(expr: Any) -> Any:
        return sympy.sympify(expr).xreplace(to_real)

    flow = [on_z(f) for f in symbolic.flow()]
    L_all = [sympy.Matrix(L).xreplace(to_real) for L in symbolic.backreaction()]
    coupled = [j for j, L in enumerate(L_all) if not L.is_zero_matrix]
    H = sympy.Matrix(symbolic.H_I).xreplace(to_real)
    S = sympy.Matrix(symbolic.noise).xreplace(to_real)
    d, m = H.shape[0], S.shape[1]
    S_pinv = _pinv(S)  # (m, n)
    K = [
        sympy.Rational(1, 2) * sum((S_pinv[i, j] * L_all[j] for j in coupled), sympy.zeros(d, d))
        for i in range(m)
    ]
    K2 = sum((Ki * Ki for Ki in K), sympy.zeros(d, d))
    outputs: list[tuple[str, Any]] = [(f"flow[{r}]", flow[r]) for r in range(n)]
    parts = [("H", [H]), ("L", [L_all[j] for j in coupled]), ("K", K), ("K2", [K2])]
    for name, matrices in parts:
        values = [v for matrix in matrices for v in _matrix_entries(matrix, diagonal)]
        target = name if diagonal else f"((double *){name})"
        outputs += [(f"{target}[{x}]", v) for x, v in enumerate(values)]
    outputs += [(f"S[{r * m + i}]", S[r, i]) for r in range(n) for i in range(m)]
    outputs += [
        (f"P[{i * len(coupled) + k}]", S_pinv[i, j])
        for i in range(m)
        for k, j in enumerate(coupled)
    ]
    masks = {
        "NZ_H": _nonzero([H], diagonal),
        "NZ_L": _nonzero([L_all[j] for j in coupled], diagonal),
        "NZ_K": _nonzero(K, diagonal),
        "NZ_K2": _nonzero([K2], diagonal),
    }
    if not diagonal:
        masks["NZ_M"] = _kraus_structure(masks, d)
    # the noise shape and its pseudo-inverse: entries identically zero are skipped (a product
    # with a zero is not zero in IEEE arithmetic and would be computed every step)
    masks["NZ_S"] = [
        str(int(not sympy.sympify(S[r, i]).is_zero)) for r in range(n) for i in range(m)
    ]
    # the drift: the flow and, on coupled components, the back-reaction ⟨L_j⟩
    masks["NZ_FLOW"] = [
        str(int(r in coupled or not sympy.sympify(f).is_zero)) for r, f in enumerate(flow)
    ]
    masks["NZ_P"] = [
        str(int(not sympy.sympify(S_pinv[i, j]).is_zero)) for i in range(m) for j in coupled
    ] or ["0"]
    real_diagonal = all(
        flag in ("0", "1") and (flag == "0" or x % (d + 1) == 0)
        for name in ("NZ_K", "NZ_K2")
        for x, flag in enumerate(masks[name])
    )
    replacements, reduced = sympy.cse([v for _, v in outputs], optimizations="basic")
    op = "double" if diagonal else "cplx"
    lines = [
        f"static inline void cq_point(const double *z, double *flow, {op} *H, {op} *L,",
        f"                            {op} *K, {op} *K2, double *S, double *P)",
        "{",
    ]
    defined = [sympy.Symbol(f"z_{k}", real=True) for k in range(n)] + [s for s, _ in replacements]
    rewritten, reciprocal = _shared_reciprocals([e for _, e in replacements] + list(reduced))
    definitions = [f"z[{k}]" for k in range(n)] + [to_c(e) for e in rewritten[: len(replacements)]]
    for symbol, definition in zip(defined, definitions, strict=True):
        lines.append(f"    const double {symbol} = {definition};")
        if symbol in reciprocal:
            lines.append(f"    const double {reciprocal[symbol]} = 1.0/sqrt({symbol});")
    reduced = rewritten[len(replacements) :]
    lines += [f"    {target} = {to_c(v)};" for (target, _), v in zip(outputs, reduced, strict=True)]
    lines += ["    (void)z;", "}", ""]
    for name, mask in masks.items():
        lines.append(f"static const unsigned char {name}[{len(mask)}] = {{{', '.join(mask)}}};")
    lines += ["static inline int cq_inside(const double *z)", "{"]
    lines += [f"    const double z_{k} = z[{k}];" for k in range(n)]
    inside = "1" if symbolic.domain is None else to_c(on_z(symbolic.domain))
    lines += [f"    (void)z_0; return ({inside}) ? 1 : 0;", "}", ""]
    varies = any(not sympy.sympify(x).is_constant() for x in S_pinv)
    sizes = {"NC": n, "D": d, "M": m, "NLC": len(coupled), "NOISE_VARIES": int(varies)}
    sizes["REAL_DIAGONAL_K"] = int(real_diagonal and not diagonal)
    return "\n".join(lines), sizes, coupled


EXP_TABLE_BITS = 7
"""``cq_exp`` (generic_step.c) reduces x by multiples of ln 2 / 2⁷: a table of 128 entries."""


def exp_table() -> str:
    """C definition of ``EXP_TABLE`` for ``cq_exp``: for k < N = 2^:data:`EXP_TABLE_BITS`,
    2^(k/N) = H_k (1 + T_k) with H_k its nearest double; entry 2k holds the bits of T_k, entry
    2k + 1 those of H_k less k · 2^52 / N (the exponent ``cq_exp`` adds back). Exact to the
    last bit (decimal arithmetic with 60 digits)."""
    from decimal import Decimal, localcontext

    n = 1 << EXP_TABLE_BITS
    entries = []
    with localcontext() as context:
        context.prec = 60
        for k in range(n):
            exact = Decimal(2) ** (Decimal(k) / n)
            high = float(exact)
            tail = float((exact - Decimal(high)) / Decimal(high))
            entries.append(struct.unpack("<Q", struct.pack("<d", tail))[0])
            high_bits = struct.unpack("<Q", struct.pack("<d", high))[0]
            entries.append((high_bits - (k << (52 - EXP_TABLE_BITS))) % 2**64)
    text = ", ".join(f"{v:#x}u" for v in entries)
    define = f"#define EXP_TABLE_BITS {EXP_TABLE_BITS}\n"
    return define + f"static const uint64_t EXP_TABLE[{2 * n}] = {{{text}}};\n"


def generate_source(
    symbolic: Any,
    *,
    diagonal: bool,
    density: bool,
    mean_field: bool = False,
    ziggurat_tables: dict[str, tuple] | None = None,
) -> str:
    """The whole C source of one kernel: the model's part, then the shared C (:data:`TEMPLATE`).

    ``diagonal`` picks the exponential scheme on real diagonals, else the Kraus scheme on full
    matrices; ``density`` the density-matrix state, else the pure state; ``mean_field`` the
    deterministic mean-field equations (RK4) instead. With ``ziggurat_tables`` (NumPy's, from
    :func:`.ziggurat.tables`) the kernel can draw the keyed noise itself (``loop_shared.c``).
    """
    functions, sizes, coupled = _point_functions(symbolic, diagonal)
    keyed = ziggurat_tables is not None
    header = [
        "/* generated by cq_core.solver.fused.codegen from the model's SymPy description */",
        "#include <complex.h>",
        "#include <math.h>",
        "#include <stdint.h>",
        "typedef double complex cplx;",
        *(f"#define {key} {value}" for key, value in sizes.items()),
        f"#define DIAG {int(diagonal)}",
        f"#define DENSITY {int(density)}",
        f"#define KRAUS {int(not diagonal)}",
        f"#define MEANFIELD {int(mean_field)}",
        f"#define KEYED_NOISE {int(keyed and not mean_field)}",
        "static const int64_t COUPLED[{}] = {{{}}};".format(
            max(1, len(coupled)), ", ".join(map(str, coupled)) or "0"
        ),
        exp_table(),
    ]
    if keyed and not mean_field:
        header.append(c_tables(ziggurat_tables))
    return "\n".join(header) + functions + "\n" + "\n".join(p.read_text() for p in TEMPLATE)
