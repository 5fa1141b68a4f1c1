"""The model registry and the built-in models of docs/models.md (cq_core/models)."""

from __future__ import annotations

import numpy as np
import pytest

import cq_core
from cq_core.models import params_to_json

DEFAULTS = {
    "linear": dict(m=1.0, lam=1.0, phi=2.0, omega=0.0, q0=0.0, p0=0.0),
    "sqrt_potential": dict(m=1.0, lam=1.0, q0=1.0, p0=-1.0),
    "mass_superposition": dict(G=1.0, M=10.0, m=0.01, d=1.0, eps=0.0, phi=0.0),
    "qubit_lattice": dict(n=5, lam=1.0, m=1.0, gamma=2.0),
}


def test_registry_lists_the_four_models():
    assert cq_core.available_models() == (
        "linear",
        "sqrt_potential",
        "mass_superposition",
        "qubit_lattice",
    )


@pytest.mark.parametrize("name", list(DEFAULTS))
def test_defaults_follow_the_spec(name):
    model = cq_core.get_model(name)
    for key, value in DEFAULTS[name].items():
        assert model.params[key] == value, key
    assert np.isclose(np.linalg.norm(model.psi0), 1.0)


def test_default_initial_states():
    plus = np.array([1, 1]) / np.sqrt(2)
    for name in ("linear", "sqrt_potential", "mass_superposition"):
        np.testing.assert_allclose(cq_core.get_model(name).psi0, plus)
    lattice = cq_core.get_model("qubit_lattice")
    assert lattice.dim == 32 and lattice.level_labels[0] == "00000"
    assert lattice.level_labels[-1] == "11111" and lattice.basis_pair == (0, 31)
    expected = np.zeros(32)
    expected[[0, 31]] = 1 / np.sqrt(2)
    np.testing.assert_allclose(lattice.psi0, expected)
    mass = cq_core.get_model("mass_superposition")
    np.testing.assert_array_equal(mass.z0, [0, -0.5, 0, 0, 0, 0])
    assert mass.coord_labels == ("x", "y", "z", "px", "py", "pz")


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match="unknown model 'harmonic'.*linear.*qubit_lattice"):
        cq_core.get_model("harmonic")


def test_unknown_parameter_lists_valid_parameters():
    with pytest.raises(ValueError, match="unknown parameter.*'?omgea'?.*valid parameters: m, lam"):
        cq_core.get_model("linear", omgea=3.0)


def test_psi0_is_normalised_and_checked():
    model = cq_core.get_model("linear", psi0=[3.0, 4.0j])
    np.testing.assert_allclose(model.psi0, [0.6, 0.8j])
    with pytest.raises(ValueError, match="psi0 must have length 2"):
        cq_core.get_model("linear", psi0=[1, 0, 0])
    with pytest.raises(ValueError, match="psi0 must be a non-zero"):
        cq_core.get_model("mass_superposition", psi0=[0, 0])


def test_linear_operators():
    """H_I = (2λq + φ)σz, L_p = −2λσz (diagonal); with ω the full matrices."""
    model = cq_core.get_model("linear", lam=0.5, phi=1.5)
    Z = np.array([[2.0, 0.3]])
    np.testing.assert_allclose(model.interaction_hamiltonian(Z), [[3.5, -3.5]])
    np.testing.assert_allclose(model.backreaction_operators(Z)[0, 0], [-1.0, 1.0])
    np.testing.assert_allclose(model.hamiltonian_flow(Z), [[0.3, 0.0]])
    driven = cq_core.get_model("linear", lam=0.5, phi=1.5, omega=2.0)
    assert not driven.diagonal
    np.testing.assert_allclose(driven.interaction_hamiltonian(Z)[0], [[3.5, 2.0], [2.0, -3.5]])


def test_mass_superposition_force_gap_at_r0():
    """Δf = F_L − F_R at r0 = (0, −0.5, 0) has |Δf| ≈ 0.143 along x (docs/physics.md)."""
    model = cq_core.get_model("mass_superposition")
    forces = model.backreaction_operators(model.z0[None])[0]  # (3 axes, 2 levels)
    gap = forces[:, 0] - forces[:, 1]
    assert np.linalg.norm(gap) == pytest.approx(0.2 / 1.25**1.5, rel=1e-12)
    assert abs(np.linalg.norm(gap) - 0.143) < 5e-4
    # both branches attract the test mass towards their source
    assert forces[0, 0] < 0 < forces[0, 1]


def test_mass_superposition_force_is_minus_gradient():
    model = cq_core.get_model("mass_superposition", eps=0.1, phi=0.7)
    Z = np.array([[0.3, -0.4, 0.2, 0, 0, 0]])
    h = 1e-6
    for axis in range(3):
        shift = np.zeros((1, 6))
        shift[0, axis] = h
        grad = model.interaction_hamiltonian(Z + shift) - model.interaction_hamiltonian(Z - shift)
        np.testing.assert_allclose(
            model.backreaction_operators(Z)[0, axis], -grad[0] / (2 * h), rtol=1e-6
        )


def test_qubit_lattice_energies_and_forces():
    model = cq_core.get_model("qubit_lattice", n=3, lam=2.0, gamma=0.5)
    Z = np.array([[0.1, 0.2, 0.3, 0, 0, 0]])
    H = model.interaction_hamiltonian(Z)[0]
    # level 0b011: spins (+1, −1, −1)
    assert H[0b011] == pytest.approx(2.0 * ((0.6) - (0.7) - (0.8)))
    np.testing.assert_allclose(model.backreaction_operators(Z)[0, :, 0b011], [-2.0, 2.0, 2.0])


def test_qubit_lattice_too_large_says_how_much_memory():
    with pytest.raises(ValueError, match=r"n = 30 sites needs 2\^30 .*16 GiB"):
        cq_core.get_model("qubit_lattice", n=30)


def test_sqrt_potential_domain_and_noise():
    model = cq_core.get_model("sqrt_potential")
    Z = np.array([[4.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(model.domain(Z), [True, False])
    assert model.noise_kernel(Z[:1])[0, 1, 0] == pytest.approx(0.5)
    assert model.sigma_name == "gamma"


def test_an_import_path_is_not_a_model_unless_declared():
    # the old "module:function" form no longer imports anything (see tests/models/)
    for name in ("cq_core.models.linear:linear", "no_such_module_xyz:build"):
        with pytest.raises(ValueError, match="unknown model.*valid models: linear"):
            cq_core.get_model(name)


def test_params_json_is_canonical():
    text = params_to_json(cq_core.get_model("linear", psi0=[1, 1j]).params)
    assert '"psi0": {"imag": [0.0, 0.7071067811865475], "real": [0.7071067811865475, 0.0]}' in text
    assert text == params_to_json(cq_core.get_model("linear", psi0=[1, 1j]).params)
