"""Working time: a tenant's opening hours, and SLA deadlines that only count while the showroom is open.

A lead that arrives at 20:55 with a 15-minute first-response time is not late at 21:10 when the store
closed at 21:00; it is due 09:10 the next morning. Pure: no clock reads, times are passed in. Instants
go in aware (a naive one is taken as UTC) and come out in UTC; opening hours are local wall-clock times,
read day by day through zoneinfo so DST days are as long as they really are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from schemas.scores import Grade

Interval = tuple[time, time]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index + 1 is the ISO weekday
MONDAY = 1
SEARCH_DAYS = 400  # more closed days in a row than this: the calendar has no working time left
DEFAULT_INTERVALS: tuple[Interval, ...] = ((time(9), time(21)),)  # car showrooms open every day
END_OF_DAY = time.max  # as an interval's end: midnight at the end of the day ("24:00")


class WorkTimeError(ValueError):
    """Opening hours or an SLA policy that cannot be used; the message names the field or key."""


def _utc(at: datetime) -> datetime:
    # Naive and aware times cannot be compared; a naive one (an old document, a test) is taken as UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _default_days() -> Mapping[int, tuple[Interval, ...]]:
    return MappingProxyType({day: DEFAULT_INTERVALS for day in range(1, 8)})


@dataclass(frozen=True)
class WorkingHours:
    """When a tenant works. `days` maps each ISO weekday (1 = Monday) to its local (start, end) intervals;
    a weekday left out is closed. `holidays` are local dates with no working time; `extra_days` (调休) are
    local dates worked on Monday's hours whatever their weekday."""

    timezone: str = "Asia/Shanghai"
    days: Mapping[int, tuple[Interval, ...]] = field(default_factory=_default_days)
    holidays: frozenset[date] = frozenset()
    extra_days: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.timezone, str) or not self.timezone:
            raise WorkTimeError("timezone: a zone name such as 'Asia/Shanghai'")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise WorkTimeError(f"timezone: unknown zone {self.timezone!r}") from e
        if not isinstance(self.days, Mapping):
            raise WorkTimeError("days: a mapping of ISO weekday (1-7) to intervals")
        # Normalised copies: sorted intervals, read-only mapping, frozensets, so nobody mutates them later.
        days = {day: _checked_day(day, intervals) for day, intervals in self.days.items()}
        object.__setattr__(self, "days", MappingProxyType(dict(sorted(days.items()))))
        holidays = _checked_dates("holidays", self.holidays)
        extra_days = _checked_dates("extra_days", self.extra_days)
        both = holidays & extra_days
        if both:
            raise WorkTimeError(f"extra_days: also holidays: {', '.join(sorted(d.isoformat() for d in both))}")
        if extra_days and not days.get(MONDAY):
            # An extra day borrows Monday's hours; with none it would silently add no working time.
            raise WorkTimeError("extra_days: Monday has no hours for them to use")
        object.__setattr__(self, "holidays", holidays)
        object.__setattr__(self, "extra_days", extra_days)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # cached by zoneinfo itself

    def intervals_on(self, day: date) -> tuple[Interval, ...]:
        """The local intervals worked on `day`: none on a holiday, Monday's on an extra day."""
        if day in self.holidays:
            return ()
        if day in self.extra_days:
            return self.days.get(MONDAY, ())
        return self.days.get(day.isoweekday(), ())

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> WorkingHours:
        """Hours from a `[working_hours]` TOML table: `timezone`, `days` (`mon = ["09:00-12:00", ...]`,
        `sat = []` for closed; a day not given keeps 09:00-21:00), `holidays` and `extra_days` (dates)."""
        if not isinstance(data, Mapping):
            raise WorkTimeError("working_hours: a table")
        unknown = set(data) - {"timezone", "days", "holidays", "extra_days"}
        if unknown:
            raise WorkTimeError(f"unknown working_hours keys: {', '.join(sorted(map(str, unknown)))}")
        kwargs: dict[str, Any] = {}
        if "timezone" in data:
            kwargs["timezone"] = data["timezone"]
        if "days" in data:
            kwargs["days"] = _parse_days(data["days"])
        for key in ("holidays", "extra_days"):
            if key in data:
                kwargs[key] = _parse_dates(key, data[key])
        return cls(**kwargs)


def _checked_day(day: Any, intervals: Any) -> tuple[Interval, ...]:
    if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 7:
        raise WorkTimeError(f"days: weekday {day!r} is not an ISO weekday 1-7")
    name = f"days.{WEEKDAYS[day - 1]}"
    if isinstance(intervals, str | bytes) or not isinstance(intervals, Iterable):
        raise WorkTimeError(f"{name}: a sequence of (start, end) times")
    checked: list[Interval] = []
    for interval in intervals:
        if not (isinstance(interval, tuple | list) and len(interval) == 2):
            raise WorkTimeError(f"{name}: {interval!r} is not a (start, end) pair")
        start, end = interval
        if not (isinstance(start, time) and isinstance(end, time)) or start.tzinfo or end.tzinfo:
            raise WorkTimeError(f"{name}: {interval!r} needs two local (naive) times")
        if not start < end:
            raise WorkTimeError(f"{name}: interval {start.isoformat()}-{end.isoformat()} starts at or after its end")
        checked.append((start, end))
    checked.sort()
    for (_, end), (start, _) in zip(checked, checked[1:], strict=False):
        if start < end:  # touching (12:00 ends, 12:00 starts) is fine, overlapping is a typo
            raise WorkTimeError(f"{name}: intervals overlap at {start.isoformat()}")
    return tuple(checked)


