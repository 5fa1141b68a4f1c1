"""Models are named, not executed: only declared builders are ever imported or called."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import cq_core
from cq_core.models import registry


@pytest.fixture
def clean_registry():
    before = dict(registry._DECORATED)
    yield
    registry._DECORATED.clear()
    registry._DECORATED.update(before)


HOSTILE = ["os:system", "subprocess:call", "os:popen", "posix:system", "builtins:exec"]


def test_a_command_named_as_a_model_is_never_run(tmp_path):
    """Through get_model (a store's cell spec) and the config check (a dry run)."""
    marker = tmp_path / "created"
    code = textwrap.dedent(
        f"""
        import sys, cq_core
        from cq_core.sweep import sweep_cell_specs
        run = dict(sigma=[1.0], seeds=[0], n_traj=1, t_final=0.1, dt=0.01)
        for name in {HOSTILE!r}:
            params = dict(command="touch {marker}", source="open({str(marker)!r}, 'w')")
            for call in (
                lambda: cq_core.get_model(name, **params),
                lambda: sweep_cell_specs("s", dict(model=name, params=params, **run)),
            ):
                try:
                    call()
                except ValueError as err:
                    assert "unknown model" in str(err), err
                else:
                    raise SystemExit(f"{{name}} accepted")
            assert not cq_core.is_registered(name)
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    assert not marker.exists()


def test_this_is_not_imported_and_the_message_lists_the_models():
    code = (
        "import sys, cq_core\n"
        "try:\n    cq_core.get_model('this:s')\n"
        "except ValueError as err:\n    print(err)\n"
        "assert 'this' not in sys.modules\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert "Beautiful is better" not in out.stdout
    assert "unknown model 'this:s'; valid models: linear, sqrt_potential" in out.stdout


def test_a_decorated_builder_is_found_by_name_and_by_path(clean_registry):
    @cq_core.register_model("test_registry_linear")
    def build(*, lam=1.0):
        return cq_core.get_model("linear", lam=lam)

    assert cq_core.is_registered("test_registry_linear")
    assert "test_registry_linear" in cq_core.registered_models()
    assert cq_core.get_model("test_registry_linear", lam=2.0).params["lam"] == 2.0
    path = f"{build.__module__}:{build.__qualname__}"
    assert cq_core.is_registered(path) and cq_core.get_model(path).params["lam"] == 1.0
    with pytest.raises(ValueError, match="unknown parameter.*lamda.*valid parameters: lam"):
        cq_core.get_model("test_registry_linear", lamda=2.0)


def test_registration_refuses_clashes_and_bad_names(clean_registry):
    @cq_core.register_model("test_registry_taken")
    def first():
        return cq_core.get_model("linear")

    with pytest.raises(ValueError, match="already registered"):

        @cq_core.register_model("test_registry_taken")
        def second():
            return cq_core.get_model("linear")

    with pytest.raises(ValueError, match="built-in model"):
        cq_core.register_model("linear")
    for bad in ("", "a:b", "two words", 3):
        with pytest.raises(ValueError, match="non-empty string"):
            cq_core.register_model(bad)


def test_a_builder_must_return_a_model(clean_registry):
    cq_core.register_model("test_registry_int")(lambda: 3)
    with pytest.raises(ValueError, match="returned int, not a Model"):
        cq_core.get_model("test_registry_int")


def test_a_registered_builder_may_return_a_from_hamiltonian_model(clean_registry):
    sympy = pytest.importorskip("sympy")

    @cq_core.register_model("test_registry_sympy")
    def oscillator(*, lam=1.0):
        q, p = sympy.symbols("q p")
        return cq_core.from_hamiltonian(
            name="oscillator", positions=[q], momenta=[p], H_C=(p**2 + q**2) / 2,
            H_I=lam * q * cq_core.sz, noise={p: 1}, z0={q: 1.0, p: 0.0}, psi0=[1, 1],
        )  # fmt: skip

    model = cq_core.get_model("test_registry_sympy", lam=0.5)
    assert model.name == "oscillator" and model.diagonal
    np.testing.assert_allclose(model.backreaction_operators(model.z0[None])[0, 0], [-0.5, 0.5])


def _install_dist(root, module_source: str, entry_points: str) -> None:
    """A tiny installed distribution: a module and its ``.dist-info`` with entry points."""
    (root / "cqs_demo_models.py").write_text(textwrap.dedent(module_source))
    info = root / "cqs_demo_models-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cqs-demo-models\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


def test_an_entry_point_model_is_listed_without_import_and_loaded_by_name(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    _install_dist(
        tmp_path,
        f"""
        import pathlib
        import cq_core
        pathlib.Path({str(marker)!r}).write_text("yes")

        def heavy(*, m=2.0):
            return cq_core.get_model("linear", m=m)
        """,
        """
        [cq_sweep.models]
        demo_heavy = cqs_demo_models:heavy
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cqs_demo_models", raising=False)
    assert "demo_heavy" in cq_core.registered_models()
    assert cq_core.is_registered("demo_heavy")
    assert cq_core.is_registered("cqs_demo_models:heavy")  # the declared value is an alias
    assert not marker.exists() and "cqs_demo_models" not in sys.modules
    assert cq_core.get_model("demo_heavy", m=3.0).params["m"] == 3.0
    assert marker.exists()
    with pytest.raises(ValueError, match="unknown model 'cqs_demo_models:other'"):
        cq_core.get_model("cqs_demo_models:other")  # the same module, an undeclared name


def test_a_broken_entry_point_names_itself(tmp_path, monkeypatch):
    _install_dist(
        tmp_path, "raise ImportError('boom')\n", "[cq_sweep.models]\nbroken = cqs_demo_models:x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cqs_demo_models", raising=False)
    with pytest.raises(ValueError, match="cannot load the entry point 'cqs_demo_models:x'.*boom"):
        cq_core.get_model("broken")
