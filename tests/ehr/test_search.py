"""Search parameter parsing: _lastUpdated precision and prefixes, paging, strict vs lenient handling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ehr.errors import InvalidRequest
from ehr.search import MAX_COUNT, TimeBound, parse_search, time_bounds


def _holds(bounds: tuple[TimeBound, ...], t: datetime) -> bool:
    for b in bounds:
        ok = {
            "<": t < b.at,
            "<=": t <= b.at,
            ">": t > b.at,
            ">=": t >= b.at,
            "ne": b.until is not None and (t < b.at or t >= b.until),
        }[b.op]
        if not ok:
            return False
    return True


T = datetime(2026, 3, 1, 9, 30, 15, 250000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "inside"),
    [
        ("2026", True),
        ("2026-03", True),
        ("2026-03-01", True),
        ("2026-03-02", False),
        ("2026-03-01T09:30Z", True),
        ("2026-03-01T09:30:15Z", True),
        ("2026-03-01T09:30:16Z", False),
        ("2026-03-01T10:30:15+01:00", True),
        ("gt2026-02-28", True),
        ("gt2026-03-01", False),
        ("ge2026-03-01", True),
        ("lt2026-03-01", False),
        ("lt2026-03-02", True),
        ("le2026-03-01", True),
        ("ne2026-03-01", False),
        ("ne2026-03-02", True),
        ("sa2026-02", True),
        ("eb2026-04", True),
    ],
)
def test_last_updated_ranges(value: str, inside: bool) -> None:
    assert _holds(time_bounds(value), T) is inside


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "2026-02-30", "2026-03-01T09:30"])
def test_bad_dates_are_400(bad: str) -> None:
    with pytest.raises(InvalidRequest):
        time_bounds(bad)


@given(st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2999, 12, 30), timezones=st.just(UTC)))
def test_a_day_contains_its_instants_and_nothing_after(t: datetime) -> None:
    day = t.strftime("%Y-%m-%d")
    assert _holds(time_bounds(day), t)
    assert not _holds(time_bounds(day), t + timedelta(days=1))
    assert _holds(time_bounds(f"lt{day}"), t) is False
    assert _holds(time_bounds(f"ge{day}"), t)


def test_count_is_capped_and_recorded() -> None:
    query = parse_search([("_count", "5000")], strict=False)
    assert query.count == MAX_COUNT
    assert ("_count", str(MAX_COUNT)) in query.used


def test_unknown_parameters_ignored_unless_strict() -> None:
    lenient = parse_search([("code", "1234-5"), ("patient", "Patient/0xabc")], strict=False)
    assert lenient.patients == ("0xabc",)
    assert [name for name, _ in lenient.used] == ["patient"]
    with pytest.raises(InvalidRequest, match="unsupported search parameter 'code'"):
        parse_search([("code", "1234-5")], strict=True)


@pytest.mark.parametrize("bad", [("_count", "-1"), ("_count", "ten"), ("_offset", "x"), ("_sort", "code")])
def test_bad_control_parameters(bad: tuple[str, str]) -> None:
    with pytest.raises(InvalidRequest):
        parse_search([bad], strict=False)