def _checked_dates(name: str, values: Any) -> frozenset[date]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise WorkTimeError(f"{name}: a set of dates")
    values = frozenset(values)
    for value in values:
        # A datetime is a date too, but a holiday is a whole local day, not an instant.
        if not isinstance(value, date) or isinstance(value, datetime):
            raise WorkTimeError(f"{name}: {value!r} is not a date")
    return values


_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _parse_time(name: str, hour: str, minute: str, end: bool) -> time:
    h, m = int(hour), int(minute)
    if end and (h, m) == (24, 0):
        return END_OF_DAY
    if h > 23 or m > 59:
        raise WorkTimeError(f"{name}: {hour}:{minute} is not a time of day")
    return time(h, m)


def _parse_days(data: Any) -> dict[int, tuple[Interval, ...]]:
    if not isinstance(data, Mapping):
        raise WorkTimeError("days: a table of mon..sun to lists like ['09:00-12:00']")
    unknown = set(data) - set(WEEKDAYS)
    if unknown:
        raise WorkTimeError(f"days: unknown days: {', '.join(sorted(map(str, unknown)))}")
    days = dict(_default_days())
    for key, spans in data.items():
        name = f"days.{key}"
        if isinstance(spans, str) or not isinstance(spans, list | tuple):
            raise WorkTimeError(f"{name}: a list like ['09:00-12:00', '13:00-18:00'], [] when closed")
        intervals = []
        for span in spans:
            match = _INTERVAL.match(span) if isinstance(span, str) else None
            if match is None:
                raise WorkTimeError(f"{name}: {span!r} is not like '09:00-21:00'")
            start = _parse_time(name, match[1], match[2], end=False)
            intervals.append((start, _parse_time(name, match[3], match[4], end=True)))
        days[WEEKDAYS.index(key) + 1] = tuple(intervals)
    return days


def _parse_dates(name: str, values: Any) -> frozenset[date]:
    if isinstance(values, str) or not isinstance(values, list | tuple):
        raise WorkTimeError(f"{name}: a list of dates like ['2026-10-01']")
    parsed = set()
    for value in values:
        if isinstance(value, date) and not isinstance(value, datetime):  # TOML gives bare dates as dates
            parsed.add(value)
            continue
        try:
            parsed.add(date.fromisoformat(value))
        except (TypeError, ValueError) as e:
            raise WorkTimeError(f"{name}: {value!r} is not a date like '2026-10-01'") from e
    return frozenset(parsed)


# ---- instants ----------------------------------------------------------------------------------------


def _day_spans(day: date, hours: WorkingHours) -> list[tuple[datetime, datetime]]:
    """The UTC spans worked on one local day, in order and non-overlapping."""
    zone = hours.zone
    spans: list[tuple[datetime, datetime]] = []
    for start, end in hours.intervals_on(day):
        s = datetime.combine(day, start, tzinfo=zone).astimezone(UTC)
        if end == END_OF_DAY:
            e = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
        else:
            e = datetime.combine(day, end, tzinfo=zone).astimezone(UTC)
        # A local time in a spring-forward gap is read with the old offset (fold=0), i.e. moved forward
        # by the gap; that can make it land after a later boundary, so clip instead of double counting.
        if spans:
            s = max(s, spans[-1][1])
        if s < e:
            spans.append((s, e))
    return spans


def _spans(after: datetime, hours: WorkingHours, until: datetime | None = None) -> Iterator[tuple[datetime, datetime]]:
    """UTC spans ending after `after`, in order. With `until`: stop past it. Without: raise once
    SEARCH_DAYS local days in a row have no working time, or a caller would loop forever."""
    zone = hours.zone
    # Start a day early: a span of the previous local day may still be open at `after` around DST.
    day = after.astimezone(zone).date() - timedelta(days=1)
    last_day = until.astimezone(zone).date() + timedelta(days=1) if until is not None else None
    previous_end: datetime | None = None
    empty = 0
    while last_day is None or day <= last_day:
        found = False
        for s, e in _day_spans(day, hours):
            if previous_end is not None:
                s = max(s, previous_end)
            if s >= e:
                continue
            previous_end = e
            if e > after:
                found = True
                yield s, e
        empty = 0 if found else empty + 1
        if last_day is None and empty > SEARCH_DAYS:
            raise WorkTimeError(f"days: no working time within {SEARCH_DAYS} days after {after.isoformat()}")
        day += timedelta(days=1)


