"""JSON from outside: nesting is measured before parsing, so deep input is refused instead of crashing the process."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ehr._json import MAX_DEPTH, JsonTooDeep, loads, nesting_depth


def reference_depth(text: bytes) -> int:
    """Byte by byte, the obvious way: a backslash escapes the next byte, quotes toggle strings, brackets count."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in text:
        if escaped:
            escaped = False
        elif byte == ord("\\"):
            escaped = True
        elif byte == ord('"'):
            in_string = not in_string
        elif not in_string and byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif not in_string and byte in b"]}":
            depth -= 1
    return deepest


def value_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max(map(value_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(value_depth, value.values()), default=0)
    return 0


# Strings full of what a naive scan would miscount: brackets, quotes, backslashes, and non-ASCII text.
tricky_text = st.text(alphabet=st.sampled_from('[]{}"\\/ aé€😀\n\t\x00'), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | tricky_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(tricky_text, children, max_size=4),
    max_leaves=60,
)


@given(json_values, st.booleans(), st.sampled_from([None, 0, 2]))
def test_depth_of_any_json_is_the_depth_of_its_value(value: Any, ascii_only: bool, indent: int | None) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=indent).encode()
    assert nesting_depth(text) == value_depth(value) == reference_depth(text)


@given(st.binary(max_size=200) | st.lists(st.sampled_from([b"[", b"]", b"{", b"}", b'"', b"\\", b"a"])).map(b"".join))
def test_depth_of_any_bytes_matches_the_byte_by_byte_reference(text: bytes) -> None:
    assert nesting_depth(text) == reference_depth(text)


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"", 0),
        (b"17", 0),
        (b"[]", 1),
        (b'{"a": [{}, []]}', 3),
        (b'"[[[{{{"', 0),
        (b'["\\"[[[", []]', 2),  # an escaped quote does not end the string
        (b'["\\\\", []]', 2),  # an escaped backslash does not escape the quote after it
        (b'["\\\\\\"[[", []]', 2),  # three backslashes: the quote is escaped again
        (b'["unterminated [[[', 1),
        (b"]]]][[", 0),  # closing first never counts below zero
        ('["é€😀", ["字["]]'.encode(), 2),
    ],
)
def test_depth_examples(text: bytes, depth: int) -> None:
    assert nesting_depth(text) == depth == reference_depth(text)


def test_loads_takes_the_limit_and_refuses_one_more() -> None:
    assert value_depth(loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH)) == MAX_DEPTH
    with pytest.raises(JsonTooDeep, match=f"nested deeper than {MAX_DEPTH} levels"):
        loads(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    # Brackets inside strings are text, however many.
    assert loads(json.dumps({"text": "[" * 10_000}).encode()) == {"text": "[" * 10_000}


def test_loads_refuses_what_would_crash_the_interpreter() -> None:
    # The vault imports py_ecc, which raises the recursion limit to 100000: json.loads on this overflows the C
    # stack (SIGSEGV) instead of raising RecursionError. If the check were gone, this test would kill the run.
    import ehr.api  # noqa: F401  (imports py_ecc, as the vault does)

    for deep in (b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 200_000 + b"1" + b"}" * 200_000):
        with pytest.raises(JsonTooDeep):
            loads(deep)


def test_loads_reads_utf8_only() -> None:
    assert loads(b'\xef\xbb\xbf{"a": "\xc3\xa9"}') == {"a": "é"}  # a UTF-8 byte order mark is ignored
    with pytest.raises(UnicodeDecodeError):
        loads('{"a": 1}'.encode("utf-16"))
    with pytest.raises(UnicodeDecodeError):
        loads(b'{"a": "\xff"}')


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (b"[" * 2_000_000 + b"]" * 2_000_000, 2_000_000),
        (b'["' + b'\\"[' * 1_300_000 + b'"]', 1),  # brackets in a string, behind escaped quotes
        (b'"' + b'\\"' * 2_000_000, 0),  # a string that never ends
        (b"[" + b'"\\' * 2_000_000, 1),  # each backslash escapes the quote after it
        (b"[" + b'""' * 2_000_000 + b"]", 1),
        (b'"[' * 2_000_000, 1_000_000),  # every other bracket is outside a string
    ],
    ids=["brackets", "escaped quotes", "unterminated", "quote-backslash", "empty strings", "quote-bracket"],
)
def test_4_mib_bodies_built_to_mislead_the_scan_get_their_exact_depth(text: bytes, depth: int) -> None:
    # The worst cases for a byte scan, at the body limit. Their speed is by construction (bytes.translate and numpy
    # over the whole text, no Python loop and no regex to backtrack), so this states only what the scan answers.
    assert nesting_depth(text) == depth


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_loads_refuses_numbers_json_does_not_have(constant: str) -> None:
    with pytest.raises(ValueError, match=f"^{constant} is not a JSON number"):
        loads(f'{{"nonce": {constant}}}'.encode())
