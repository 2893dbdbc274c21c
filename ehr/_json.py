"""Parsing JSON from outside without letting its nesting crash the process.

``json.loads`` recurses once per nested array or object. py_ecc and py-evm, which the vault and the SDK import,
raise ``sys.setrecursionlimit`` to 100000 when they load, so deep input no longer stops at a ``RecursionError``:
the C stack overflows first and the whole process dies (SIGSEGV) on a few hundred kilobytes of ``[``. The
recursion limit belongs to those libraries, so :func:`loads` does not rely on it: it measures the nesting of the
raw text first, in linear time, and refuses anything deeper than :data:`MAX_DEPTH` before ``json`` sees it.

:data:`MAX_DEPTH` is 64 levels of arrays and objects. FHIR R4B resources nest far less: a Bundle entry holding
a resource with contained resources is about 10 levels deep, and a Questionnaire takes two levels per ``item``
nesting, so 64 leaves room for some 25 levels of items.

Text is UTF-8 (RFC 8259, section 8.1: JSON exchanged between systems MUST be UTF-8; a leading byte order mark
is ignored, as section 8.1 allows). That is what makes the byte scan sound: in UTF-8, the bytes of ``"``, ``\\``,
``[``, ``]``, ``{`` and ``}`` never occur inside the encoding of another character.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["MAX_DEPTH", "JsonTooDeep", "loads", "nesting_depth"]

MAX_DEPTH = 64

# Each byte's part in the nesting: a quote opens or closes a string, a backslash escapes the next byte inside
# one, brackets open and close arrays and objects; every other byte plays none (0).
_QUOTE, _BACKSLASH, _OPEN, _CLOSE = 1, 2, 3, 4
_ROLES = {b'"': _QUOTE, b"\\": _BACKSLASH, b"[": _OPEN, b"{": _OPEN, b"]": _CLOSE, b"}": _CLOSE}
_ROLE = bytes(_ROLES.get(bytes([b]), 0) for b in range(256))
_PLAYS_NONE = bytes(b for b in range(256) if not _ROLE[b])
_STEP = np.array([0, 0, 0, 1, -1], dtype=np.int8)


class JsonTooDeep(ValueError):
    """JSON text nested deeper than the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON is nested deeper than {limit} levels of arrays and objects")
        self.limit = limit


def nesting_depth(text: bytes) -> int:
    """The deepest nesting of arrays and objects in UTF-8 JSON ``text``: 0 for a scalar, 1 for ``[]``.

    Brackets inside string literals do not count. For text that is not valid JSON the answer is the deepest
    nesting of any prefix, which bounds how deep ``json.loads`` recurses before it finds the error.
    """
    # Whole-array steps in C (bytes.translate, numpy), never a Python loop over the text: a 4 MiB body of
    # brackets or quotes takes tens of milliseconds, less than json.loads takes on a 4 MiB Bundle.
    if b"\\" in text:
        each = np.frombuffer(text.translate(_ROLE), dtype=np.uint8).copy()
        # The byte after a run of an odd number of backslashes is escaped: an escaped quote does not end a string.
        backslashes = np.flatnonzero(each == _BACKSLASH)
        run_starts = np.flatnonzero(np.diff(backslashes, prepend=-2) != 1)
        run_ends = np.append(run_starts[1:], backslashes.size) - 1
        escaped = backslashes[run_ends[(run_ends - run_starts) % 2 == 0]] + 1
        each[escaped[escaped < each.size]] = 0
        each[backslashes] = 0
        marks = each.tobytes().translate(None, b"\0")
    else:
        marks = text.translate(_ROLE, _PLAYS_NONE)
    # The quotes and brackets that matter, in order: a bracket after an odd number of quotes is inside a string.
    roles = np.frombuffer(marks, dtype=np.uint8)
    steps = _STEP[roles]
    if _QUOTE in marks:
        steps[np.cumsum(roles == _QUOTE, dtype=np.uint8) & 1 == 1] = 0
    if not steps.size:
        return 0
    return max(0, int(np.cumsum(steps, dtype=np.int32).max()))


def loads(text: bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for UTF-8 text from outside, refusing nesting deeper than ``max_depth``.

    Raises ``UnicodeDecodeError`` for text that is not UTF-8, :class:`JsonTooDeep` for deep text, and
    ``ValueError`` for ``NaN``/``Infinity`` and anything else ``json`` refuses (all of them are ``ValueError``).
    """
    decoded = text.decode("utf-8")
    # Fewer opening brackets than the limit cannot nest deeper than it: most bodies stop here.
    if text.count(b"[") + text.count(b"{") > max_depth and nesting_depth(text) > max_depth:
        raise JsonTooDeep(max_depth)
    return json.loads(decoded.removeprefix("\ufeff"), parse_constant=_not_json)


def _not_json(constant: str) -> Any:
    # Python's json reads NaN, Infinity and -Infinity; RFC 8259 (section 6) has no such numbers, and int() of
    # them raises (OverflowError) where callers expect only ValueError.
    raise ValueError(f"{constant} is not a JSON number (RFC 8259, section 6)")
