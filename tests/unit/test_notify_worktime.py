"""Working time: opening hours, deadlines counted only while open, and the SLA policy on top."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.scores import Grade
from services.notify.domain.worktime import (
    SlaPolicy,
    WorkingHours,
    WorkTimeError,
    add_working,
    is_working,
    next_opening,
    parse_duration,
    working_between,
)

NO_DB = settings(database=None)
SH = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")
DEFAULT = WorkingHours()  # Asia/Shanghai, every day 09:00-21:00
WEEKDAYS_ONLY = WorkingHours.from_mapping({"days": {"sat": [], "sun": []}})  # Mon-Fri 09:00-21:00
LUNCH = WorkingHours.from_mapping({"days": {d: ["09:00-12:00", "13:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri")}})


def sh(*args: int) -> datetime:
    return datetime(*args, tzinfo=SH)


def in_utc(at: datetime) -> datetime:
    return at.astimezone(UTC)


# ---- the calendar --------------------------------------------------------------------------------------


def test_defaults_are_every_day_nine_to_nine_in_shanghai():
    assert DEFAULT.timezone == "Asia/Shanghai"
    assert all(DEFAULT.days[d] == ((time(9), time(21)),) for d in range(1, 8))
    assert DEFAULT.holidays == DEFAULT.extra_days == frozenset()


def test_from_mapping_keeps_days_not_given_and_parses_dates():
    hours = WorkingHours.from_mapping(
        {
            "timezone": "Asia/Shanghai",
            "days": {"mon": ["13:00-18:00", "09:00-12:00"], "sat": []},
            "holidays": ["2026-10-01", date(2026, 10, 2)],  # TOML hands bare dates over as dates
            "extra_days": ["2026-10-10"],
        }
    )
    assert hours.days[1] == ((time(9), time(12)), (time(13), time(18)))  # sorted
    assert hours.days[6] == ()
    assert hours.days[3] == ((time(9), time(21)),)  # not given: default
    assert hours.holidays == {date(2026, 10, 1), date(2026, 10, 2)}
    assert hours.extra_days == {date(2026, 10, 10)}


def test_is_working_is_start_inclusive_end_exclusive():
    assert not is_working(sh(2026, 5, 6, 8, 59, 59), DEFAULT)
    assert is_working(sh(2026, 5, 6, 9), DEFAULT)
    assert is_working(sh(2026, 5, 6, 20, 59, 59), DEFAULT)
    assert not is_working(sh(2026, 5, 6, 21), DEFAULT)
    assert not is_working(sh(2026, 5, 9, 12), WEEKDAYS_ONLY)  # Saturday


def test_next_opening_is_the_instant_itself_while_open():
    assert next_opening(sh(2026, 5, 6, 10), DEFAULT) == in_utc(sh(2026, 5, 6, 10))
    assert next_opening(sh(2026, 5, 6, 21), DEFAULT) == in_utc(sh(2026, 5, 7, 9))
    assert next_opening(sh(2026, 5, 6, 3), DEFAULT) == in_utc(sh(2026, 5, 6, 9))
    assert next_opening(sh(2026, 5, 6, 10), DEFAULT).tzinfo is UTC


# ---- deadlines -------------------------------------------------------------------------------------------


def test_h_lead_at_2055_is_due_0910_next_morning():
    due = add_working(sh(2026, 5, 6, 20, 55), timedelta(minutes=15), DEFAULT)
    assert due == in_utc(sh(2026, 5, 7, 9, 10))
    assert due.tzinfo is UTC


def test_saturday_lead_rolls_to_monday_in_a_weekday_setup():
    # 2026-05-09 is a Saturday: nothing counts until Monday 09:00.
    assert add_working(sh(2026, 5, 9, 11), timedelta(hours=2), WEEKDAYS_ONLY) == in_utc(sh(2026, 5, 11, 11))
    # Friday 20:00 with 2 h: one hour on Friday, one on Monday.
    assert add_working(sh(2026, 5, 8, 20), timedelta(hours=2), WEEKDAYS_ONLY) == in_utc(sh(2026, 5, 11, 10))


def test_lunch_break_is_not_counted():
    assert add_working(sh(2026, 5, 6, 11, 30), timedelta(hours=1), LUNCH) == in_utc(sh(2026, 5, 6, 13, 30))
    assert add_working(sh(2026, 5, 6, 12, 15), timedelta(minutes=10), LUNCH) == in_utc(sh(2026, 5, 6, 13, 10))
    assert working_between(sh(2026, 5, 6, 8), sh(2026, 5, 6, 20), LUNCH) == timedelta(hours=8)
    assert not is_working(sh(2026, 5, 6, 12, 30), LUNCH)


def test_a_deadline_that_uses_up_the_day_is_closing_time():
    assert add_working(sh(2026, 5, 6, 20, 45), timedelta(minutes=15), DEFAULT) == in_utc(sh(2026, 5, 6, 21))


def test_zero_duration_is_start_while_open_else_next_opening():
    assert add_working(sh(2026, 5, 6, 10), timedelta(0), DEFAULT) == in_utc(sh(2026, 5, 6, 10))
    assert add_working(sh(2026, 5, 6, 22), timedelta(0), DEFAULT) == in_utc(sh(2026, 5, 7, 9))


def test_holidays_are_skipped_and_extra_days_counted():
    golden_week = WorkingHours.from_mapping(
        {
            "days": {"sat": [], "sun": []},
            "holidays": [f"2026-10-0{d}" for d in range(1, 8)],
            "extra_days": ["2026-10-10"],  # a Saturday worked to make up for the week off (调休)
        }
    )
    # Wednesday 30 Sep 20:00 + 2 h: one hour that evening, the rest after the holidays on Thursday 8 Oct.
    assert add_working(sh(2026, 9, 30, 20), timedelta(hours=2), golden_week) == in_utc(sh(2026, 10, 8, 10))
    # Friday 9 Oct 20:30 + 1 h: the extra Saturday counts, on Monday's hours.
    assert add_working(sh(2026, 10, 9, 20, 30), timedelta(hours=1), golden_week) == in_utc(sh(2026, 10, 10, 9, 30))
    assert is_working(sh(2026, 10, 10, 12), golden_week)
    assert not is_working(sh(2026, 10, 1, 12), golden_week)


def test_utc_and_naive_inputs_mean_the_same_instant():
    local = sh(2026, 5, 6, 20, 55)
    utc = local.astimezone(UTC)  # 12:55 UTC
    naive = utc.replace(tzinfo=None)
    expected = in_utc(sh(2026, 5, 7, 9, 10))
    for start in (local, utc, naive):
        assert add_working(start, timedelta(minutes=15), DEFAULT) == expected
    # 02:00 UTC is 10:00 in Shanghai: open, though it is the middle of the night in UTC.
    assert is_working(datetime(2026, 5, 6, 2, tzinfo=UTC), DEFAULT)
    assert not is_working(datetime(2026, 5, 6, 14, tzinfo=UTC), DEFAULT)  # 22:00 local


def test_dst_zone_across_the_march_change():
    # Berlin moves from +01:00 to +02:00 at 02:00 on Sunday 29 March 2026.
    office = WorkingHours.from_mapping({"timezone": "Europe/Berlin", "days": {d: ["09:00-17:00"] for d in ("sat", "sun")}})
    start = datetime(2026, 3, 28, 16, tzinfo=BERLIN)  # 15:00 UTC
    due = add_working(start, timedelta(hours=2), office)
    assert due == datetime(2026, 3, 29, 10, tzinfo=BERLIN)  # 08:00 UTC: 17 wall hours later, not 18
    assert due == datetime(2026, 3, 29, 8, tzinfo=UTC)
    # Open around the clock: the short day has only 23 hours in it.
    always = WorkingHours.from_mapping({"timezone": "Europe/Berlin", "days": {d: ["00:00-24:00"] for d in ("sat", "sun")}})
    assert working_between(datetime(2026, 3, 29, tzinfo=BERLIN), datetime(2026, 3, 30, tzinfo=BERLIN), always) == timedelta(hours=23)
    noon = datetime(2026, 3, 28, 12, tzinfo=BERLIN)
    assert add_working(noon, timedelta(hours=24), always) == datetime(2026, 3, 29, 13, tzinfo=BERLIN)


def test_an_interval_ending_in_the_dst_gap_keeps_its_length():
    # 02:30 does not exist on 29 March in Berlin; it is read with the old offset, as 03:30 CEST.
    night = WorkingHours.from_mapping({"timezone": "Europe/Berlin", "days": {"sun": ["01:30-02:30"]}})
    day_of = (datetime(2026, 3, 29, tzinfo=BERLIN), datetime(2026, 3, 30, tzinfo=BERLIN))
    assert working_between(*day_of, night) == timedelta(hours=1)
    assert is_working(datetime(2026, 3, 29, 3, 15, tzinfo=BERLIN), night)
    assert add_working(day_of[0], timedelta(hours=1), night) == datetime(2026, 3, 29, 3, 30, tzinfo=BERLIN)


def test_working_between_is_zero_for_an_empty_or_reversed_range():
    at = sh(2026, 5, 6, 10)
    assert working_between(at, at, DEFAULT) == timedelta(0)
    assert working_between(at, at - timedelta(hours=1), DEFAULT) == timedelta(0)
    assert working_between(sh(2026, 5, 9, 0), sh(2026, 5, 11, 0), WEEKDAYS_ONLY) == timedelta(0)  # a weekend


def test_a_calendar_with_no_working_time_raises_instead_of_looping():
    closed = WorkingHours(days={})
    with pytest.raises(WorkTimeError, match="days"):
        add_working(sh(2026, 5, 6, 10), timedelta(minutes=1), closed)
    with pytest.raises(WorkTimeError, match="days"):
        next_opening(sh(2026, 5, 6, 10), closed)
    assert not is_working(sh(2026, 5, 6, 10), closed)
    assert working_between(sh(2026, 5, 6), sh(2026, 6, 6), closed) == timedelta(0)


# ---- properties -----------------------------------------------------------------------------------------

starts = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC))
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10))
calendars = st.sampled_from(
    [
        DEFAULT,
        WEEKDAYS_ONLY,
        LUNCH,
        # Sunday spans that touch midnight and the DST gap (02:00-03:00 on the last Sunday of March).
        WorkingHours.from_mapping({"timezone": "Europe/Berlin", "days": {"sun": ["00:00-01:00", "01:30-02:30", "22:00-24:00"]}}),
        WorkingHours.from_mapping({"timezone": "America/New_York", "holidays": ["2026-03-09"], "extra_days": ["2026-03-08"]}),
    ]
)


@NO_DB
@given(starts, durations, calendars)
def test_working_between_inverts_add_working(start, duration, hours):
    due = add_working(start, duration, hours)
    assert due >= start
    assert working_between(start, due, hours) == duration


@NO_DB
@given(starts, durations, durations, calendars)
def test_a_longer_duration_is_never_due_earlier(start, a, b, hours):
    short, long = sorted((a, b))
    assert add_working(start, short, hours) <= add_working(start, long, hours)


@NO_DB
@given(starts, calendars)
def test_next_opening_is_working_and_nothing_is_skipped(start, hours):
    opening = next_opening(start, hours)
    assert is_working(opening, hours)
    assert working_between(start, opening, hours) == timedelta(0)


# ---- the SLA policy ------------------------------------------------------------------------------------


def test_sla_defaults_and_working_time_deadline():
    policy = SlaPolicy()
    assert policy.working_time is True
    assert dict(policy.first_response) == {
        "H": timedelta(minutes=15),
        "A": timedelta(hours=2),
        "B": timedelta(hours=24),
        "C": timedelta(hours=72),
    }
    created = sh(2026, 5, 6, 20, 55)
    assert policy.deadline("H", created, DEFAULT) == in_utc(sh(2026, 5, 7, 9, 10))
    assert policy.deadline(Grade.H, created, DEFAULT) == in_utc(sh(2026, 5, 7, 9, 10))
    # B: 24 working hours is two 12-hour days.
    assert policy.deadline("B", created, DEFAULT) == in_utc(sh(2026, 5, 8, 20, 55))


def test_sla_wall_clock_mode_ignores_opening_hours():
    policy = SlaPolicy.from_mapping({"working_time": False})
    created = sh(2026, 5, 6, 20, 55)
    assert policy.deadline("H", created, DEFAULT) == in_utc(sh(2026, 5, 6, 21, 10))
    assert policy.deadline("C", created.replace(tzinfo=None), DEFAULT) == datetime(2026, 5, 9, 20, 55, tzinfo=UTC)


def test_sla_from_mapping_parses_durations_and_keeps_grades_not_given():
    policy = SlaPolicy.from_mapping({"H": "10m", "A": "1h30m", "C": "3d", "working_time": True})
    assert policy.first_response["H"] == timedelta(minutes=10)
    assert policy.first_response["A"] == timedelta(hours=1, minutes=30)
    assert policy.first_response["B"] == timedelta(hours=24)
    assert policy.first_response["C"] == timedelta(days=3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("15m", timedelta(minutes=15)), ("2h", timedelta(hours=2)), ("1d", timedelta(days=1)), ("90s", timedelta(seconds=90)),
     ("1h30m", timedelta(hours=1, minutes=30)), ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4))],
)
def test_parse_duration(text, expected):
    assert parse_duration(text, "H") == expected


# ---- every error names its field ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": ""}, "timezone"),
        ({"days": {1: ((time(12), time(9)),)}}, "days.mon"),
        ({"days": {2: ((time(9), time(13)), (time(12), time(18)))}}, "days.tue"),
        ({"days": {8: ()}}, "days"),
        ({"days": {1: ("09:00-12:00",)}}, "days.mon"),
        ({"holidays": frozenset({"2026-10-01"})}, "holidays"),
        ({"extra_days": frozenset({datetime(2026, 10, 10)})}, "extra_days"),
        ({"holidays": frozenset({date(2026, 10, 10)}), "extra_days": frozenset({date(2026, 10, 10)})}, "extra_days"),
        ({"days": {6: ((time(9), time(18)),)}, "extra_days": frozenset({date(2026, 10, 10)})}, "extra_days"),
    ],
)
def test_working_hours_errors_name_the_field(kwargs, field):
    with pytest.raises(WorkTimeError, match=rf"^{field}\b"):
        WorkingHours(**kwargs)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"timezone": "Asia/Shanghai", "weekends": []}, "weekends"),
        ({"days": {"mon": ["9-12"]}}, "days.mon"),
        ({"days": {"fri": ["09:00-25:00"]}}, "days.fri"),
        ({"days": {"sat": "09:00-18:00"}}, "days.sat"),
        ({"days": {"funday": []}}, "funday"),
        ({"days": {"sun": ["18:00-09:00"]}}, "days.sun"),
        ({"holidays": ["2026-13-01"]}, "holidays"),
        ({"extra_days": "2026-10-10"}, "extra_days"),
    ],
)
def test_working_hours_mapping_errors_name_the_key(data, field):
    with pytest.raises(WorkTimeError, match=field):
        WorkingHours.from_mapping(data)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"H": "soon"}, "H"),
        ({"A": 15}, "A"),
        ({"B": "0m"}, "B"),
        ({"Z": "1h"}, "Z"),
        ({"working_time": "yes"}, "working_time"),
    ],
)
def test_sla_mapping_errors_name_the_key(data, field):
    with pytest.raises(WorkTimeError, match=field):
        SlaPolicy.from_mapping(data)


def test_other_errors_name_their_field():
    with pytest.raises(WorkTimeError, match="^duration"):
        add_working(sh(2026, 5, 6, 10), timedelta(minutes=-1), DEFAULT)
    with pytest.raises(WorkTimeError, match="^grade"):
        SlaPolicy().deadline("O", sh(2026, 5, 6, 10), DEFAULT)
    with pytest.raises(WorkTimeError, match=r"^first_response\.H"):
        SlaPolicy(first_response={"H": timedelta(0)})
    with pytest.raises(WorkTimeError, match="^working_time"):
        SlaPolicy(working_time=1)  # type: ignore[arg-type]
