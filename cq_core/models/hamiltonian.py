"""A model from its Hamiltonian: :func:`from_hamiltonian` (docs/physics.md, "Equations → code").

The physicist writes ``H_C`` (a SymPy scalar), ``H_I`` (a d × d SymPy matrix) and the noise
shape of each noisy component; this module derives the Hamiltonian flow ``{Z_j, H_C}`` and
every back-reaction operator ``L_j = {Z_j, H_I}``, checks the model symbolically (for every
Z, not only at z0) and returns an ordinary :class:`cq_core.Model` of NumPy functions made by
``sympy.lambdify``, with its :class:`SymbolicModel` attached as ``model.symbolic``.

SymPy is imported inside the functions only, so importing :mod:`cq_core` never pays for it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .base import Model
from .symbolic import SymbolicModel, nonzero_entries
from .symbolic_checks import check_complete_positivity, check_free_symbols, check_real

__all__ = ["from_hamiltonian", "symbolic_model", "model_from_symbolic"]


def _error(name: str, message: str) -> ValueError:
    return ValueError(f"model {name!r}: {message}")


def _coordinates(name: str, positions: Any, momenta: Any) -> tuple[tuple, tuple]:
    import sympy

    positions, momenta = tuple(positions), tuple(momenta)
    for key, group in (("positions", positions), ("momenta", momenta)):
        if not group or not all(isinstance(s, sympy.Symbol) for s in group):
            raise _error(name, f"{key} must be a non-empty list of SymPy symbols, got {group!r}")
    if len(positions) != len(momenta):
        raise _error(
            name,
            f"positions and momenta must have equal lengths, got {len(positions)} positions "
            f"{positions} and {len(momenta)} momenta {momenta}",
        )
    if len(set(positions + momenta)) != 2 * len(positions):
        raise _error(
            name, f"positions and momenta must be distinct symbols, got {positions + momenta}"
        )
    return positions, momenta


def _symbol_for(name: str, key: Any, known: Mapping[str, Any], what: str) -> Any:
    """A Mapping key (a Symbol, or its name) as one of the ``known`` symbols (by name)."""
    label = key if isinstance(key, str) else getattr(key, "name", None)
    if label not in known:
        raise _error(name, f"{what} key {key!r} is not one of {', '.join(known) or 'none'}")
    return known[label]


def _real_number(name: str, where: str, value: Any) -> float:
    try:
        number = complex(value)
    except (TypeError, ValueError) as err:
        raise _error(name, f"{where} must be a number, got {value!r}") from err
    if number.imag != 0 or not np.isfinite(number.real):
        raise _error(name, f"{where} must be a finite real number, got {value!r}")
    return number.real


def _substitutions(name: str, params: Mapping | None, free: set, coords: tuple) -> dict:
    import sympy

    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise _error(name, f"params must be a dict from parameter symbol to value, got {params!r}")
    by_name = {s.name: s for s in free}
    coord_names = {s.name for s in coords}
    subs = {}
    for key, value in params.items():
        label = key if isinstance(key, str) else getattr(key, "name", repr(key))
        if label in coord_names:
            raise _error(name, f"params gives a value to {label}, a phase-space coordinate")
        symbol = key if isinstance(key, sympy.Symbol) else by_name.get(label, sympy.Symbol(label))
        number = _real_number(name, f"params[{label}]", value)
        is_int = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
        subs[symbol] = sympy.Integer(int(value)) if is_int else sympy.Float(number)
    return subs


def _as_matrix(name: str, H_I: Any) -> Any:
    import sympy

    if isinstance(H_I, sympy.MatrixBase):
        matrix = H_I
    elif isinstance(H_I, (list, tuple)):
        matrix = sympy.ImmutableMatrix(H_I)
    else:
        raise _error(
            name,
            f"H_I must be a d×d SymPy Matrix (e.g. lam*q*cq_core.sz + Omega*cq_core.sx), got "
            f"{type(H_I).__name__} {H_I!r}",
        )
    if matrix.rows != matrix.cols or matrix.rows < 1:
        raise _error(name, f"H_I must be a square matrix, got shape {matrix.shape}")
    if matrix.rows > 64:
        return sympy.ImmutableSparseMatrix(matrix)
    return sympy.ImmutableMatrix(matrix)


def _noise_matrix(name: str, noise: Any, coords: tuple) -> Any:
    """The n × m noise matrix: one Wiener process per entry, in the order of the coordinates."""
    import sympy

    if not isinstance(noise, Mapping) or not noise:
        raise _error(
            name,
            "noise must be a non-empty dict from a phase-space symbol to its noise shape per "
            f"unit sigma (e.g. {{p: 1}}), got {noise!r}",
        )
    known = {s.name: s for s in coords}
    rows = {}
    for key, value in noise.items():
        symbol = _symbol_for(name, key, known, "noise")
        rows[coords.index(symbol)] = sympy.sympify(value)
    order = sorted(rows)
    return sympy.ImmutableMatrix(
        len(coords), len(order), lambda j, i: rows[j] if order[i] == j else 0
    )


def symbolic_model(
    *,
    name: str,
    positions: Sequence,
    momenta: Sequence,
    H_C: Any,
    H_I: Any,
    noise: Mapping,
    params: Mapping | None = None,
    domain: Any = None,
) -> SymbolicModel:
    """The :class:`SymbolicModel` of the arguments of :func:`from_hamiltonian`, with every
    parameter substituted and checked (free symbols, reality, Hermiticity)."""
    import sympy

    positions, momenta = _coordinates(name, positions, momenta)
    coords = positions + momenta
    H_C = sympy.sympify(H_C)
    if isinstance(H_C, sympy.MatrixBase) or not isinstance(H_C, sympy.Expr):
        raise _error(name, f"H_C must be a scalar SymPy expression, got {H_C!r}")
    H_I = _as_matrix(name, H_I)
    noise_matrix = _noise_matrix(name, noise, coords)
    if domain is not None:
        domain = sympy.sympify(domain)
        if domain is sympy.true:
            domain = None
        elif not isinstance(domain, sympy.logic.boolalg.Boolean) or domain is sympy.false:
            raise _error(name, f"domain must be a SymPy relation such as q > 0, got {domain!r}")
    free = set(H_C.free_symbols) | set(H_I.free_symbols) | set(noise_matrix.free_symbols)
    free |= set(domain.free_symbols) if domain is not None else set()
    subs = _substitutions(name, params, free, coords)

    def exact_zeros(e: Any) -> Any:  # Float 0.0 entries (e.g. Omega = 0.0) become exact 0
        return sympy.S.Zero if e.is_zero else e

    H_C, H_I = H_C.xreplace(subs), H_I.xreplace(subs).applyfunc(exact_zeros)
    noise_matrix = noise_matrix.xreplace(subs).applyfunc(exact_zeros)
    domain = domain.xreplace(subs) if domain is not None else None
    check_free_symbols(name, "H_C", H_C, coords)
    for (a, b), value in H_I.todok().items():
        check_free_symbols(name, f"H_I[{a}, {b}]", value, coords)
    for (j, _), value in noise_matrix.todok().items():
        check_free_symbols(name, f"the noise on {coords[j]}", value, coords)
    if domain is not None:
        check_free_symbols(name, "domain", domain, coords)
    sym = SymbolicModel(positions, momenta, H_C, H_I, noise_matrix, domain)
    check_real(name, sym)
    return sym


def _vectorised(
    exprs: Mapping[tuple, Any], shape: tuple, coords: tuple, dtype: type, constant_axis: bool
) -> Callable[[np.ndarray], np.ndarray]:
    """``Z (N, n) -> (N, *shape)`` filled from ``{index: expression}`` (zeros elsewhere).

    With ``constant_axis`` and no entry depending on Z, the function returns one precomputed
    array of shape ``(1, *shape)`` (it broadcasts over trajectories)."""
    import sympy

    keys = list(exprs)
    function = sympy.lambdify(coords, [exprs[k] for k in keys], modules="numpy")
    if constant_axis and not any(exprs[k].free_symbols for k in keys):
        table = np.zeros((1, *shape), dtype=dtype)
        for key, value in zip(keys, function(*([0.0] * len(coords))), strict=True):
            table[(0, *key)] = value
        return lambda Z: table

    def evaluate(Z: np.ndarray) -> np.ndarray:
        out = np.zeros((Z.shape[0], *shape), dtype=dtype)
        for key, value in zip(keys, function(*Z.T), strict=True):
            out[(slice(None), *key)] = value
        return out

    return evaluate


def _initial_point(name: str, z0: Any, coords: tuple) -> np.ndarray:
    if not isinstance(z0, Mapping):
        raise _error(name, f"z0 must be a dict from each coordinate to its value, got {z0!r}")
    known = {s.name: s for s in coords}
    values = {}
    for key, value in z0.items():
        symbol = _symbol_for(name, key, known, "z0")
        values[symbol] = _real_number(name, f"z0[{symbol}]", value)
    missing = [s.name for s in coords if s not in values]
    if missing:
        raise _error(name, f"z0 gives no value to {', '.join(missing)}")
    return np.array([values[s] for s in coords])


def model_from_symbolic(
    sym: SymbolicModel,
    *,
    name: str,
    z0: np.ndarray,
    psi0: Any,
    params: Mapping[str, Any],
    coord_labels: Sequence[str] | None = None,
    level_labels: Sequence[str] | None = None,
    sigma_name: str = "sigma",
    basis_pair: tuple[int, int] | None = None,
) -> Model:
    """A :class:`Model` of NumPy functions lambdified from ``sym`` (checked: complete
    positivity for every Z, z0 inside the domain, everything finite at z0)."""
    import sympy

    coords, n, d = sym.coords, len(sym.coords), sym.dim
    derived = sym.derive()
    check_complete_positivity(name, sym, derived)
    z0 = np.asarray(z0, dtype=float)
    at_z0 = dict(zip(coords, z0, strict=True))
    if sym.domain is not None and sym.domain.xreplace(at_z0) is not sympy.true:
        point = ", ".join(f"{s} = {v}" for s, v in at_z0.items())
        raise _error(name, f"z0 ({point}) is outside the domain {sym.domain}")
    diagonal = derived.diagonal
    coupled = derived.coupled or (len(sym.positions),)  # no coupling: one zero operator
    flow = _vectorised({(j,): f for j, f in enumerate(derived.flow)}, (n,), coords, float, False)
    h_entries = nonzero_entries(sym.H_I)
    if diagonal:
        hamiltonian = _vectorised(
            {(a,): v for (a, _), v in h_entries.items()}, (d,), coords, float, False
        )
        l_entries = {
            (c, a): v
            for c, j in enumerate(coupled)
            for (a, _), v in derived.backreaction.get(j, {}).items()
        }
        backreaction = _vectorised(l_entries, (len(coupled), d), coords, float, True)
    else:
        hamiltonian = _vectorised(h_entries, (d, d), coords, complex, False)
        l_entries = {
            (c, a, b): v
            for c, j in enumerate(coupled)
            for (a, b), v in derived.backreaction.get(j, {}).items()
        }
        backreaction = _vectorised(l_entries, (len(coupled), d, d), coords, complex, True)
    noise_entries = nonzero_entries(sym.noise)
    noise_fn = _vectorised(noise_entries, sym.noise.shape, coords, float, True)
    noise_shape = noise_fn if sym.noise.free_symbols else noise_fn(z0[None, :])[0]
    extra = {}
    if sym.domain is not None:
        inside = sympy.lambdify(coords, sym.domain, modules="numpy")
        extra["domain"] = lambda Z: np.broadcast_to(
            np.asarray(inside(*Z.T), dtype=bool), Z.shape[:1]
        )
    Z0 = z0[None, :]
    with np.errstate(all="ignore"):
        values = {
            "the flow {Z, H_C}": flow(Z0),
            "H_I": hamiltonian(Z0),
            "the back-reaction operators L_j": backreaction(Z0),
            "the noise": np.asarray(noise_shape(Z0) if callable(noise_shape) else noise_shape),
        }
    for what, value in values.items():
        if not np.all(np.isfinite(value)):
            raise _error(name, f"{what} is not finite at z0 = {z0.tolist()}: {value.tolist()}")
    return Model(
        name=name,
        params=dict(params),
        coord_labels=tuple(coord_labels or (s.name for s in coords)),
        level_labels=tuple(level_labels or (str(a) for a in range(d))),
        z0=z0,
        psi0=psi0,
        hamiltonian_flow=flow,
        interaction_hamiltonian=hamiltonian,
        backreaction_operators=backreaction,
        noise_shape=noise_shape,
        diagonal=diagonal,
        sigma_name=sigma_name,
        basis_pair=basis_pair,
        coupled=coupled,
        symbolic=sym,
        **extra,
    )


def from_hamiltonian(
    *,
    name: str,
    positions: Sequence,
    momenta: Sequence,
    H_C: Any,
    H_I: Any,
    noise: Mapping,
    z0: Mapping,
    psi0: Sequence,
    params: Mapping | None = None,
    domain: Any = None,
    coord_labels: Sequence[str] | None = None,
    level_labels: Sequence[str] | None = None,
    sigma_name: str = "sigma",
    basis_pair: tuple[int, int] | None = None,
    model_params: Mapping[str, Any] | None = None,
) -> Model:
    """A :class:`Model` from its Hamiltonian ``H = H_C·1 + H_I`` (ħ = 1; docs/models.md).

    Parameters
    ----------
    name
        The model's name (recorded in every Dataset).
    positions, momenta
        Equal-length lists of SymPy symbols q_1..q_k and p_1..p_k; Z = (q, p), n = 2k.
    H_C
        The classical Hamiltonian, a SymPy scalar in Z and the parameters.
    H_I
        The interaction Hamiltonian, a d × d Hermitian SymPy ``Matrix`` (``cq_core.sx``,
        ``sy``, ``sz``, ``on_site`` and ``kron`` help write it).
    noise
        ``{symbol: shape}``: each entry is its own Wiener process W_i driving that component
        with ``dZ_j ⊃ sigma · shape(Z) dW_i`` (a number or an expression such as ``1/sqrt(q)``).
    z0
        ``{symbol: value}`` for every coordinate: the initial classical state.
    psi0
        d amplitudes of the initial state (normalised here).
    params
        ``{symbol: value}`` for every other symbol of H_C, H_I, noise and domain.
    domain
        Where the model is defined: a SymPy relation or conjunction (``q > 0``); a trajectory
        that leaves it is frozen and flagged.
    coord_labels, level_labels, sigma_name, basis_pair
        As in :class:`Model` (defaults: the symbol names, ``"0".."d-1"``, ``"sigma"``,
        ``(0, d−1)``).
    model_params
        What ``Model.params`` records (default: the parameters by name, ``z0`` and ``psi0``).

    Derives ``{Z_j, H_C}``, every ``L_j = {Z_j, H_I}``, the coupled components (L_j ≠ 0),
    whether the operators are diagonal, and checks for every Z the complete-positivity
    condition ``(1 − D2 D2⁺) D1 = 0``. Raises ``ValueError`` saying what and where for a
    non-Hermitian H_I, a symbol with no value, a coupled component without noise, a z0
    outside the domain, or a value that is not finite at z0.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"from_hamiltonian: name must be a non-empty string, got {name!r}")
    sym = symbolic_model(
        name=name,
        positions=positions,
        momenta=momenta,
        H_C=H_C,
        H_I=H_I,
        noise=noise,
        params=params,
        domain=domain,
    )
    z0_vector = _initial_point(name, z0, sym.coords)
    try:
        psi = np.array([complex(a) for a in psi0])
    except (TypeError, ValueError) as err:
        raise _error(name, f"psi0 must be a sequence of {sym.dim} numbers, got {psi0!r}") from err
    if model_params is None:
        model_params = {getattr(k, "name", str(k)): float(v) for k, v in (params or {}).items()}
        model_params.update(z0=z0_vector.tolist(), psi0=psi)
    return model_from_symbolic(
        sym,
        name=name,
        z0=z0_vector,
        psi0=psi,
        params=model_params,
        coord_labels=coord_labels,
        level_labels=level_labels,
        sigma_name=sigma_name,
        basis_pair=basis_pair,
    )
