"""``cq_core.from_hamiltonian``: derived operators, checks for every Z, and a runnable Model."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import sympy

import cq_core

q, p, lam, phi, m, Omega = sympy.symbols("q p lam phi m Omega")


def _linear(**changes):
    """The σx-coupled ``linear`` model (omega = 3) as keyword arguments of from_hamiltonian."""
    kwargs = dict(
        name="lin",
        positions=[q],
        momenta=[p],
        H_C=p**2 / (2 * m),
        H_I=(2 * lam * q + phi) * cq_core.sz + Omega * cq_core.sx,
        noise={p: 1},
        z0={q: 0.0, p: 0.0},
        psi0=[1, 1],
        params={lam: 1.0, phi: 2.0, m: 1.0, Omega: 3.0},
    )
    kwargs.update(changes)
    return kwargs


def test_importing_cq_core_or_a_builtin_does_not_import_sympy():
    code = (
        "import sys, cq_core, cq_core.cli, cq_core.cells; assert 'sympy' not in sys.modules; "
        "cq_core.get_model('linear'); cq_core.get_model('sqrt_potential'); "
        "assert 'sympy' not in sys.modules; cq_core.sz; assert 'sympy' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_derives_flow_backreaction_coupling_and_structure():
    model = cq_core.from_hamiltonian(**_linear())
    assert isinstance(model, cq_core.Model) and model.symbolic is not None
    assert model.coupled == (1,) and not model.diagonal
    assert model.coord_labels == ("q", "p") and model.dim == 2
    np.testing.assert_allclose(np.linalg.norm(model.psi0), 1.0)
    Z = np.array([[0.5, 2.0], [-1.0, 0.25], [3.0, -1.0]])
    np.testing.assert_allclose(model.hamiltonian_flow(Z), np.stack([Z[:, 1], 0 * Z[:, 1]], 1))
    H = model.interaction_hamiltonian(Z)
    assert H.shape == (3, 2, 2)
    np.testing.assert_allclose(H[:, 0, 0], 2 * Z[:, 0] + 2)
    np.testing.assert_allclose(H[:, 0, 1], 3.0)
    L = model.backreaction_operators(Z)  # constant: leading axis 1
    assert L.shape == (1, 1, 2, 2)
    np.testing.assert_allclose(L[0, 0], [[-2, 0], [0, 2]])  # L_p = −∂H_I/∂q = −2λσz
    np.testing.assert_array_equal(model.noise_shape, [[0.0], [1.0]])
    derived = model.symbolic.derive()
    assert derived.coupled == (1,) and not derived.commuting


def test_diagonal_and_commuting_models_are_recognised():
    model = cq_core.from_hamiltonian(**_linear(params={lam: 1.0, phi: 2.0, m: 1.0, Omega: 0}))
    assert model.diagonal and model.symbolic.derive().commuting
    assert model.symbolic.H_I[0, 1] == 0  # an exact zero, not Float(0.0) (!= 0 in SymPy 1.13)
    assert model.interaction_hamiltonian(np.zeros((4, 2))).shape == (4, 2)
    assert model.backreaction_operators(np.zeros((4, 2))).shape == (1, 1, 2)
    # commuting but not diagonal: H_I = q σx
    sym = cq_core.from_hamiltonian(**_linear(H_I=lam * q * cq_core.sx)).symbolic.derive()
    assert not sym.diagonal and sym.commuting


def test_position_dependent_noise_and_domain():
    model = cq_core.from_hamiltonian(
        name="sqrt",
        positions=[q],
        momenta=[p],
        H_C=p**2 / 2,
        H_I=lam * sympy.sqrt(q) * cq_core.sz,
        noise={p: 1 / sympy.sqrt(q)},
        z0={q: 1.0, p: -1.0},
        psi0=[1, 1],
        params={lam: 1.0},
        domain=q > 0,
    )
    Z = np.array([[4.0, 0.0], [-1.0, 0.0]])
    np.testing.assert_array_equal(model.domain(Z), [True, False])
    assert not model.constant_noise
    assert model.noise_kernel(Z[:1])[0, 1, 0] == pytest.approx(0.5)
    assert model.backreaction_operators(Z[:1])[0, 0] == pytest.approx([-0.25, 0.25])


def test_coupled_component_without_noise_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"component p is coupled.*L_p\[0, 0\] = -2"):
        cq_core.from_hamiltonian(**_linear(noise={q: 1}))


def test_coupling_through_a_momentum_needs_noise_on_its_position():
    with pytest.raises(ValueError, match=r"component q is coupled.*L_q"):
        cq_core.from_hamiltonian(**_linear(H_I=lam * p * cq_core.sx + phi * cq_core.sz))
    both = cq_core.from_hamiltonian(**_linear(H_I=lam * p * cq_core.sx, noise={q: 1, p: 1}))
    assert both.coupled == (0,) and both.noise_shape.shape == (2, 2)


def test_noise_vanishing_somewhere_is_refused_for_every_z_not_only_z0():
    # at z0 (q = 1) the noise q·1 is fine, but it vanishes at q = 0 where L_p ≠ 0
    with pytest.raises(ValueError, match=r"noise on p vanishes at q = 0"):
        cq_core.from_hamiltonian(**_linear(noise={p: q}, z0={q: 1.0, p: 0.0}))
    # outside the domain it may vanish
    model = cq_core.from_hamiltonian(**_linear(noise={p: q}, z0={q: 1.0, p: 0.0}, domain=q > 0))
    assert model.domain(np.array([[1.0, 0.0]]))[0]


def test_identity_part_of_the_backreaction_needs_no_noise():
    model = cq_core.from_hamiltonian(
        **_linear(H_I=lam * q * cq_core.identity(2) + phi * cq_core.sz, noise={q: 1})
    )
    assert model.coupled == (1,)


def test_non_hermitian_hamiltonian_is_refused_naming_the_entry():
    upper = sympy.Matrix([[0, 1], [0, 0]])
    with pytest.raises(ValueError, match=r"not Hermitian: H_I\[0, 1\]"):
        cq_core.from_hamiltonian(**_linear(H_I=lam * q * cq_core.sz + Omega * upper))
    with pytest.raises(ValueError, match=r"not Hermitian"):
        cq_core.from_hamiltonian(**_linear(H_I=sympy.I * q * cq_core.sz))
    # σy is Hermitian
    assert not cq_core.from_hamiltonian(**_linear(H_I=lam * q * cq_core.sy)).diagonal


def test_symbol_without_value_is_refused_naming_it_and_where():
    with pytest.raises(ValueError, match=r"H_I\[0, 1\] depends on Omega, which has no value"):
        cq_core.from_hamiltonian(**_linear(params={lam: 1.0, phi: 2.0, m: 1.0}))
    with pytest.raises(ValueError, match=r"H_C depends on m"):
        cq_core.from_hamiltonian(**_linear(params={lam: 1.0, phi: 2.0, Omega: 1.0}))


def test_z0_outside_the_domain_is_refused():
    with pytest.raises(ValueError, match=r"z0 \(q = -1.0, p = 0.0\) is outside the domain q > 0"):
        cq_core.from_hamiltonian(**_linear(z0={q: -1.0, p: 0.0}, domain=q > 0))


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(z0={q: 0.0}), "z0 gives no value to p"),
        (dict(psi0=[1, 1, 1]), "psi0 must have length 2"),
        (dict(noise={}), "noise must be a non-empty dict"),
        (dict(noise={Omega: 1}), "noise key Omega is not one of q, p"),
        (dict(H_I=q), "H_I must be a d×d SymPy Matrix"),
        (dict(momenta=[p, Omega]), "equal lengths"),
        (dict(params={q: 1.0, lam: 1.0}), "params gives a value to q"),
        (dict(params={lam: float("nan"), phi: 1.0, m: 1.0, Omega: 1.0}), r"params\[lam\]"),
        (dict(noise={p: sympy.I}), "noise on p must be real"),
        (dict(H_C=p**2 / 2 + 1 / q), "flow .* is not finite at z0"),
        (dict(H_C=sympy.log(q)), "H_C must be real"),
    ],
)
def test_bad_input_is_a_clear_value_error(changes, message):
    with pytest.raises(ValueError, match=message):
        cq_core.from_hamiltonian(**_linear(**changes))


def test_params_by_name_and_recorded_params():
    model = cq_core.from_hamiltonian(**_linear(params={"lam": 2.0, "phi": 0, "m": 1, "Omega": 3}))
    assert model.params["lam"] == 2.0 and model.params["z0"] == [0.0, 0.0]
    assert model.backreaction_operators(np.zeros((1, 2)))[0, 0, 0, 0] == pytest.approx(-4.0)
    cq_core.params_to_json(model.params)  # recorded parameters are JSON-able


@pytest.mark.parametrize("mode", ["pure", "density"])
def test_a_model_from_its_hamiltonian_runs_and_keeps_the_norm(mode):
    model = cq_core.from_hamiltonian(**_linear())
    ds = cq_core.simulate(
        model, sigma=1.0, n_traj=20, t_final=0.05, dt=1e-3, seed=3, mode=mode, backend="numpy"
    )
    assert np.all(ds.status.values == 0)
    if mode == "pure":
        norm = np.linalg.norm(ds.psi.values, axis=-1)
        assert np.max(np.abs(norm - 1)) < 1e-12
    else:
        trace = np.einsum("ntaa->nt", ds.rho.values)
        assert np.max(np.abs(trace - 1)) < 1e-12


def test_pauli_and_site_helpers():
    assert np.array(cq_core.sy * cq_core.sy, dtype=complex).tolist() == [[1, 0], [0, 1]]
    assert np.array(cq_core.sx * cq_core.sy - cq_core.sy * cq_core.sx, dtype=complex)[0, 0] == 2j
    # site 0 is the most significant bit, as in the qubit_lattice levels "00", "01", "10", "11"
    np.testing.assert_array_equal(
        np.diag(np.array(cq_core.on_site(cq_core.sz, 0, 2))), [1, 1, -1, -1]
    )
    np.testing.assert_array_equal(
        np.diag(np.array(cq_core.on_site(cq_core.sz, 1, 2))), [1, -1, 1, -1]
    )
    assert cq_core.kron(cq_core.sx, cq_core.identity(3)).shape == (6, 6)
    with pytest.raises(ValueError, match="site"):
        cq_core.on_site(cq_core.sz, 2, 2)
    with pytest.raises(ValueError, match="identity"):
        cq_core.identity(0)
