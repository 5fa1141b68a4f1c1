"""The built-in models written with ``from_hamiltonian`` give the hand-written models' numbers."""

from __future__ import annotations

import numpy as np
import pytest

import cq_core
from cq_core.models.symbolic import LazySymbolicModel, SymbolicModel
from cq_core.models.symbolic_builtins import builtin_from_hamiltonian

CASES = [
    ("linear", {}, 0.5),
    ("linear", {"omega": 3.0, "m": 2.0, "psi0": [0.6, 0.8j]}, 0.5),
    ("sqrt_potential", {"lam": 2.0}, 0.3),
    ("mass_superposition", {"eps": 0.1, "phi": 0.5}, 0.02),
    ("qubit_lattice", {"n": 3, "gamma": 1.0, "phi0": [0.1, -0.2, 0.3]}, 0.7),
]


def _run(model, sigma, mode):
    return cq_core.simulate(
        model, sigma=sigma, n_traj=16, t_final=0.2, dt=2e-3, seed=5, mode=mode,
        excess=0.5 if mode == "density" else 0.0, backend="numpy",
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["pure", "density"])
@pytest.mark.parametrize("name, params, sigma", CASES)
def test_same_seed_same_numbers_as_the_hand_written_model(name, params, sigma, mode):
    reference = cq_core.get_model(name, **params)
    derived = builtin_from_hamiltonian(name, **params)
    assert isinstance(derived.symbolic, SymbolicModel)
    assert derived.diagonal == reference.diagonal
    assert derived.coupled == reference.coupled
    assert derived.constant_noise == reference.constant_noise
    assert derived.coord_labels == reference.coord_labels
    assert derived.level_labels == reference.level_labels
    assert cq_core.params_to_json(derived.params) == cq_core.params_to_json(reference.params)
    a, b = _run(reference, sigma, mode), _run(derived, sigma, mode)
    assert a.attrs["method"] == b.attrs["method"]
    np.testing.assert_array_equal(a.status.values, b.status.values)
    np.testing.assert_allclose(b.classical.values, a.classical.values, rtol=0, atol=1e-10)
    state = "psi" if mode == "pure" else "rho"
    np.testing.assert_allclose(b[state].values, a[state].values, rtol=0, atol=1e-10)
    assert np.ptp(a.classical.values[:, -1], axis=0).max() > 0  # the noise did act


def test_the_sqrt_potential_case_leaves_its_domain_the_same_way():
    model = builtin_from_hamiltonian("sqrt_potential", q0=0.05, p0=-1.0)
    ds = _run(model, 0.3, "pure")
    left = ds.status.values == cq_core.STATUS_CODES["left_domain"]
    assert left.any()
    ref = _run(cq_core.get_model("sqrt_potential", q0=0.05, p0=-1.0), 0.3, "pure")
    np.testing.assert_array_equal(ds.status.values, ref.status.values)


@pytest.mark.parametrize("name, params, sigma", CASES)
def test_hand_written_builtins_carry_their_symbolic_form_lazily(name, params, sigma):
    model = cq_core.get_model(name, **params)
    assert isinstance(model.symbolic, LazySymbolicModel)
    assert "not built yet" in repr(model.symbolic)
    derivation = model.symbolic.derive()
    assert derivation.coupled == model.coupled and derivation.diagonal == model.diagonal
    # the symbolic operators evaluate to the hand-written ones at a point
    import sympy

    Z = model.z0 + 0.25
    point = dict(zip(model.symbolic.coords, Z, strict=True))
    H = np.array(model.symbolic.H_I.xreplace(point).evalf(), dtype=complex)
    expected = model.interaction_hamiltonian(Z[None])[0]
    np.testing.assert_allclose(np.diag(H) if model.diagonal else H, expected, atol=1e-12)
    L = model.backreaction_operators(Z[None])[0]
    for c, j in enumerate(model.coupled):
        entries = derivation.backreaction[j]
        Lj = sympy.zeros(model.dim, model.dim)
        for key, value in entries.items():
            Lj[key] = value
        Lj = np.array(Lj.xreplace(point).evalf(), dtype=complex)
        np.testing.assert_allclose(np.diag(Lj) if model.diagonal else Lj, L[c], atol=1e-12)