def is_working(at: datetime, hours: WorkingHours) -> bool:
    """Whether `at` falls inside the tenant's working time (intervals are start-inclusive, end-exclusive)."""
    at = _utc(at)
    for s, e in _spans(at, hours, until=at):
        if s <= at < e:
            return True
    return False


def next_opening(at: datetime, hours: WorkingHours) -> datetime:
    """The first working instant at or after `at`, in UTC: `at` itself while open."""
    at = _utc(at)
    for s, _ in _spans(at, hours):
        return max(s, at)
    raise AssertionError("unreachable: _spans raises when it finds nothing")  # pragma: no cover


def add_working(start: datetime, duration: timedelta, hours: WorkingHours) -> datetime:
    """The UTC instant when `duration` of working time has passed since `start`. Counting begins at the
    next opening; a deadline that uses up a day exactly is that day's closing time, not the next opening."""
    if not isinstance(duration, timedelta) or duration < timedelta(0):
        raise WorkTimeError(f"duration: a timedelta of at least 0, not {duration!r}")
    start = _utc(start)
    remaining = duration
    for s, e in _spans(start, hours):
        s = max(s, start)
        if remaining <= e - s:
            return s + remaining
        remaining -= e - s
    raise AssertionError("unreachable: _spans raises when it finds nothing")  # pragma: no cover


def working_between(start: datetime, end: datetime, hours: WorkingHours) -> timedelta:
    """The working time in [start, end); zero when `end` is not after `start`."""
    start, end = _utc(start), _utc(end)
    total = timedelta(0)
    if end <= start:
        return total
    for s, e in _spans(start, hours, until=end):
        if s >= end:
            break
        total += min(e, end) - max(s, start)
    return total


# ---- SLA -------------------------------------------------------------------------------------------------

DEFAULT_FIRST_RESPONSE: Mapping[str, timedelta] = MappingProxyType(
    {
        Grade.H.value: timedelta(minutes=15),
        Grade.A.value: timedelta(hours=2),
        Grade.B.value: timedelta(hours=24),
        Grade.C.value: timedelta(hours=72),
    }
)
_GRADES = frozenset(g.value for g in Grade)
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_UNITS = ("days", "hours", "minutes", "seconds")


def parse_duration(text: str, name: str) -> timedelta:
    """A duration like '15m', '2h', '1d', '90s' or '1h30m'; errors name `name`."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None or not any(match.groups()):
        raise WorkTimeError(f"{name}: {text!r} is not a duration like '15m', '2h', '1d' or '1h30m'")
    return timedelta(**{unit: int(n) for unit, n in zip(_UNITS, match.groups(), strict=True) if n})


@dataclass(frozen=True)
class SlaPolicy:
    """First-response time per grade, counted in working time (or wall-clock when `working_time` is off:
    for tenants whose consultants answer around the clock)."""

    first_response: Mapping[str, timedelta] = field(default_factory=lambda: DEFAULT_FIRST_RESPONSE)
    working_time: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.first_response, Mapping):
            raise WorkTimeError("first_response: a mapping of grade to timedelta")
        for grade, limit in self.first_response.items():
            if grade not in _GRADES:
                raise WorkTimeError(f"first_response: unknown grade {grade!r}")
            if not isinstance(limit, timedelta) or limit <= timedelta(0):
                raise WorkTimeError(f"first_response.{grade}: a positive timedelta, not {limit!r}")
        if not isinstance(self.working_time, bool):
            raise WorkTimeError("working_time: true or false")
        # StrEnum keys become plain letters so lookups by either work.
        frozen = {str(g): limit for g, limit in self.first_response.items()}
        object.__setattr__(self, "first_response", MappingProxyType(frozen))

    def deadline(self, grade: str, created_at: datetime, hours: WorkingHours) -> datetime:
        """When a lead of `grade` created at `created_at` must have had its first response, in UTC."""
        limit = self.first_response.get(str(grade))
        if limit is None:
            raise WorkTimeError(f"grade: no first-response time for {grade!r}")
        if self.working_time:
            return add_working(created_at, limit, hours)
        return _utc(created_at) + limit

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> SlaPolicy:
        """The policy from an `[sla]` TOML table: grade letters to durations ('15m', '2h', '3d'), plus
        `working_time`; grades not given keep their defaults."""
        if not isinstance(data, Mapping):
            raise WorkTimeError("sla: a table")
        unknown = set(data) - _GRADES - {"working_time"}
        if unknown:
            raise WorkTimeError(f"unknown sla keys: {', '.join(sorted(map(str, unknown)))}")
        first_response = dict(DEFAULT_FIRST_RESPONSE)
        working_time = data.get("working_time", True)
        if not isinstance(working_time, bool):
            raise WorkTimeError("working_time: true or false")
        for key, value in data.items():
            if key != "working_time":
                first_response[key] = parse_duration(value, key)
        for key, limit in first_response.items():
            if limit <= timedelta(0):
                raise WorkTimeError(f"{key}: a duration above zero")
        return cls(first_response, working_time)
