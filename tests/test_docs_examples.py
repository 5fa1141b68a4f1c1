"""Every ```python block of README.md, docs/*.md and config/README.md runs as written.

Each block runs as its own script, in a fresh Python process whose working directory holds
the ``results/`` of a small real run of the default workflow (tests/small_run.py), so that
examples reading stored results read real ones. A block whose first line is a comment naming
a ``.py`` file (``# my_models/sigma_x.py``) is that file: it is written into the working
directory (with the ``__init__.py`` of its package) before the document's other blocks run.
A block preceded by ``<!-- example: skip (reason) -->`` is skipped with that reason; it is
for blocks needing what a test machine lacks (a SLURM cluster), used sparingly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from small_run import small_run
from workflow_helpers import REPO

DOCUMENTS = ["README.md", *sorted(p.name for p in (REPO / "docs").glob("*.md")), "config/README.md"]
FENCE = re.compile(r"^(\s*)```python\s*$")
SKIP = re.compile(r"<!--\s*example:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")
FILE_HEADER = re.compile(r"^#\s*(?P<path>[\w./-]+\.py)\s*$")


@dataclass(frozen=True)
class Block:
    document: str
    line: int  # 1-based line of the opening fence
    code: str
    skip: str | None  # the reason, if marked to be skipped

    @property
    def file(self) -> str | None:
        """The path this block is the content of, if its first line names one."""
        first = self.code.splitlines()[0] if self.code.strip() else ""
        match = FILE_HEADER.match(first)
        return match.group("path") if match else None


def _path(document: str) -> Path:
    return (
        REPO / document if "/" in document or document == "README.md" else REPO / "docs" / document
    )


def python_blocks(document: str) -> list[Block]:
    """The ```python blocks of a Markdown file, dedented, with their skip markers."""
    lines = _path(document).read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, start = len(match.group(1)), i
        body = []
        i += 1
        while not lines[i].strip().startswith("```"):
            body.append(lines[i][indent:])
            i += 1
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker = SKIP.search(lines[before]) if before >= 0 else None
        blocks.append(
            Block(document, start + 1, "\n".join(body) + "\n", marker and marker["reason"])
        )
        i += 1
    return blocks


ALL_BLOCKS = [block for document in DOCUMENTS for block in python_blocks(document)]


def test_the_documents_have_examples():
    assert sum(1 for b in ALL_BLOCKS if b.document == "README.md" and not b.skip) >= 3


@pytest.fixture(scope="module")
def stored_results(tmp_path_factory) -> Path:
    return small_run(tmp_path_factory) / "results"


@pytest.mark.slow
@pytest.mark.parametrize("block", ALL_BLOCKS, ids=lambda b: f"{b.document}:{b.line}")
def test_example_runs(block: Block, stored_results: Path, tmp_path: Path):
    if block.skip:
        pytest.skip(f"{block.document}:{block.line} is marked: {block.skip}")
    (tmp_path / "results").symlink_to(stored_results, target_is_directory=True)
    for other in python_blocks(block.document):
        if other.file:  # the document's own files, which its other examples import
            target = tmp_path / other.file
            target.parent.mkdir(parents=True, exist_ok=True)
            for package in target.relative_to(tmp_path).parents:
                if package != Path("."):
                    (tmp_path / package / "__init__.py").touch()
            target.write_text(other.code)
    if block.file:
        command = [sys.executable, "-c", f"import runpy; runpy.run_path({block.file!r})"]
    else:
        (tmp_path / "example.py").write_text(block.code)
        command = [sys.executable, "example.py"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "MPLBACKEND": "Agg"}
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env
    )
    output = result.stdout[-2000:] + result.stderr[-4000:]
    assert result.returncode == 0, f"{block.document}:{block.line} failed:\n{block.code}\n{output}"


def test_blocks_are_found_and_skips_honoured(tmp_path, monkeypatch):
    doc = tmp_path / "doc.md"
    doc.write_text(
        "text\n\n```python\nx = 1\n```\n\n<!-- example: skip (needs SLURM) -->\n\n"
        "  ```python\n  import nowhere\n  ```\n"
    )
    blocks = python_blocks(str(doc))
    assert [(b.line, b.code, b.skip) for b in blocks] == [
        (3, "x = 1\n", None),
        (9, "import nowhere\n", "needs SLURM"),
    ]
