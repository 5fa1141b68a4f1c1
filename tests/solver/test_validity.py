"""Bad inputs are rejected before any work starts, with a message naming the input."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import cq_core
from cq_core import Model

GOOD = dict(sigma=1.0, n_traj=4, t_final=0.1, dt=0.01, seed=0)


def _linear_run(**override):
    kwargs = {**GOOD, **override}
    return cq_core.simulate(cq_core.get_model("linear"), **kwargs)


BAD_RUNS = [
    ({"sigma": 0.0}, "sigma must be > 0"),
    ({"sigma": -1.0}, "sigma must be > 0"),
    ({"sigma": float("nan")}, "sigma must be a finite number"),
    ({"sigma": float("inf")}, "sigma must be a finite number"),
    ({"sigma": "1.0"}, "sigma must be a finite number, got '1.0'"),
    ({"n_traj": 0}, "n_traj must be an integer >= 1"),
    ({"n_traj": 2.5}, "n_traj must be an integer >= 1"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"seed": 1.5}, "seed must be an integer >= 0"),
    ({"first_trajectory": -3}, "first_trajectory must be an integer >= 0"),
    ({"dt": 0.0}, "dt must satisfy 0 < dt <= t_final"),
    ({"dt": -0.01}, "dt must satisfy 0 < dt <= t_final"),
    ({"dt": 0.2}, "dt must satisfy 0 < dt <= t_final"),
    ({"dt": 0.03}, "whole number of steps"),
    ({"t_final": 0.0}, "t_final must be > 0"),
    ({"t_final": -1.0}, "t_final must be > 0"),
    ({"save_every": 0}, "save_every must be an integer >= 1"),
    ({"save_every": 11}, r"save_every must be between 1 and the number of steps \(10\)"),
    ({"method": "rk45"}, "method must be one of auto, exponential, kraus, euler; got 'rk45'"),
    ({"mode": "mixed"}, "mode must be one of pure, density, mean_field; got 'mixed'"),
    ({"excess": -0.1}, "excess must be >= 0"),
    ({"excess": 0.5}, "excess > 0 needs mode 'density'"),
    ({"excess": 0.5, "mode": "mean_field"}, "excess > 0 needs mode 'density'"),
    ({"mode": "mean_field", "method": "euler"}, "does not apply to mode 'mean_field'"),
    ({"n_traj": 10**9, "save_every": 1}, "n_traj=1000000000: the run would store .* GiB"),
]


@pytest.mark.parametrize(("override", "message"), BAD_RUNS, ids=[str(o) for o, _ in BAD_RUNS])
def test_bad_run_inputs_raise_naming_the_key(override, message):
    with pytest.raises(ValueError, match=message):
        _linear_run(**override)


def test_exponential_method_needs_a_diagonal_model():
    with pytest.raises(ValueError, match="method 'exponential' needs a diagonal model"):
        cq_core.simulate(cq_core.get_model("linear", omega=1.0), method="exponential", **GOOD)


def test_model_must_be_a_model():
    with pytest.raises(ValueError, match="model must be a cq_core Model"):
        cq_core.simulate("linear", **GOOD)


def _p_coupled_model(noise_on_position: bool) -> Model:
    """H_I = p σz depends on momentum, so L_q = ∂H_I/∂p = σz pushes the position."""
    sz = np.array([1.0, -1.0])
    noise = np.array([[1.0, 0.0], [0.0, 1.0]]) if noise_on_position else np.array([[0.0], [1.0]])
    return Model(
        name="momentum_coupled",
        params={},
        coord_labels=("q", "p"),
        level_labels=("up", "down"),
        z0=np.array([0.0, 0.0]),
        psi0=np.array([1.0, 1.0]),
        hamiltonian_flow=lambda Z: np.stack([Z[:, 1], np.zeros(len(Z))], axis=1),
        interaction_hamiltonian=lambda Z: Z[:, 1:2] * sz,
        backreaction_operators=lambda Z: np.broadcast_to(sz, (len(Z), 1, 2)),
        noise_shape=noise,
        coupled=(0,),
    )


def test_backreaction_without_noise_is_rejected():
    """Complete positivity: (1 − D2 D2⁺) D1 = 0 — position is pushed but carries no noise."""
    with pytest.raises(ValueError, match=r"back-reaction direction\(s\) q without noise"):
        cq_core.simulate(_p_coupled_model(noise_on_position=False), **GOOD)
    # the same model with noise on q is valid and runs
    ds = cq_core.simulate(_p_coupled_model(noise_on_position=True), **GOOD)
    assert (ds.status == 0).all()


def test_identity_part_of_backreaction_needs_no_noise():
    """A back-reaction proportional to the identity is classical: no noise is required."""
    model = _p_coupled_model(noise_on_position=False)
    shifted = Model(
        **{
            **{f: getattr(model, f) for f in model.__dataclass_fields__},
            "backreaction_operators": lambda Z: np.full((len(Z), 1, 2), 0.7),
        }
    )
    cq_core.check_noise_covers_backreaction(shifted, 1.0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("z0", np.zeros(3), r"z0 must have shape \(2,\)"),
        ("psi0", np.zeros(2), "psi0 must be a non-zero finite vector"),
        ("psi0", np.ones(3), "psi0 must have length 2"),
        ("coord_labels", ("q",), "even, non-zero number"),
        ("noise_shape", np.ones((3, 1)), r"noise_shape must be an \(n=2, m\) array"),
        ("coupled", (5,), "coupled must list distinct component indices"),
        ("basis_pair", (0, 0), "basis_pair must be two distinct levels"),
    ],
)
def test_bad_user_models_are_rejected(field, value, message):
    model = _p_coupled_model(noise_on_position=True)
    fields = {f: getattr(model, f) for f in model.__dataclass_fields__}
    fields[field] = value
    with pytest.raises(ValueError, match=message):
        Model(**fields)


def test_checks_run_before_any_work(monkeypatch):
    """A bad input fails before the integrator is ever called."""
    calls = []
    simulate_module = importlib.import_module("cq_core.solver.simulate")
    monkeypatch.setattr(simulate_module, "integrate", lambda *a, **k: calls.append(1))
    with pytest.raises(ValueError):
        _linear_run(sigma=-1.0)
    assert calls == []
