"""NumPy's ziggurat tables for the standard normal, read from the ``libnpyrandom.a`` it ships.

A generated kernel draws the engine's keyed noise itself (``loop_shared.c``): every trajectory's
SFC64 generator feeds the ziggurat method of NumPy's ``random_standard_normal``, written
inline there so that a draw costs a few ns instead of two indirect calls. For the numbers to
be NumPy's bit for bit, the method needs NumPy's own tables (``ki_double``, ``wi_double``,
``fi_double``: 256 entries each), which are data of that library; :func:`tables` reads them
from its ELF object files (ar archive, symbol table, section bytes) with the standard library
only. Where they cannot be read, :func:`tables` returns None and the kernel calls the library's
function instead (same numbers, slower).
"""

from __future__ import annotations

import struct
from pathlib import Path

__all__ = ["NAMES", "c_tables", "tables"]

NAMES = {"ki_double": "Q", "wi_double": "d", "fi_double": "d"}
"""The tables (C symbol → struct format of an entry: uint64 or float64), 256 entries each."""
ENTRIES = 256
_SHT_SYMTAB = 2


def _members(archive: bytes):
    """The members' bytes of a System V / GNU ar archive."""
    if not archive.startswith(b"!<arch>\n"):
        return
    at = 8
    while at + 60 <= len(archive):
        size = int(archive[at + 48 : at + 58].decode().strip())
        yield archive[at + 60 : at + 60 + size]
        at += 60 + size + (size % 2)


def _symbols(obj: bytes) -> dict[str, bytes]:
    """The bytes of the :data:`NAMES` symbols defined in a little-endian ELF64 object."""
    if obj[:4] != b"\x7fELF" or obj[4] != 2 or obj[5] != 1:
        return {}
    shoff = struct.unpack_from("<Q", obj, 0x28)[0]
    shentsize, shnum = struct.unpack_from("<HH", obj, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", obj, shoff + k * shentsize) for k in range(shnum)]
    found = {}
    for section in sections:
        if section[1] != _SHT_SYMTAB:
            continue
        names_offset = sections[section[6]][4]
        offset, size, entsize = section[4], section[5], section[9]
        for at in range(offset, offset + size, entsize):
            name_at, _, _, shndx, value, length = struct.unpack_from("<IBBHQQ", obj, at)
            end = obj.index(b"\0", names_offset + name_at)
            name = obj[names_offset + name_at : end].decode()
            if name in NAMES and 0 < shndx < len(sections) and length == 8 * ENTRIES:
                start = sections[shndx][4] + value
                found[name] = obj[start : start + length]
    return found


def tables(library: Path) -> dict[str, tuple] | None:
    """``{name: 256 entries}`` for each of :data:`NAMES`, or None if the library lacks one."""
    try:
        archive = library.read_bytes()
    except OSError:
        return None
    for member in _members(archive):
        found = _symbols(member)
        if set(found) == set(NAMES):
            return {name: struct.unpack(f"<{ENTRIES}{NAMES[name]}", found[name]) for name in NAMES}
    return None


def c_tables(values: dict[str, tuple]) -> str:
    """C definitions of the tables (exact: integers, and doubles as hexadecimal floats)."""
    lines = []
    for name, entries in values.items():
        if NAMES[name] == "Q":
            text = ", ".join(f"{v}u" for v in entries)
            lines.append(f"static const uint64_t ZIG_{name[:2].upper()}[{ENTRIES}] = {{{text}}};")
        else:
            text = ", ".join(float(v).hex() for v in entries)
            lines.append(f"static const double ZIG_{name[:2].upper()}[{ENTRIES}] = {{{text}}};")
    return "\n".join(lines) + "\n"
