"""SymbolicModels of the built-in models and of the harmonic-oscillator example, for the tests
of the generated kernel (built by hand here until ``from_hamiltonian`` attaches them).

``builtin(name, **params)`` is the built-in model with its ``symbolic`` attached;
``oscillator()`` a user model (non-commuting: ``H_I = λ q σz + Ω σx``) given both as SymPy
expressions and as NumPy functions lambdified from them, so that the NumPy reference path and
the generated kernel run the same equations.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import sympy

import cq_core
from cq_core import Model
from cq_core.models.symbolic import SymbolicModel

SZ = sympy.Matrix([[1, 0], [0, -1]])
SX = sympy.Matrix([[0, 1], [1, 0]])


def _linear(m=1.0, lam=1.0, phi=2.0, omega=0.0, **_):
    q, p = sympy.symbols("q p", real=True)
    H_I = (2 * lam * q + phi) * SZ + omega * SX
    return SymbolicModel((q,), (p,), p**2 / (2 * m), H_I, sympy.Matrix([[0], [1]]))


def _sqrt_potential(m=1.0, lam=1.0, **_):
    q, p = sympy.symbols("q p", real=True)
    noise = sympy.Matrix([[0], [1 / sympy.sqrt(q)]])
    return SymbolicModel((q,), (p,), p**2 / (2 * m), lam * sympy.sqrt(q) * SZ, noise, q > 0)


def _mass_superposition(G=1.0, M=10.0, m=0.01, d=1.0, eps=0.0, phi=0.0, **_):
    x, y, z, px, py, pz = sympy.symbols("x y z px py pz", real=True)
    gmm = G * M * m

    def potential(x_source):
        return -gmm / sympy.sqrt((x - x_source) ** 2 + y**2 + z**2 + eps**2)

    H_I = sympy.diag(potential(-d) + phi, potential(d) - phi)
    noise = sympy.zeros(6, 3)
    noise[3:, :] = sympy.eye(3)
    H_C = (px**2 + py**2 + pz**2) / (2 * m)
    return SymbolicModel((x, y, z), (px, py, pz), H_C, H_I, noise)


def _qubit_lattice(n=5, lam=1.0, m=1.0, gamma=2.0, **_):
    phis = sympy.symbols(f"phi0:{n}", real=True)
    pis = sympy.symbols(f"pi0:{n}", real=True)
    d = 2**n
    spins = [[1 - 2 * ((a >> (n - 1 - i)) & 1) for a in range(d)] for i in range(n)]
    H_I = sympy.diag(
        *[lam * sum((phis[i] + gamma) * spins[i][a] for i in range(n)) for a in range(d)]
    )
    noise = sympy.zeros(2 * n, n)
    noise[n:, :] = sympy.eye(n)
    return SymbolicModel(phis, pis, sum(p**2 for p in pis) / (2 * m), H_I, noise)


BUILDERS = {
    "linear": _linear,
    "sqrt_potential": _sqrt_potential,
    "mass_superposition": _mass_superposition,
    "qubit_lattice": _qubit_lattice,
}


def builtin(name: str, **params) -> Model:
    """The built-in model with its SymbolicModel attached."""
    model = cq_core.get_model(name, **params)
    return dataclasses.replace(model, symbolic=BUILDERS[name](**model.params))


def oscillator(m=1.0, omega_c=2.0, lam=1.0, Omega=3.0) -> Model:
    """``H_C = p²/2m + m ω_c² q²/2``, ``H_I = λ q σz + Ω σx``, noise σ on p."""
    q, p = sympy.symbols("q p", real=True)
    symbolic = SymbolicModel(
        (q,), (p,), p**2 / (2 * m) + m * omega_c**2 * q**2 / 2,
        lam * q * SZ + Omega * SX, sympy.Matrix([[0], [1]]),
    )  # fmt: skip
    sz, sx = np.diag([1.0, -1.0]).astype(complex), np.array([[0, 1], [1, 0]], dtype=complex)
    force = np.array(symbolic.backreaction()[1], dtype=complex)  # L_p = −λ σz, constant
    np.testing.assert_array_equal(force, -lam * sz)

    def hamiltonian_flow(Z):  # (p/m, −m ω_c² q)
        return np.stack([Z[:, 1] / m, -m * omega_c**2 * Z[:, 0]], axis=1)

    def interaction_hamiltonian(Z):
        return lam * Z[:, 0, None, None] * sz + Omega * sx

    return Model(
        name="oscillator",
        params=dict(m=m, omega_c=omega_c, lam=lam, Omega=Omega),
        coord_labels=("q", "p"),
        level_labels=("up", "down"),
        z0=np.array([1.0, 0.0]),
        psi0=np.array([1.0, 1.0]) / np.sqrt(2.0),
        hamiltonian_flow=hamiltonian_flow,
        interaction_hamiltonian=interaction_hamiltonian,
        backreaction_operators=lambda Z: force[None, None],
        noise_shape=np.array([[0.0], [1.0]]),
        diagonal=False,
        coupled=(1,),
        symbolic=symbolic,
    )


def two_qubits(m=1.0, lam=1.0, Omega=2.0, mu=0.7) -> Model:
    """d = 4, non-commuting, complex entries: ``H_I = λ q σz⊗1 + Ω σx⊗σx + μ σy⊗σz``."""
    q, p = sympy.symbols("q p", real=True)
    SY = sympy.Matrix([[0, -sympy.I], [sympy.I, 0]])
    one = sympy.eye(2)
    kron = sympy.kronecker_product
    A, B = kron(SZ, one), Omega * kron(SX, SX) + mu * kron(SY, SZ)
    symbolic = SymbolicModel((q,), (p,), p**2 / (2 * m), lam * q * A + B, sympy.Matrix([[0], [1]]))
    A_np, B_np = np.array(A, dtype=complex), np.array(B, dtype=complex)
    force = np.array(symbolic.backreaction()[1], dtype=complex)  # L_p = −λ σz⊗1
    return Model(
        name="two_qubits",
        params=dict(m=m, lam=lam, Omega=Omega, mu=mu),
        coord_labels=("q", "p"),
        level_labels=("00", "01", "10", "11"),
        z0=np.array([0.3, 0.0]),
        psi0=np.array([1.0, 0.5j, -0.5, 1.0]),
        hamiltonian_flow=lambda Z: np.stack([Z[:, 1] / m, np.zeros(len(Z))], axis=1),
        interaction_hamiltonian=lambda Z: lam * Z[:, 0, None, None] * A_np + B_np,
        backreaction_operators=lambda Z: force[None, None],
        noise_shape=np.array([[0.0], [1.0]]),
        diagonal=False,
        coupled=(1,),
        symbolic=symbolic,
    )
