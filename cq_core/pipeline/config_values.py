"""The values of the pipeline's configuration: everything a job would refuse, refused up front.

:func:`check_config_values` runs while the Snakefile is parsed (so ``snakemake -n`` fails too),
before the models are built and before any cell is checked, in O(1) time and memory per value:

* config/schema.yaml (types, ranges, unknown keys, anchored name patterns), its first error
  reported with the key and the value cut to :data:`MAX_SHOWN` characters;
* integers are integers: JSON Schema's ``integer`` accepts ``1000.0``, the jobs' command lines
  do not, so every integer key must hold a YAML integer;
* every number is finite (``.nan`` and ``.inf`` refused);
* limits the jobs impose: seeds and ``base_seed`` at most :data:`MAX_SEED` (the longest seed
  a cell's file name holds), ``dask.scheduler_address`` a well-formed address (parsed, never
  connected to), ``results`` a plain path (no Snakemake wildcard braces);
* the size of each cell, computed from ``t_final``, ``dt`` and ``save_every`` arithmetically:
  at most :data:`MAX_STEPS` steps, :data:`MAX_SAVED_TIMES` saved times per trajectory, and
  stored samples that fit in memory even for the smallest model.

Every error is a ``ValueError`` ``invalid config: <key>: <what is wrong>; <what is allowed>``.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "MAX_CELLS",
    "MAX_SAVED_TIMES",
    "MAX_SEED",
    "MAX_SHOWN",
    "MAX_STEPS",
    "check_config_values",
    "check_scheduler_address",
    "check_sweep_size",
    "shown",
]

MAX_SHOWN = 80
"""Longest echo of a value in an error message (characters)."""
MAX_SEED = 2**63 - 1
"""Largest seed and base seed (19 digits in a cell's file name ``seed=<seed>.zarr``)."""
MAX_STEPS = 10**9
"""Most time steps of one trajectory (``t_final / dt``)."""
MAX_SAVED_TIMES = 10**6
"""Most saved times of one trajectory (``t_final / dt / save_every + 2``)."""
MAX_CELLS = 10_000
"""Most cells (σ values × seeds) of one sweep."""
SMALLEST_SAMPLE_BYTES = 8 + 16 * 2
"""Bytes of one stored sample of the smallest model (one classical coordinate, a qubit)."""
MEMORY_FRACTION = 0.5
"""A cell's stored samples may take at most this fraction of the machine's memory."""

INTEGER_KEYS = {
    ("base_seed",): "base_seed",
    ("figures", "realisations"): "figures.realisations",
    ("figures", "dpi"): "figures.dpi",
    ("dask", "block_size"): "dask.block_size",
    ("dask", "threads"): "dask.threads",
}
SWEEP_INTEGER_KEYS = (("n_traj",), ("save_every",), ("analysis", "hist_bins"))
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
_HOST = re.compile(
    r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*)"
)
_ADDRESS = re.compile(rf"({'|'.join(SCHEDULER_SCHEMES)})://({_HOST.pattern}):([0-9]{{1,5}})")


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters (with the full length said)."""
    if isinstance(value, (list, dict, tuple)) and len(value) > limit:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text)} characters)"


def _fail(key: str, message: str) -> ValueError:
    return ValueError(f"invalid config: {key}: {message}")


def _dotted(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _check_schema(config: Mapping[str, Any], schema_path: str | os.PathLike) -> None:
    """The first error of ``config`` against the JSON Schema, with the value cut short."""
    from jsonschema import exceptions, validators

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built (faster)
    schema = yaml.load(Path(schema_path).read_text(encoding="utf-8"), Loader=loader)
    validator = validators.validator_for(schema)(schema)
    error = exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return
    while error.parent is not None and error.parent.validator in ("anyOf", "oneOf"):
        error = error.parent  # "none of the alternatives", not the closest one's complaint
    key = _dotted(error.absolute_path)
    rule = error.schema.get("description") if isinstance(error.schema, Mapping) else None
    if isinstance(rule, str) and rule:
        rule = rule[0].lower() + rule[1:].rstrip(".")
    if "propertyNames" in error.schema_path:
        key = f"{key} (a name in it)"
    if error.validator == "pattern":
        message = f"got {shown(error.instance)}; {rule or 'must match ' + error.validator_value}"
    elif error.validator in ("anyOf", "oneOf") and rule:
        message = f"got {shown(error.instance)} ({type(error.instance).__name__}); {rule}"
    else:
        message = error.message
        if len(message) > 3 * MAX_SHOWN:
            message = message.replace(repr(error.instance), shown(error.instance))
        if len(message) > 3 * MAX_SHOWN:
            message = f"{shown(error.instance)} fails the schema's {error.validator!r} check"
    # the key also as JSON Schema tools (and Snakemake's validate) write it
    where = "".join(f"[{shown(part)}]" for part in error.absolute_path)
    raise _fail(key, f"{message} (On instance{where})" if where else message)


def _lookup(block: Any, path: tuple[str, ...]) -> Any:
    """``block[path[0]][path[1]]…``, or None where a key is absent (the default applies)."""
    for part in path:
        block = block.get(part) if isinstance(block, Mapping) else None
    return block


def _check_integer(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        hint = f" (write {int(value)}, not {value!r})" if _whole_float(value) else ""
        raise _fail(key, f"must be an integer, got {shown(value)}{hint}")


def _whole_float(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value.is_integer()


def _check_finite(key: str, value: Any) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail(key, f"must be a finite number, got {shown(value)}")


def _walk_numbers(key: str, value: Any) -> None:
    """Every float anywhere under ``value`` must be finite (bounded: the file is bounded)."""
    if isinstance(value, Mapping):
        for name, item in value.items():
            _walk_numbers(f"{key}.{name}", item)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk_numbers(f"{key}[{i}]", item)
    else:
        _check_finite(key, value)


def check_scheduler_address(address: Any, key: str = "dask.scheduler_address") -> None:
    """A Dask scheduler address: ``tcp|tls|ws|wss|ucx://host:port``, port 1–65535, host a
    name, an IPv4 address or a bracketed IPv6 one. Parsed only, nothing is contacted.
    ``None`` (a local cluster per cell job) passes."""
    if address is None:
        return
    allowed = (
        f"allowed: <scheme>://<host>:<port> with scheme one of {', '.join(SCHEDULER_SCHEMES)} "
        "and port 1-65535 (e.g. tcp://10.0.0.5:8786), or null"
    )
    if not isinstance(address, str):
        raise _fail(key, f"got {shown(address)}; {allowed}")
    match = _ADDRESS.fullmatch(address)
    if match is None or not 1 <= int(match.group(3)) <= 65535:
        raise _fail(key, f"got {shown(address)}; {allowed}")


def _check_results(value: Any) -> None:
    if not isinstance(value, str):
        return  # the schema's message
    bad = sorted({c for c in value if c in "{}" or ord(c) < 32 or ord(c) == 127})
    if bad or value.startswith("-") or not value.strip():
        raise _fail(
            "results",
            f"got {shown(value)}; a directory path without braces {{ }} (Snakemake wildcards), "
            "control characters or a leading '-'",
        )


def check_sweep_size(name: str, sweep: Mapping[str, Any], memory: int | None = None) -> None:
    """Refuse a sweep whose cells are too large, from the config values alone (O(1)).

    ``n_steps = t_final / dt`` at most :data:`MAX_STEPS`; saved times per trajectory
    ``floor(n_steps / save_every) + 2`` at most :data:`MAX_SAVED_TIMES`; and
    ``n_traj × saved times × 40 bytes`` (the smallest model's sample) at most half of
    ``memory`` (default: the machine's). Nothing is allocated: the checks of the models and
    of ``check_run`` that follow may then build arrays of the saved times.
    """
    t_final, dt = sweep.get("t_final", 1.0), sweep.get("dt", 1.0e-4)
    save_every, n_traj = sweep.get("save_every", 1), sweep.get("n_traj", 100)
    key = f"sweeps.{name}"
    ratio = t_final / dt
    if not ratio <= MAX_STEPS:  # also inf and nan
        raise _fail(
            f"{key}.t_final",
            f"t_final / dt = {t_final!r} / {dt!r} = {ratio:.3g} steps, more than {MAX_STEPS:.0e} "
            f"steps per trajectory; shorten {key}.t_final or raise {key}.dt",
        )
    n_steps = max(1, round(ratio))
    saved = n_steps // save_every + 2
    if saved > MAX_SAVED_TIMES:
        raise _fail(
            f"{key}.save_every",
            f"save_every = {save_every} stores {saved} times of each trajectory "
            f"(t_final = {t_final!r}, dt = {dt!r}), more than {MAX_SAVED_TIMES:.0e}; raise "
            f"{key}.save_every to at least {math.ceil(n_steps / (MAX_SAVED_TIMES - 2))}",
        )
    if memory is None:
        try:
            memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
            memory = 16 * 2**30
    needed = n_traj * saved * SMALLEST_SAMPLE_BYTES
    if needed > memory * MEMORY_FRACTION:
        raise _fail(
            f"{key}.n_traj",
            f"n_traj={n_traj} trajectories of {saved} saved times would store at least "
            f"{needed / 2**30:.3g} GiB per cell, more than {memory * MEMORY_FRACTION / 2**30:.3g} "
            "GiB allowed in memory; use fewer trajectories per cell or a larger save_every",
        )


def check_config_values(config: Mapping[str, Any], schema_path: str | os.PathLike) -> None:
    """Check the merged pipeline config: the schema, then integers, limits and cell sizes.

    Raises ``ValueError`` ``invalid config: <key>: …`` on the first problem; echoed values are
    cut to :data:`MAX_SHOWN` characters.
    """
    _check_schema(config, schema_path)
    for path, key in INTEGER_KEYS.items():
        if (value := _lookup(config, path)) is not None:
            _check_integer(key, value)
    _check_results(config.get("results"))
    dask = config.get("dask") or {}
    for name in ("connect_timeout", "worker_timeout"):
        _check_finite(f"dask.{name}", dask.get(name))
    check_scheduler_address(dask.get("scheduler_address"))
    if config.get("base_seed") is not None and config["base_seed"] > MAX_SEED:
        raise _fail("base_seed", f"got {shown(config['base_seed'])}; at most 2**63 - 1")
    for name, sweep in (config.get("sweeps") or {}).items():
        key = f"sweeps.{name}"
        for path in SWEEP_INTEGER_KEYS:
            if (value := _lookup(sweep, path)) is not None:
                _check_integer(f"{key}.{'.'.join(path)}", value)
        for i, seed in enumerate(sweep.get("seeds", [])):
            _check_integer(f"{key}.seeds[{i}]", seed)
            if seed > MAX_SEED:
                raise _fail(f"{key}.seeds[{i}]", f"got {shown(seed)}; at most 2**63 - 1")
        _walk_numbers(key, sweep)
        grid = sweep.get("grid") or {}
        points = math.prod(len(values) for values in grid.values())
        cells = len(sweep.get("sigma", [1.0])) * len(sweep.get("seeds", [0])) * points
        if cells > MAX_CELLS:
            raise _fail(
                f"{key}.grid" if points > 1 else f"{key}.sigma",
                f"{cells} cells (grid points × sigma values × seeds), more than {MAX_CELLS} "
                "in one sweep",
            )
        dts = [dt for dt in grid.get("dt", []) if isinstance(dt, (int, float))]
        # a dt axis: the smallest dt has the most steps (save_every counts the largest dt's)
        check_sweep_size(name, {**sweep, "dt": min(dts)} if dts else sweep)
