"""The four built-in models written from their Hamiltonians (docs/physics.md).

Each ``_spec_*`` function turns a built-in model's parameters (as the hand-written builder
records them in ``Model.params``) into the arguments of :func:`from_hamiltonian`. From them:

- :func:`builtin_from_hamiltonian` builds the model the ``from_hamiltonian`` way (the same
  numbers as the hand-written builder, to rounding: ``tests/models/test_symbolic_builtins.py``);
- :func:`lazy_builtin_symbolic` is the ``symbolic`` form the hand-written built-ins carry, built
  (importing SymPy) only when first used, so that building a built-in never imports SymPy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .base import Model
from .symbolic import LazySymbolicModel, SymbolicModel

__all__ = [
    "builtin_diagonal_terms",
    "builtin_from_hamiltonian",
    "builtin_symbolic",
    "lazy_builtin_symbolic",
]


def _one_qubit() -> tuple[Any, Any]:
    """σx and σz (SymPy)."""
    from .pauli import pauli

    return pauli("sx"), pauli("sz")


def _spec_linear(params: Mapping[str, Any]) -> dict[str, Any]:
    """``H = p²/2m + (2λq + φ) σz + Ω σx``, noise on p."""
    import sympy

    q, p, m, lam, phi, omega = sympy.symbols("q p m lam phi omega")
    sx, sz = _one_qubit()
    return dict(
        positions=[q],
        momenta=[p],
        H_C=p**2 / (2 * m),
        H_I=(2 * lam * q + phi) * sz + omega * sx,
        noise={p: 1},
        params={m: params["m"], lam: params["lam"], phi: params["phi"], omega: params["omega"]},
        z0={q: params["q0"], p: params["p0"]},
    )


def _spec_sqrt_potential(params: Mapping[str, Any]) -> dict[str, Any]:
    """``H = p²/2m + λ√q σz`` on q > 0, noise ``γ/√q`` on p (γ is the run's sigma)."""
    import sympy

    q, p, m, lam = sympy.symbols("q p m lam")
    _, sz = _one_qubit()
    return dict(
        positions=[q],
        momenta=[p],
        H_C=p**2 / (2 * m),
        H_I=lam * sympy.sqrt(q) * sz,
        noise={p: 1 / sympy.sqrt(q)},
        params={m: params["m"], lam: params["lam"]},
        domain=q > 0,
        z0={q: params["q0"], p: params["p0"]},
    )


def _spec_mass_superposition(params: Mapping[str, Any]) -> dict[str, Any]:
    """``H = |p|²/2m + diag(V_L, V_R) + φσz``, ``V_X = −GMm/√(|r − r_X|² + ε²)``, r_X = ∓d x̂."""
    import sympy

    r = sympy.symbols("x y z")
    momenta = sympy.symbols("px py pz")
    G, M, m, d, eps, phi = sympy.symbols("G M m d eps phi")
    _, sz = _one_qubit()

    def potential(centre: tuple) -> Any:
        dist2 = sum((r_k - c_k) ** 2 for r_k, c_k in zip(r, centre, strict=True)) + eps**2
        return -G * M * m / sympy.sqrt(dist2)

    H_I = sympy.diag(potential((-d, 0, 0)), potential((d, 0, 0))) + phi * sz
    values = {G: params["G"], M: params["M"], m: params["m"], d: params["d"]}
    values.update({eps: params["eps"], phi: params["phi"]})
    return dict(
        positions=list(r),
        momenta=list(momenta),
        H_C=sum(p_k**2 for p_k in momenta) / (2 * m),
        H_I=H_I,
        noise={p_k: 1 for p_k in momenta},
        params=values,
        z0=dict(zip(r + momenta, [*params["r0"], *params["p0"]], strict=True)),
    )


def _spec_qubit_lattice(params: Mapping[str, Any]) -> dict[str, Any]:
    """``H = Σ π_i²/2m + λ Σ_i (φ_i + γ) σz^(i)``, noise on every π_i (H_I diagonal, sparse)."""
    import sympy

    n = int(params["n"])
    fields = sympy.symbols(f"phi0:{n}")
    momenta = sympy.symbols(f"pi0:{n}")
    lam, m, gamma = sympy.symbols("lam m gamma")
    d = 2**n
    # σz^(i) on level a: +1 when bit i (site 0 = most significant) is 0; as on_site(sz, i, n)
    spins = [[1 - 2 * ((a >> (n - 1 - i)) & 1) for i in range(n)] for a in range(d)]
    diagonal = {
        (a, a): lam * sum((f + gamma) * s for f, s in zip(fields, spins[a], strict=True))
        for a in range(d)
    }
    return dict(
        positions=list(fields),
        momenta=list(momenta),
        H_C=sum(p_i**2 for p_i in momenta) / (2 * m),
        H_I=sympy.ImmutableSparseMatrix(d, d, diagonal),
        noise={p_i: 1 for p_i in momenta},
        params={lam: params["lam"], m: params["m"], gamma: params["gamma"]},
        z0=dict(zip(fields + momenta, [*params["phi0"], *params["pi0"]], strict=True)),
    )


def _terms_qubit_lattice(params: Mapping[str, Any]) -> dict[str, Any]:
    """``qubit_lattice``'s ``H_I = Σ_i λ (φ_i + γ) σz^(i)`` as functions of Z times level
    columns: f_i = λ (φ_i + γ), T_ai = σz^(i) on level a (site 0 = the most significant bit),
    without building the 2ⁿ-entry matrix."""
    import sympy

    n = int(params["n"])
    fields = sympy.symbols(f"phi0:{n}")
    momenta = sympy.symbols(f"pi0:{n}")
    lam, m, gamma = (sympy.Float(params[key]) for key in ("lam", "m", "gamma"))
    levels = np.arange(2**n)
    bits = (levels[:, None] >> np.arange(n - 1, -1, -1)[None, :]) & 1
    noise = sympy.zeros(2 * n, n)
    for i in range(n):
        noise[n + i, i] = 1
    return dict(
        positions=tuple(fields),
        momenta=tuple(momenta),
        H_C=sum(p_i**2 for p_i in momenta) / (2 * m),
        functions=tuple(lam * (f + gamma) for f in fields),
        table=1.0 - 2.0 * bits,
        noise=noise,
        domain=None,
    )


def builtin_diagonal_terms(name: str, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """A large diagonal built-in's ``H_I`` as a few functions of Z times constant level columns
    (the fields of ``cq_core.solver.fused.codegen_tables.DiagonalTerms``), parameters
    substituted; None for a model without such a description."""
    if name == "qubit_lattice":
        return _terms_qubit_lattice(params)
    return None


_SPECS: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "linear": _spec_linear,
    "sqrt_potential": _spec_sqrt_potential,
    "mass_superposition": _spec_mass_superposition,
    "qubit_lattice": _spec_qubit_lattice,
}


def _spec(name: str, params: Mapping[str, Any]) -> dict[str, Any]:
    if name not in _SPECS:
        raise ValueError(f"unknown built-in model {name!r}; built-in models: {', '.join(_SPECS)}")
    return _SPECS[name](params)


def builtin_symbolic(name: str, params: Mapping[str, Any]) -> SymbolicModel:
    """The :class:`SymbolicModel` of the built-in ``name`` with its recorded ``params``."""
    from .hamiltonian import symbolic_model

    spec = _spec(name, params)
    spec.pop("z0")
    return symbolic_model(name=name, **spec)


def lazy_builtin_symbolic(name: str, params: Mapping[str, Any]) -> LazySymbolicModel:
    """:func:`builtin_symbolic`, built on first use (no SymPy import until then)."""
    frozen = dict(params)
    return LazySymbolicModel(lambda: builtin_symbolic(name, frozen), label=name)


def builtin_from_hamiltonian(name: str, **params: Any) -> Model:
    """The built-in model ``name`` written with :func:`from_hamiltonian`.

    Takes the same keyword parameters as :func:`cq_core.get_model` (validated by the
    hand-written builder) and returns a :class:`Model` with the same labels, recorded
    parameters and numbers to rounding, but lambdified functions.
    """
    from .hamiltonian import from_hamiltonian
    from .registry import MODELS, get_model

    if name not in MODELS:
        raise ValueError(f"unknown built-in model {name!r}; built-in models: {', '.join(MODELS)}")
    reference = get_model(name, **params)
    spec = _spec(name, reference.params)
    return from_hamiltonian(
        name=name,
        psi0=np.asarray(reference.psi0),
        model_params=reference.params,
        coord_labels=reference.coord_labels,
        level_labels=reference.level_labels,
        sigma_name=reference.sigma_name,
        basis_pair=reference.basis_pair,
        **spec,
    )
