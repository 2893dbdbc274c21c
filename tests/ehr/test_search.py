"""Search parameter parsing: _lastUpdated precision and prefixes, paging, strict vs lenient handling."""

from __future__ import annotations

from collections.abc import Callable
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


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("9999", "outside the dates the vault handles"),  # the year's end is in year 10000
        ("ge9999-12-31T23:59:59.9999999Z", "outside the dates the vault handles"),
        ("0001-01-01T00:00:00+01:00", "outside the dates the vault handles"),  # before year 1 in UTC
        ("ge2026-01-01T00:00:00+24:00", "is not a FHIR dateTime"),  # FHIR zones run from -13:59 to +14:00
        ("2026-01-01T00:00:00+14:01", "is not a FHIR dateTime"),
        ("2026-01-01T00:00:00-14:30", "is not a FHIR dateTime"),
        ("٢٠٢٦", "is not a FHIR dateTime"),  # Arabic-Indic digits: \d took them, int() too
        ("2026-01-01T00:00:00.1234567890Z", "is not a FHIR dateTime"),  # at most nine fraction digits
        ("0000", "is not a real date"),
        ("2026-01-01T00:00:60Z", "is not a real date"),
    ],
)
def test_dates_out_of_range_or_form_are_400_naming_the_parameter(value: str, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason) as refused:
        time_bounds(value)
    assert refused.value.expression == "_lastUpdated"
    assert refused.value.message.startswith("_lastUpdated ")
    with pytest.raises(InvalidRequest) as refused:
        time_bounds(value, name="_since")
    assert (refused.value.expression, refused.value.message[:7]) == ("_since", "_since ")


@pytest.mark.parametrize("zone", ["+14:00", "-14:00", "-13:59", "+05:45", "Z"])
def test_every_fhir_time_zone_is_taken(zone: str) -> None:
    assert time_bounds(f"2026-03-01T09:30:00{zone}")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("_count", "²"),  # str.isdigit() is True, int() refuses it
        ("_count", "٣"),  # int() would take this one: still not ASCII
        ("_count", "1" * 5000),  # int() refuses more than 4300 digits
        ("_count", "1234567890"),
        ("_count", " 5"),
        ("_count", "+5"),
        ("_offset", "1" * 5000),
        ("_offset", "²"),
        ("_offset", "-1"),
        ("_offset", ""),
    ],
)
def test_counts_are_ascii_digits_of_bounded_length(name: str, value: str) -> None:
    with pytest.raises(InvalidRequest, match=f"^{name} must be a non-negative integer of at most 9 digits$") as refused:
        parse_search([(name, value)], strict=False)
    assert refused.value.expression == name


def _refusal(parse: Callable[[], object]) -> InvalidRequest | None:
    """The InvalidRequest ``parse`` raises, or None; any other exception fails the test (it would be a 500)."""
    try:
        parse()
    except InvalidRequest as refused:
        return refused
    return None


@given(st.text(max_size=40))
def test_any_search_value_parses_or_is_refused_as_invalid(value: str) -> None:
    for name in ("_count", "_offset", "_lastUpdated", "_sort", "_id", "patient"):
        refused = _refusal(lambda name=name: parse_search([(name, value)], strict=True))
        assert refused is None or refused.expression == name


@given(st.from_regex(r"(eq|ne|gt|lt|ge|le|sa|eb)?[0-9]{4}(-[0-9]{2}(-[0-9]{2}(T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?"
                     r"(Z|[+-][0-9]{2}:[0-9]{2}))?)?)?", fullmatch=True))
def test_any_date_shaped_value_parses_or_is_refused_as_invalid(value: str) -> None:
    refused = _refusal(lambda: time_bounds(value))
    assert refused is None or refused.expression == "_lastUpdated"
