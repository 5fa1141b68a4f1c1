"""A sweep's analysis settings on disk: ``results/<sweep>/analysis.json``.

The workflow records them before its jobs start; a batch job reads them to compute each
cell's statistics as it stores the cell (cq_core/pipeline/statistics_store.py), so that the
summary merges statistics instead of reading trajectories again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..analysis import settings_hash

__all__ = ["ANALYSIS_FILE", "read_analysis_settings", "write_analysis_settings"]

ANALYSIS_FILE = "analysis.json"
"""``results/<sweep>/analysis.json``: the analysis settings the cell jobs compute statistics
with when they store a cell. Written by the workflow before its jobs start; it is not an
input of the cell jobs (a changed analysis setting must rerun the summaries, never the
cells): a cell stored under other settings has statistics the summary recomputes."""


def write_analysis_settings(sweep_dir: str | os.PathLike, settings: Mapping[str, Any]) -> Path:
    """Record a sweep's analysis settings in ``<sweep_dir>/analysis.json`` (atomically).

    The file is rewritten only when the settings changed (its mtime means something).
    ``ValueError`` for settings :func:`cq_core.analysis.settings_hash` refuses.
    """
    settings_hash(settings)
    path = Path(sweep_dir) / ANALYSIS_FILE
    text = json.dumps(dict(settings), sort_keys=True, indent=1) + "\n"
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
    return path


def read_analysis_settings(sweep_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The settings :func:`write_analysis_settings` recorded, or None (none, or unusable:
    then no statistics are written at store time and the summary computes them)."""
    path = Path(sweep_dir) / ANALYSIS_FILE
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
        settings_hash(settings)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    return settings if isinstance(settings, dict) else None
