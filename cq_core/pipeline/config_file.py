"""Strict reading of the pipeline's configuration files: a config file is data, never code.

Snakemake reads every config file itself (``configfile:`` in the Snakefile, and each
``--configfile``) with YAML's ``FullLoader`` and its YTE templating, and deep-merges them. The
Snakefile then calls :func:`check_config_files`, which reads every one of those files again,
strictly, and checks the merged values (:mod:`cq_core.pipeline.config_values`), before any
other check or job runs:

* a duplicate key in one mapping is refused (YAML and JSON would keep the last one silently);
* YAML aliases (``*name``) are refused where they are met, before anything is expanded (an
  "alias bomb" of nested aliases would otherwise grow exponentially when printed or walked);
* ``__use_yte__`` (Snakemake's YTE templates, whose ``?expressions`` are Python) is refused,
  as are YAML's Python tags (``!!python/...``): only plain YAML types are read;
* a file larger than :data:`MAX_FILE_BYTES`, an integer longer than :data:`MAX_INT_DIGITS`
  digits, nesting deeper than :data:`MAX_DEPTH` levels and a document that is not a mapping
  are refused.

Every message names the file (and, for YAML, the line), and echoes a value only through
:func:`shown`, which cuts it to :data:`MAX_SHOWN` characters. The files given with
``--configfile`` are read by Snakemake before the Snakefile runs, so a YTE expression in one
of them has already been evaluated when it is refused here (config/README.md says so);
:func:`strict_config_file` checks the Snakefile's own ``configfile:`` before Snakemake reads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from .config_values import check_config_values, shown

__all__ = [
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "MAX_INT_DIGITS",
    "check_config_files",
    "load_config_file",
    "strict_config_file",
]

MAX_FILE_BYTES = 1 << 20
"""Largest config file read (1 MiB; the default config is ~6 KiB)."""
MAX_INT_DIGITS = 40
"""Longest integer read (digits): 2**63 − 1, the largest seed, has 19."""
MAX_DEPTH = 16
"""Most levels of nested mappings and lists (the schema's deepest key has 5; a matrix 2 more)."""
YTE_KEY = "__use_yte__"


def _error(path: str | os.PathLike, mark: Any, message: str) -> ValueError:
    where = f", line {mark.line + 1}" if mark is not None else ""
    return ValueError(f"invalid config file {shown(str(path))}{where}: {message}")


class StrictConstructor(yaml.constructor.SafeConstructor):
    """YAML's safe constructor refusing duplicate keys and over-long integers."""

    path: str = "<config>"

    def construct_mapping(self, node, deep=False):  # noqa: D102 - PyYAML's hook
        self.flatten_mapping(node)
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise _error(
                    self.path, key_node.start_mark, "a mapping key must be a scalar"
                ) from None
            if key in seen:
                raise _error(
                    self.path,
                    key_node.start_mark,
                    f"duplicate key {shown(key)} (first on line {seen[key].line + 1}); "
                    "each key may appear once in a mapping",
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):  # noqa: D102 - PyYAML's hook
        digits = sum(character.isdigit() for character in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise _error(
                self.path,
                node.start_mark,
                f"an integer of {digits} digits; integers in a config file have at most "
                f"{MAX_INT_DIGITS} digits",
            )
        return super().construct_yaml_int(node)


StrictConstructor.add_constructor("tag:yaml.org,2002:int", StrictConstructor.construct_yaml_int)


class StrictLoader(StrictConstructor, getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """YAML's safe loader (libyaml's parser when built: ~10× faster) with
    :class:`StrictConstructor`; aliases are refused by :func:`_refuse_aliases`."""


def _refuse_aliases(root: yaml.Node, path: str | os.PathLike) -> None:
    """Refuse a node graph in which a node is reached twice: a YAML alias (``*name``).

    The composed graph shares the aliased node, so this walk visits each node of the file
    once and never expands anything.
    """
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, yaml.Node | None]] = [(root, None)]
    while stack:
        node, parent = stack.pop()
        if id(node) in seen:
            where = parent.start_mark if parent is not None else node.start_mark
            raise _error(
                path,
                where,
                f"a YAML alias of the value anchored on line {node.start_mark.line + 1}: "
                "aliases are not allowed in a config file (write the value out)",
            )
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((child, node) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend(((key, node), (value, node)))


def _refuse_depth(document: Any, path: str | os.PathLike) -> None:
    """Refuse mappings and lists nested more than :data:`MAX_DEPTH` levels (walked without
    recursion, so that the checks after this one may recurse)."""
    stack = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value
        if isinstance(value, dict | list):
            if depth > MAX_DEPTH:
                raise _error(path, None, f"nested more than {MAX_DEPTH} levels deep")
            stack.extend((child, depth + 1) for child in children)


def _json_pairs(path: str | os.PathLike):
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        for key, value in items:
            if key in mapping:
                raise _error(path, None, f"duplicate key {shown(key)} in a JSON object")
            mapping[key] = value
        return mapping

    return pairs


def _json_int(path: str | os.PathLike):
    def parse(text: str) -> int:
        if len(text.lstrip("-")) > MAX_INT_DIGITS:
            raise _error(
                path,
                None,
                f"an integer of {len(text.lstrip('-'))} digits; integers in a config file have "
                f"at most {MAX_INT_DIGITS} digits",
            )
        return int(text)

    return parse


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read one config file (YAML, or JSON as Snakemake also accepts) strictly.

    Returns the top-level mapping. Raises ``ValueError`` naming the file (and the line, for
    YAML) on: a file over :data:`MAX_FILE_BYTES`, a duplicate key, an alias, a Python tag or
    any other non-plain YAML, an integer over :data:`MAX_INT_DIGITS` digits, a top-level
    ``__use_yte__`` key, or a document that is not a mapping.
    """
    size = os.path.getsize(path)
    if size > MAX_FILE_BYTES:
        raise _error(path, None, f"{size} bytes; a config file has at most {MAX_FILE_BYTES}")
    text = Path(path).read_bytes().decode("utf-8", errors="strict")
    document: Any
    try:
        # Snakemake tries JSON first, then YAML: so do we (JSON's NaN/Infinity included)
        document = json.loads(text, object_pairs_hook=_json_pairs(path), parse_int=_json_int(path))
    except RecursionError:
        raise _error(path, None, f"nested more than {MAX_DEPTH} levels deep") from None
    except json.JSONDecodeError:
        loader = StrictLoader(text)
        loader.path = str(path)
        try:
            node = loader.get_single_node()
            if node is None:
                raise _error(path, None, "the file is empty")
            _refuse_aliases(node, path)
            document = loader.construct_document(node)
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            problem = getattr(err, "problem", None) or type(err).__name__
            raise _error(path, mark, f"not plain YAML data: {shown(problem, 200)}") from None
        finally:
            loader.dispose()
    if not isinstance(document, dict):
        raise _error(path, None, "the file must hold a mapping of keys at its top level")
    _refuse_depth(document, path)
    if YTE_KEY in document:
        raise _error(
            path,
            None,
            f"{YTE_KEY}: YTE templates evaluate Python expressions; a cq-sweep config is data "
            "only (remove the key and write the values out)",
        )
    return document


def strict_config_file(path: str | os.PathLike) -> str:
    """Check the Snakefile's ``configfile:`` (if present) before Snakemake reads it; return it.

    Used as ``configfile: strict_config_file("config/config.yaml")``: a YTE template, a
    duplicate key or an alias in that file is refused before Snakemake evaluates anything.
    """
    if os.path.exists(path):
        load_config_file(path)
    return str(path)


def check_config_files(workflow: Any, config: Mapping[str, Any]) -> None:
    """Read every config file Snakemake was given strictly, then check the merged config.

    Called by the Snakefile right after ``configfile:``. The files are
    ``workflow.configfiles``: each ``--configfile`` of the command line and the Snakefile's
    own ``configfile:`` (Snakemake 9). Then :func:`check_config_values` checks the merged
    ``config`` against config/schema.yaml (beside the Snakefile) and the limits the jobs
    impose. Raises ``ValueError`` naming the file and line, or the key.
    """
    for path in dict.fromkeys(str(p) for p in workflow.configfiles):
        if os.path.exists(path):
            load_config_file(path)
    check_config_values(config, Path(workflow.basedir) / "config" / "schema.yaml")
