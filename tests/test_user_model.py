"""The user-model guide ``docs/models.md`` runs as written, and its model behaves.

The guide's first Python block is the module a user would write (``my_models/sigma_x.py``,
a model from its Hamiltonian, registered by name); it is written to a temporary package,
imported, and the guide's other Python blocks are run as they stand, so the documentation
cannot drift from the code. Its entry-point snippet is installed as a real distribution.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

import cq_core
from cq_core.models import registry

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "models.md"
MODULE_HEADER = "# my_models/sigma_x.py"


def _blocks(language: str) -> list[str]:
    """The fenced blocks of the guide in ``language``, in order."""
    pattern = rf"^```{language}\n(.*?)^```"
    return re.findall(pattern, GUIDE.read_text(encoding="utf-8"), re.M | re.S)


def _python_blocks() -> list[str]:
    return _blocks("python")


def _forget_user_package() -> None:
    for name in [n for n in sys.modules if n == "my_models" or n.startswith("my_models.")]:
        del sys.modules[name]


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """The guide's model module, installed as the package ``my_models`` on ``sys.path``."""
    source = _python_blocks()[0]
    assert source.startswith(MODULE_HEADER), "the guide's first Python block is the module"
    package = tmp_path / "my_models"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "sigma_x.py").write_text(source, encoding="utf-8")
    _forget_user_package()
    monkeypatch.syspath_prepend(str(tmp_path))
    yield importlib.import_module("my_models.sigma_x")
    _forget_user_package()
    registry._DECORATED.pop("sigma_x_particle", None)


_GUIDE_RUN: list[tuple[dict, str]] = []


def _run_guide(capsys) -> tuple[dict, str]:
    """The guide's blocks after the module, run once per test session (they take seconds)."""
    if not _GUIDE_RUN:
        namespace: dict = {}
        for block in _python_blocks()[1:]:
            exec(compile(block, str(GUIDE), "exec"), namespace)
        _GUIDE_RUN.append((namespace, capsys.readouterr().out))
    return _GUIDE_RUN[0]


def test_guide_code_runs_as_written(user_module, capsys):
    namespace, out = _run_guide(capsys)
    assert "E<σx>(t=1)" in out and "E[q](t=1)" in out
    assert "component p is coupled" in out and "carries no noise" in out
    ds = namespace["ds"]
    assert np.all(ds.status.values == 0)
    assert "sigma_x_particle" in cq_core.registered_models()


def test_guide_oscillator_derivation(user_module, capsys):
    namespace, _ = _run_guide(capsys)
    model = namespace["oscillator"]
    Z = np.array([[1.5, -0.5], [0.0, 2.0]])
    # {q, H_C} = p/m, {p, H_C} = −m ω_c² q with m = 1, ω_c = 2
    np.testing.assert_allclose(model.hamiltonian_flow(Z), np.stack([Z[:, 1], -4 * Z[:, 0]], 1))
    np.testing.assert_allclose(model.backreaction_operators(Z)[0, 0], np.diag([-0.5, 0.5]))
    assert model.coupled == (1,) and not model.diagonal
    assert not model.symbolic.derive().commuting


@pytest.mark.parametrize("mode", ["pure", "density"])
def test_by_hand_and_from_hamiltonian_give_the_same_numbers(user_module, capsys, mode):
    namespace, _ = _run_guide(capsys)
    params = dict(m=2.0, lam=1.5, phi=0.7, q0=0.2, p0=-0.3, psi0=(0.6, 0.8j))
    by_hand = namespace["sigma_x_particle_by_hand"](**params)
    derived = user_module.sigma_x_particle(**params)
    runs = [
        cq_core.simulate(model, sigma=0.8, n_traj=10, t_final=0.1, dt=1e-3, seed=4, mode=mode)
        for model in (by_hand, derived)
    ]
    state = "psi" if mode == "pure" else "rho"
    for key in ("classical", state):
        np.testing.assert_allclose(runs[1][key].values, runs[0][key].values, rtol=0, atol=1e-10)
    assert cq_core.params_to_json(by_hand.params) == cq_core.params_to_json(derived.params)


