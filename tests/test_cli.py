"""The command line: one parser for every subcommand, verify included."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cq_core.cli import main


def test_verify_is_a_subcommand_of_the_one_parser(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith("usage: python -m cq_core verify ")


@pytest.mark.parametrize("where", ["before", "after"])
def test_verbose_works_before_and_after_the_subcommand(tmp_path, capsys, where):
    argv = ["verify", str(tmp_path), "-v"] if where == "after" else ["-v", "verify", str(tmp_path)]
    assert main(argv) == 0
    assert "0 cell store(s)" in capsys.readouterr().err


def test_verify_of_a_missing_folder_exits_2(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_a_cell_job_imports_neither_scipy_nor_matplotlib():
    # each job is a fresh process: SciPy's FFT (the master equation) and matplotlib (figures)
    # cost a second of start-up that a cell job never needs
    code = (
        "import sys, cq_core, cq_core.cli; cq_core.cli._parser(); cq_core.get_model('linear'); "
        "assert 'scipy' not in sys.modules and 'matplotlib' not in sys.modules, "
        "[m for m in ('scipy', 'matplotlib') if m in sys.modules]; "
        "cq_core.solve_master_equation; assert 'scipy.fft' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
