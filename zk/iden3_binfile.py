"""The iden3 binary container under ``.r1cs``, ``.wtns``, ``.zkey`` and ``.ptau`` files: parse and build, on bytes.

Spec: iden3 ``r1csfile`` ``doc/r1cs_bin_format.md`` ("Format of the file") and ``@iden3/binfileutils`` 0.0.12
(``readBinFile``, ``createBinFile``, ``startReadUniqueSection``, ``readBigInt``), which snarkjs 0.7.5 uses for all
of them. A file is::

    magic       4 bytes ("r1cs", "wtns", "zkey", ...)
    version     u32
    nSections   u32
    nSections x (type u32, size u64, size bytes of content)

All integers are little-endian; field elements are ``n8`` bytes little-endian (``n8`` a multiple of 8). Sections
may come in any order, and sections of unknown types are ignored (the r1cs spec requires both); a section a format
reads must occur exactly once.

Parsing is strict where binfileutils is lenient: a truncated header or section, bytes after the last section, or
a section read only in part are :class:`~zk.errors.FormatError`, each naming the file kind and the section. This
module knows nothing of what the sections mean: :mod:`zk.r1csfile` and :mod:`zk.zkey` do.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from zk.errors import FormatError

__all__ = ["BinFile", "SectionReader", "build", "field_size", "parse"]

_HEADER: Final = struct.Struct("<4sII")
_SECTION_HEADER: Final = struct.Struct("<IQ")


def field_size(prime: int) -> int:
    """Bytes per element of the field of ``prime`` in these files: whole 64-bit limbs (32 for BN254's q and r)."""
    return ((prime.bit_length() - 1) // 64 + 1) * 8


@dataclass(frozen=True)
class BinFile:
    """A parsed container: its magic, version and sections (type -> contents, in file order)."""

    magic: str
    version: int
    sections: dict[int, list[bytes]]

    def section(self, kind: int, name: str) -> SectionReader:
        """A reader over section ``kind`` (called ``name`` in errors); FormatError unless it occurs exactly once."""
        found = self.sections.get(kind, [])
        if not found:
            raise FormatError(f"{self.magic} file: section {kind} ({name}) is missing")
        if len(found) > 1:
            raise FormatError(f"{self.magic} file: section {kind} ({name}) occurs {len(found)} times")
        return SectionReader(found[0], f"{self.magic} section {kind} ({name})")


def parse(data: bytes, magic: str, max_version: int) -> BinFile:
    """Split ``data`` into sections; FormatError for another magic, a newer version or a malformed container."""
    if len(magic) != 4 or not magic.isascii():
        raise ValueError(f"a container magic is 4 ASCII characters, not {magic!r}")
    if len(data) < _HEADER.size:
        raise FormatError(f"not a {magic} file: {len(data)} bytes is shorter than its 12-byte header")
    found, version, count = _HEADER.unpack_from(data, 0)
    if found != magic.encode():
        raise FormatError(f"not a {magic} file: it starts with {found!r}")
    if not 1 <= version <= max_version:
        raise FormatError(f"{magic} file version {version} is not supported (1..{max_version})")
    sections: dict[int, list[bytes]] = {}
    pos = _HEADER.size
    for index in range(count):
        if pos + _SECTION_HEADER.size > len(data):
            raise FormatError(f"{magic} file truncated: section header {index} of {count} is cut off")
        kind, size = _SECTION_HEADER.unpack_from(data, pos)
        pos += _SECTION_HEADER.size
        if size > len(data) - pos:
            raise FormatError(f"{magic} file truncated: section {kind} claims {size} bytes, {len(data) - pos} remain")
        sections.setdefault(kind, []).append(bytes(data[pos : pos + size]))
        pos += size
    if pos != len(data):
        raise FormatError(f"{magic} file has {len(data) - pos} bytes after its last section")
    return BinFile(magic, version, sections)


def build(magic: str, version: int, sections: Iterable[tuple[int, bytes]]) -> bytes:
    """A container holding ``sections`` (type, contents) in the order given."""
    items = list(sections)
    out = [_HEADER.pack(magic.encode(), version, len(items))]
    for kind, content in items:
        out.append(_SECTION_HEADER.pack(kind, len(content)))
        out.append(content)
    return b"".join(out)


class SectionReader:
    """A cursor over one section's bytes; every read is bounds-checked and :meth:`done` insists on reading it all."""

    __slots__ = ("_data", "_name", "_pos")

    def __init__(self, data: bytes, name: str) -> None:
        self._data = data
        self._name = name
        self._pos = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def error(self, why: str) -> FormatError:
        return FormatError(f"{self._name}: {why}")

    def take(self, n: int, what: str) -> bytes:
        """The next ``n`` bytes (``what`` names them in the error when the section is too short)."""
        if n < 0 or n > self.remaining:
            raise self.error(f"too short for {what} ({n} bytes wanted, {self.remaining} left)")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u32(self, what: str) -> int:
        value: int = struct.unpack("<I", self.take(4, what))[0]
        return value

    def u64(self, what: str) -> int:
        value: int = struct.unpack("<Q", self.take(8, what))[0]
        return value

    def uint(self, n8: int, what: str) -> int:
        """An ``n8``-byte little-endian unsigned integer (a field element or a prime)."""
        return int.from_bytes(self.take(n8, what), "little")

    def done(self) -> None:
        """FormatError unless every byte of the section was read (snarkjs's ``endReadSection`` check)."""
        if self.remaining:
            raise self.error(f"{self.remaining} unexpected bytes at its end")