def test_guide_entry_point_declares_the_model_to_a_fresh_process(user_module, tmp_path):
    """The guide's pyproject snippet, installed, lets a new process (a cell job) build it."""
    tomllib = pytest.importorskip("tomllib")
    (toml,) = _blocks("toml")
    group = tomllib.loads(toml)["project"]["entry-points"]["cq_sweep.models"]
    site = tmp_path / "site"
    info = site / "my_models-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my-models\nVersion: 0.1\n")
    lines = "".join(f"{name} = {value}\n" for name, value in group.items())
    (info / "entry_points.txt").write_text("[cq_sweep.models]\n" + lines)
    code = (
        "import sys, cq_core\n"
        "try:\n    cq_core.get_model('sigma_x_particle')\n"
        "except ValueError as err:\n    assert 'unknown model' in str(err)\n"
        "else:\n    raise SystemExit('an undeclared model was built')\n"
        f"sys.path.insert(0, {str(site)!r})  # now the distribution is installed\n"
        "assert cq_core.is_registered('sigma_x_particle')\n"
        "assert 'my_models' not in sys.modules  # listed without importing\n"
        "model = cq_core.get_model('sigma_x_particle', lam=2.0)\n"
        "assert model.params['lam'] == 2.0 and 'my_models.sigma_x' in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(user_module.__file__).parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


def test_default_integrator_keeps_the_norm(user_module):
    model = user_module.sigma_x_particle(lam=2.0, phi=1.0, psi0=(0.6, 0.8j))
    assert not model.diagonal
    ds = cq_core.simulate(model, sigma=0.5, n_traj=100, t_final=0.5, dt=1e-3, seed=2)
    assert ds.attrs["method"] == "kraus"
    assert np.all(ds.status.values == 0)
    norm = np.linalg.norm(ds.psi.values, axis=-1)  # every trajectory, every step
    assert np.max(np.abs(norm - 1.0)) <= 1e-12


def _lindblad_mean_state(rho0, H, K, times):
    """``exp(𝓛t) ρ0`` for ``𝓛ρ = −i[H, ρ] + KρK − ½{K², ρ}`` (row-major vectorisation)."""
    d = len(rho0)
    eye = np.eye(d)
    K2 = K @ K
    generator = (
        -1j * (np.kron(H, eye) - np.kron(eye, H.T))
        + np.kron(K, K.T)
        - 0.5 * (np.kron(K2, eye) + np.kron(eye, K2.T))
    )
    return np.array(
        [(scipy.linalg.expm(generator * t) @ rho0.ravel()).reshape(d, d) for t in times]
    )


def test_mean_state_of_a_heavy_particle_follows_lindblad(user_module):
    """Averaged over the noise, ρ obeys the Lindblad equation with jump operator K.

    A heavy particle at rest stays at q = 0 (it moves by ~σt^{3/2}/m), so H_I = φσz and
    K = ½ σ⁺ L_p = −(λ/2σ)σx are constant: the dW terms average out and
    dE[ρ]/dt = −i[φσz, E[ρ]] + K E[ρ] K − ½{K², E[ρ]} exactly. This tests the factor ½ σ⁺
    in K, the Itô terms and the unitary part on a model with non-commuting operators.
    """
    lam, phi, sigma = 1.0, 1.0, 1.0
    psi0 = np.array([0.8, 0.6j])
    model = user_module.sigma_x_particle(m=1e6, lam=lam, phi=phi, psi0=tuple(psi0))
    ds = cq_core.simulate(
        model, sigma=sigma, n_traj=2000, t_final=2.0, dt=2e-3, seed=4, save_every=100
    )
    assert np.all(ds.status.values == 0)
    assert np.max(np.abs(ds.classical.sel(coord="q").values)) < 1e-4
    psi = ds.psi.values
    rho = psi[:, :, :, None] * psi.conj()[:, :, None, :]  # (N, T, 2, 2)
    mean = rho.mean(axis=0)
    stderr = (rho.real.std(axis=0, ddof=1) + 1j * rho.imag.std(axis=0, ddof=1)) / np.sqrt(len(rho))
    K = -(lam / (2.0 * sigma)) * user_module.SIGMA_X
    rho0 = np.outer(psi0, psi0.conj())
    times = ds.time.values
    expected = _lindblad_mean_state(rho0, phi * user_module.SIGMA_Z, K, times)

    def worst(prediction):
        """Largest deviation from the prediction, in standard errors (real, imag parts)."""
        dev = mean - prediction
        scale = np.maximum(stderr.real, 1e-12), np.maximum(stderr.imag, 1e-12)
        return max(np.max(np.abs(dev.real) / scale[0]), np.max(np.abs(dev.imag) / scale[1]))

    # weak error of the Kraus step at dt = 2e-3 is ~1e-3, well below the SE (~1e-2)
    assert worst(expected) < 4.0
    # the check has power: twice the decoherence, or none, is rejected
    assert worst(_lindblad_mean_state(rho0, phi * user_module.SIGMA_Z, np.sqrt(2) * K, times)) > 8
    assert worst(_lindblad_mean_state(rho0, phi * user_module.SIGMA_Z, 0 * K, times)) > 8


def test_registered_by_name_and_module_path(user_module):
    for name in ("sigma_x_particle", "my_models.sigma_x:sigma_x_particle"):
        model = cq_core.get_model(name, lam=2.0, phi=0.5)
        assert model.name == "sigma_x_particle"
        assert model.params["lam"] == 2.0 and not model.diagonal
        with pytest.raises(ValueError, match="omega"):
            cq_core.get_model(name, omega=1.0)


def test_guide_config_sweep_is_accepted(user_module):
    """The guide's config snippet passes the pipeline's config check (one cell per σ)."""
    yaml = pytest.importorskip("yaml")
    from cq_core.sweep import sweep_cell_specs

    (block,) = _blocks("yaml")
    sweeps = yaml.safe_load(block)["sweeps"]
    (name,) = sweeps
    cells = sweep_cell_specs(name, sweeps[name])
    assert len(cells) == len(sweeps[name]["sigma"]) * len(sweeps[name]["seeds"])


def _momentum_coupled_model(calls: list[int]) -> cq_core.Model:
    """H_I = λ p σx + φσz with noise on p only: L_q = ∂H_I/∂p = λσx pushes noiseless q."""
    sx = np.array([[0.0, 1.0], [1.0, 0.0]], dtype=complex)
    sz = np.diag([1.0, -1.0]).astype(complex)

    def record(Z):
        calls.append(len(Z))

    def hamiltonian_flow(Z):
        record(Z)
        return np.stack([Z[:, 1], np.zeros(len(Z))], axis=1)

    def interaction_hamiltonian(Z):
        record(Z)
        return Z[:, 1, None, None] * sx + sz

    def backreaction_operators(Z):
        record(Z)
        ops = np.zeros((len(Z), 2, 2, 2), dtype=complex)
        ops[:, 0] = sx  # L_q = {q, H_I} = ∂H_I/∂p
        return ops  # L_p = −∂H_I/∂q = 0

    return cq_core.Model(
        name="momentum_coupled",
        params={},
        coord_labels=("q_test", "p_test"),
        level_labels=("up", "down"),
        z0=np.zeros(2),
        psi0=np.array([1.0, 1.0]),
        hamiltonian_flow=hamiltonian_flow,
        interaction_hamiltonian=interaction_hamiltonian,
        backreaction_operators=backreaction_operators,
        noise_shape=np.array([[0.0], [1.0]]),
        diagonal=False,
    )


def test_coupling_to_a_noiseless_position_is_rejected_before_any_work():
    calls: list[int] = []
    progress: list[int] = []
    model = _momentum_coupled_model(calls)
    with pytest.raises(ValueError) as err:
        cq_core.simulate(
            model,
            sigma=1.0,
            n_traj=7,
            t_final=0.1,
            dt=1e-3,
            seed=0,
            progress=lambda step, n: progress.append(step),
        )
    message = str(err.value)
    assert "q_test" in message and "p_test" not in message
    # only the initial point was looked at (one row); no block of 7 trajectories was stepped
    assert progress == [] and 7 not in calls
    # the same coupling with noise on q as well is accepted
    noisy = dataclasses.replace(model, noise_shape=np.eye(2))  # noise on q and on p
    ds = cq_core.simulate(noisy, sigma=1.0, n_traj=7, t_final=0.01, dt=1e-3, seed=0)
    assert np.all(ds.status.values == 0)
