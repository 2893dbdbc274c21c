"""Parsing FHIR search parameters the vault supports, with no I/O.

Supported (FHIR R4B section 3.1.1, https://hl7.org/fhir/R4B/search.html): ``patient`` (a reference or a bare
id, comma-separated values ORed), ``_id``, ``_lastUpdated`` with the prefixes eq, ne, gt, lt, ge, le, sa, eb
(date precision sets the range, as section 3.1.1.4.2 says), ``_count``, ``_sort=_lastUpdated|-_lastUpdated``
and the paging cursor ``_offset``. Other parameters are ignored and left out of the self link (lenient
handling), or refused with 400 when the client sends ``Prefer: handling=strict``.

Search beyond these needs plaintext the vault does not have; blind indexes come with a later issue.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from ehr.errors import InvalidRequest

__all__ = [
    "DEFAULT_COUNT",
    "MAX_COUNT",
    "SearchQuery",
    "TimeBound",
    "parse_count",
    "parse_search",
    "time_bounds",
]

DEFAULT_COUNT = 20
MAX_COUNT = 100
_CONTROL = {"_count", "_offset", "_sort", "_format", "_total"}
_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
# ASCII digits only (``\d`` would take any Unicode digit); the zone is FHIR's: -14:00 to +14:00.
_DATETIME = re.compile(
    r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]{1,9})?)?"
    r"(Z|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))?)?)?)?"
)
# A count or offset: at most nine ASCII digits (str.isdigit also takes "²", which int() refuses).
_COUNT = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class TimeBound:
    """One ``_lastUpdated`` condition: ``last_updated <op> at``; op "ne" means outside [at, until)."""

    op: str
    at: datetime
    until: datetime | None = None


@dataclass(frozen=True)
class SearchQuery:
    patients: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    bounds: tuple[TimeBound, ...] = ()
    count: int = DEFAULT_COUNT
    offset: int = 0
    newest_first: bool = False
    used: tuple[tuple[str, str], ...] = field(default=())  # the parameters applied, for the self link


def _range(value: str, name: str) -> tuple[datetime, datetime]:
    """The instant range a FHIR date/dateTime of some precision denotes: [start, end), for parameter ``name``."""
    m = _DATETIME.fullmatch(value)
    if not m:
        raise InvalidRequest(f"{name} value {value[:40]!r} is not a FHIR dateTime", expression=name)
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    if hour is not None and zone is None:
        raise InvalidRequest(f"{name} with a time needs a time zone", expression=name)
    tz: timezone = UTC
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        start = datetime(
            int(year),
            int(month or 1),
            int(day or 1),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int(fraction[1:7].ljust(6, "0")) if fraction else 0,
            tzinfo=tz,
        )
    except ValueError as exc:
        raise InvalidRequest(f"{name} value is not a real date: {exc}", expression=name) from None
    try:
        if month is None:
            end = start.replace(year=start.year + 1)
        elif day is None:
            following = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
            end = start.replace(year=following[0], month=following[1])
        elif hour is None:
            end = start + timedelta(days=1)
        elif second is None:
            end = start + timedelta(minutes=1)
        elif fraction is None:
            end = start + timedelta(seconds=1)
        else:
            end = start + timedelta(microseconds=max(1, 10 ** (6 - min(6, len(fraction) - 1))))
        return start.astimezone(UTC), end.astimezone(UTC)
    except (ValueError, OverflowError):
        # The range reaches past year 9999 or before year 1 (in UTC): no record is ever stamped there.
        raise InvalidRequest(
            f"{name} value {value[:40]!r} is outside the dates the vault handles (years 1 to 9999, UTC)",
            expression=name,
        ) from None


def time_bounds(value: str, *, name: str = "_lastUpdated") -> tuple[TimeBound, ...]:
    """The conditions a ``_lastUpdated`` value (a prefix, then a FHIR date or dateTime) puts on the instant."""
    prefix = value[:2] if value[:2] in _PREFIXES else "eq"
    raw = value[2:] if value[:2] in _PREFIXES else value
    start, end = _range(raw, name)
    if prefix == "eq":
        return (TimeBound(">=", start), TimeBound("<", end))
    if prefix == "ne":
        return (TimeBound("ne", start, end),)
    if prefix in ("gt", "sa"):
        return (TimeBound(">=", end),)
    if prefix in ("lt", "eb"):
        return (TimeBound("<", start),)
    if prefix == "ge":
        return (TimeBound(">=", start),)
    return (TimeBound("<", end),)  # le


def _patient_value(value: str) -> str:
    return value.removeprefix("Patient/")


def parse_search(params: list[tuple[str, str]], *, strict: bool, patient_param: bool = True) -> SearchQuery:
    """Turn query parameters into a SearchQuery; unknown ones are ignored unless ``strict``."""
    patients: list[str] = []
    ids: list[str] = []
    bounds: list[TimeBound] = []
    used: list[tuple[str, str]] = []
    count, offset, newest_first = DEFAULT_COUNT, 0, False
    for name, value in params:
        base = name.split(":", 1)[0]
        if name in ("patient", "patient:Patient") and patient_param:
            patients.extend(_patient_value(v) for v in value.split(",") if v)
        elif name == "_id":
            ids.extend(v for v in value.split(",") if v)
        elif name == "_lastUpdated":
            bounds.extend(time_bounds(value))
        elif name == "_count":
            count = min(parse_count(name, value), MAX_COUNT)
            value = str(count)
        elif name == "_offset":
            offset = parse_count(name, value)
        elif name == "_sort":
            if value not in ("_lastUpdated", "-_lastUpdated"):
                raise InvalidRequest("only _sort=_lastUpdated or -_lastUpdated is supported", expression="_sort")
            newest_first = value.startswith("-")
        elif name in _CONTROL:
            continue
        else:
            if strict:
                raise InvalidRequest(f"unsupported search parameter {base[:64]!r}", expression=base[:64])
            continue
        used.append((name, value))
    return SearchQuery(tuple(patients), tuple(ids), tuple(bounds), count, offset, newest_first, tuple(used))


def parse_count(name: str, value: str) -> int:
    """A non-negative integer parameter: one to nine ASCII digits, else 400 naming ``name``."""
    if not _COUNT.fullmatch(value):
        raise InvalidRequest(f"{name} must be a non-negative integer of at most 9 digits", expression=name)
    return int(value)
