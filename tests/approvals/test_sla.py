"""Tests for approvals.sla.calendar: fixed cases, DST edges, invalid input, and properties."""

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from approvals.sla.calendar import (
    MAX_SLA_HOURS,
    WorkingCalendar,
    business_hours_between,
    compute_due_at,
    is_working_time,
)

NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"
ONE_US = timedelta(microseconds=1)
ONE_US_IN_HOURS = Decimal(1) / Decimal(3_600_000_000)
ALL_DAYS = frozenset(range(7))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args: int) -> datetime:
    """An unambiguous local wall time (tests give UTC instead wherever DST makes it ambiguous)."""
    return datetime(*args, tzinfo=ZoneInfo(zone))


def due(start: datetime, hours, calendar: WorkingCalendar | None = None) -> datetime:
    return compute_due_at(start, hours, business_hours_only=True, calendar=calendar)


# --- Default calendar (Mon-Fri 09:00-17:00 UTC). 2026-03-02 is a Monday. --------------------


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        pytest.param(utc(2026, 3, 6, 16), 2, utc(2026, 3, 9, 10), id="friday-16h-plus-2"),
        pytest.param(utc(2026, 3, 7, 12), 3, utc(2026, 3, 9, 12), id="saturday-start"),
        pytest.param(utc(2026, 3, 8, 23, 59), 1, utc(2026, 3, 9, 10), id="sunday-night-start"),
        pytest.param(utc(2026, 3, 2, 7, 30), 1, utc(2026, 3, 2, 10), id="before-opening"),
        pytest.param(utc(2026, 3, 2, 18), 1, utc(2026, 3, 3, 10), id="after-closing"),
        pytest.param(utc(2026, 3, 2, 17), 1, utc(2026, 3, 3, 10), id="exactly-at-closing"),
        pytest.param(utc(2026, 3, 2, 9), 8, utc(2026, 3, 2, 17), id="lands-on-closing"),
        pytest.param(utc(2026, 3, 2, 13), 4, utc(2026, 3, 2, 17), id="lands-on-closing-mid"),
        pytest.param(utc(2026, 3, 2, 9), 40, utc(2026, 3, 6, 17), id="whole-week"),
        pytest.param(utc(2026, 3, 2, 9), 41, utc(2026, 3, 9, 10), id="week-and-an-hour"),
        pytest.param(utc(2026, 3, 2, 16, 59), 1, utc(2026, 3, 3, 9, 59), id="minute-before-close"),
    ],
)
def test_default_calendar(start, hours, expected):
    assert due(start, hours) == expected


def test_result_is_utc_whatever_the_start_zone():
    start = local("Asia/Tokyo", 2026, 3, 7, 1)  # Friday 16:00 UTC
    result = due(start, 2)
    assert result == utc(2026, 3, 9, 10)
    assert result.tzinfo is UTC


@pytest.mark.parametrize(
    ("hours", "expected"),
    [
        (Decimal("1.5"), utc(2026, 3, 2, 10, 30)),
        (0.25, utc(2026, 3, 2, 9, 15)),
        (Decimal("0.0000005"), utc(2026, 3, 2, 9, 0, 0, 1800)),
        (Decimal(1) / Decimal(3_600_000_000), utc(2026, 3, 2, 9, 0, 0, 1)),  # ~1 microsecond
        (Decimal("8.5"), utc(2026, 3, 3, 9, 30)),
        (1 / 3, utc(2026, 3, 2, 9, 20)),
    ],
)
def test_fractional_hours(hours, expected):
    assert due(utc(2026, 3, 2, 9), hours) == expected


def test_holiday_monday_after_weekend():
    calendar = WorkingCalendar(holidays=frozenset({date(2026, 3, 9)}))
    assert due(utc(2026, 3, 6, 16), 2, calendar) == utc(2026, 3, 10, 10)


def test_consecutive_holidays():
    christmas = frozenset({date(2025, 12, 25), date(2025, 12, 26)})  # Thursday, Friday
    calendar = WorkingCalendar(holidays=christmas)
    assert due(utc(2025, 12, 24, 16), 2, calendar) == utc(2025, 12, 29, 10)
    assert business_hours_between(utc(2025, 12, 24), utc(2025, 12, 30), calendar) == 16


def test_holiday_on_a_weekend_changes_nothing():
    calendar = WorkingCalendar(holidays=frozenset({date(2026, 3, 7)}))
    assert due(utc(2026, 3, 6, 16), 2, calendar) == utc(2026, 3, 9, 10)


def test_custom_working_days_and_hours():
    # Sunday-Thursday, 08:00-12:00 in Dubai (UTC+4, no DST).
    calendar = WorkingCalendar("Asia/Dubai", frozenset({6, 0, 1, 2, 3}), time(8), time(12))
    # Thursday 11:00 local + 2 h: 1 h on Thursday, then Sunday 08:00-09:00 local.
    assert due(local("Asia/Dubai", 2026, 3, 5, 11), 2, calendar) == utc(2026, 3, 8, 5)


def test_calendar_is_ignored_for_wall_clock_slas():
    calendar = WorkingCalendar(NEW_YORK)
    assert compute_due_at(utc(2026, 3, 6, 16), 2, calendar=calendar) == utc(2026, 3, 6, 18)


def test_wall_clock_is_elapsed_time_across_dst():
    # Saturday 12:00 EST + 24 h = Sunday 13:00 EDT: the local clock moved 25 hours.
    start = local(NEW_YORK, 2026, 3, 7, 12)
    result = compute_due_at(start, 24)
    assert result == utc(2026, 3, 8, 17)
    assert result.astimezone(ZoneInfo(NEW_YORK)).hour == 13


def test_max_hours_accepted():
    start = utc(2026, 3, 2, 9)
    assert compute_due_at(start, MAX_SLA_HOURS) == start + timedelta(hours=8760)
    result = due(start, MAX_SLA_HOURS, WorkingCalendar(NEW_YORK))
    assert business_hours_between(start, result, WorkingCalendar(NEW_YORK)) == MAX_SLA_HOURS


# --- DST with the standard 09:00-17:00 window ------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "friday_16h", "monday_10h"),
    [
        pytest.param(NEW_YORK, utc(2026, 3, 6, 21), utc(2026, 3, 9, 14), id="ny-spring"),
        pytest.param(NEW_YORK, utc(2026, 10, 30, 20), utc(2026, 11, 2, 15), id="ny-fall"),
        pytest.param(BERLIN, utc(2026, 3, 27, 15), utc(2026, 3, 30, 8), id="berlin-spring"),
        pytest.param(BERLIN, utc(2026, 10, 23, 14), utc(2026, 10, 26, 9), id="berlin-fall"),
    ],
)
def test_dst_weekend_keeps_local_office_hours(zone, friday_16h, monday_10h):
    calendar = WorkingCalendar(zone)
    assert due(friday_16h, 2, calendar) == monday_10h
    assert business_hours_between(friday_16h, monday_10h, calendar) == 2
    # Monday still has 8 real hours: 1 + 8 + 1 hours end on Tuesday at 10:00 local.
    assert due(friday_16h, 10, calendar) == monday_10h + timedelta(days=1)


# --- Windows containing the 02:00 transition (every day, 00:00-06:00) -----------------------


@pytest.mark.parametrize(
    ("zone", "opening", "closing", "hours"),
    [
        pytest.param(NEW_YORK, utc(2026, 3, 8, 5), utc(2026, 3, 8, 10), 5, id="ny-spring"),
        pytest.param(NEW_YORK, utc(2026, 11, 1, 4), utc(2026, 11, 1, 11), 7, id="ny-fall"),
        pytest.param(BERLIN, utc(2026, 3, 28, 23), utc(2026, 3, 29, 4), 5, id="berlin-spring"),
        pytest.param(BERLIN, utc(2026, 10, 24, 22), utc(2026, 10, 25, 5), 7, id="berlin-fall"),
    ],
)
def test_window_containing_a_transition_counts_real_hours(zone, opening, closing, hours):
    calendar = WorkingCalendar(zone, ALL_DAYS, time(0), time(6))
    assert business_hours_between(opening - timedelta(hours=1), closing, calendar) == hours
    assert due(opening, hours, calendar) == closing
    # One more hour spills to 00:00-01:00 local of the next day.
    next_opening = due(opening, hours + 1, calendar) - timedelta(hours=1)
    assert next_opening.astimezone(ZoneInfo(zone)).time() == time(0)
    assert not is_working_time(closing, calendar)
    assert is_working_time(closing - ONE_US, calendar)


def test_working_hour_across_spring_forward_is_a_real_hour():
    calendar = WorkingCalendar(NEW_YORK, ALL_DAYS, time(0), time(6))
    # 01:00 EST + 2 real hours = 04:00 EDT (the local clock shows 3 hours later).
    assert due(utc(2026, 3, 8, 6), 2, calendar) == utc(2026, 3, 8, 8)


# --- Window bounds that do not exist or exist twice ------------------------------------------


def test_nonexistent_opening_opens_at_the_jump():
    # 02:30 does not exist on 2026-03-08 in New York: clocks jump 02:00 EST -> 03:00 EDT (07:00Z).
    calendar = WorkingCalendar(NEW_YORK, ALL_DAYS, time(2, 30), time(5))
    assert not is_working_time(utc(2026, 3, 8, 7) - ONE_US, calendar)
    assert is_working_time(utc(2026, 3, 8, 7), calendar)
    assert business_hours_between(utc(2026, 3, 8), utc(2026, 3, 9), calendar) == 2
    assert business_hours_between(utc(2026, 3, 9), utc(2026, 3, 10), calendar) == Decimal("2.5")
    assert due(utc(2026, 3, 8, 6), 1, calendar) == utc(2026, 3, 8, 8)


def test_nonexistent_closing_closes_at_the_jump():
    calendar = WorkingCalendar(NEW_YORK, ALL_DAYS, time(0), time(2, 30))
    assert due(utc(2026, 3, 8, 5), 2, calendar) == utc(2026, 3, 8, 7)
    assert due(utc(2026, 3, 8, 5), 3, calendar) == utc(2026, 3, 9, 5)


def test_window_entirely_in_the_gap_is_empty():
    calendar = WorkingCalendar(NEW_YORK, ALL_DAYS, time(2, 15), time(2, 45))
    assert business_hours_between(utc(2026, 3, 8), utc(2026, 3, 9), calendar) == 0
    assert business_hours_between(utc(2026, 3, 7), utc(2026, 3, 8), calendar) == Decimal("0.5")


def test_ambiguous_bounds_use_the_first_occurrence():
    # 2026-11-01 in New York: 01:00-02:00 happens twice (05:00-06:00Z EDT, 06:00-07:00Z EST).
    late_start = WorkingCalendar(NEW_YORK, ALL_DAYS, time(1, 30), time(3))
    assert business_hours_between(utc(2026, 11, 1), utc(2026, 11, 2), late_start) == Decimal("2.5")
    assert is_working_time(utc(2026, 11, 1, 5, 30), late_start)
    assert is_working_time(utc(2026, 11, 1, 6, 15), late_start)  # second 01:15, mid-window

    early_end = WorkingCalendar(NEW_YORK, ALL_DAYS, time(0), time(1, 30))
    assert business_hours_between(utc(2026, 11, 1), utc(2026, 11, 2), early_end) == Decimal("1.5")
    assert not is_working_time(utc(2026, 11, 1, 6, 15), early_end)  # second 01:15, after close


# --- Time zones far from UTC ------------------------------------------------------------------


def test_kiritimati_plus_14():
    calendar = WorkingCalendar("Pacific/Kiritimati")
    # Sunday 20:00Z is Monday 10:00 local; Monday 17:00 local is Monday 03:00Z.
    assert due(utc(2026, 3, 1, 20), 8, calendar) == utc(2026, 3, 2, 20)
    assert due(utc(2026, 3, 1, 12), 1, calendar) == utc(2026, 3, 1, 20)  # Monday 02:00 local
    assert not is_working_time(utc(2026, 3, 2, 10), calendar)  # Tuesday 00:00 local


def test_pago_pago_minus_11():
    calendar = WorkingCalendar("Pacific/Pago_Pago")
    friday_16h = local("Pacific/Pago_Pago", 2026, 3, 6, 16)
    assert friday_16h == utc(2026, 3, 7, 3)  # already Saturday in UTC
    assert due(friday_16h, 2, calendar) == utc(2026, 3, 9, 21)


def test_kathmandu_plus_5_45():
    calendar = WorkingCalendar("Asia/Kathmandu")
    assert due(utc(2026, 3, 2, 3, 15), Decimal("0.5"), calendar) == utc(2026, 3, 2, 3, 45)
    assert due(local("Asia/Kathmandu", 2026, 3, 6, 16), 2, calendar) == utc(2026, 3, 9, 4, 15)


def test_kolkata_and_chatham():
    assert due(utc(2026, 3, 2, 3, 30), 1, WorkingCalendar("Asia/Kolkata")) == utc(2026, 3, 2, 4, 30)
    # Chatham is UTC+13:45 in March: Monday 09:00 local is Sunday 19:15Z.
    assert due(utc(2026, 3, 1), 1, WorkingCalendar("Pacific/Chatham")) == utc(2026, 3, 1, 20, 15)


def test_skipped_local_date_has_no_working_time():
    # Samoa skipped 2011-12-30 entirely (UTC-10 -> UTC+14 at local midnight).
    calendar = WorkingCalendar("Pacific/Apia", ALL_DAYS)
    thursday_16h = local("Pacific/Apia", 2011, 12, 29, 16)
    assert due(thursday_16h, 2, calendar) == local("Pacific/Apia", 2011, 12, 31, 10)
    assert business_hours_between(thursday_16h, utc(2011, 12, 30, 20), calendar) == 2


def test_fall_back_across_midnight_keeps_the_next_dates_window():
    # Sitka moved across the date line on 1867-10-19 at 15:30 local (00:31:13Z), turning clocks
    # back to 1867-10-18 15:30. The 19th's window opened on the first pass, so instants that
    # read as the 18th again (second pass) are inside it.
    calendar = WorkingCalendar("America/Sitka", ALL_DAYS)
    second_pass = utc(1867, 10, 19, 6)
    assert second_pass.astimezone(ZoneInfo("America/Sitka")).date() == date(1867, 10, 18)
    assert is_working_time(second_pass, calendar)
    assert business_hours_between(second_pass, second_pass + timedelta(hours=3), calendar) == 3


# --- business_hours_between and is_working_time -----------------------------------------------


def test_business_hours_between_basics():
    calendar = WorkingCalendar()
    monday = utc(2026, 3, 2, 9)
    assert business_hours_between(monday, monday, calendar) == 0
    assert business_hours_between(monday, utc(2026, 3, 9, 9), calendar) == 40
    assert business_hours_between(monday, monday + timedelta(minutes=15), calendar) == Decimal(
        "0.25"
    )
    assert business_hours_between(utc(2026, 3, 7), utc(2026, 3, 8, 23), calendar) == 0


def test_business_hours_between_is_signed():
    calendar = WorkingCalendar()
    start, end = utc(2026, 3, 2, 10), utc(2026, 3, 2, 12)
    assert business_hours_between(end, start, calendar) == -2
    assert str(business_hours_between(utc(2026, 3, 8), utc(2026, 3, 7), calendar)) == "0"


def test_is_working_time_boundaries():
    calendar = WorkingCalendar()
    assert is_working_time(utc(2026, 3, 2, 9), calendar)
    assert is_working_time(utc(2026, 3, 2, 17) - ONE_US, calendar)
    assert not is_working_time(utc(2026, 3, 2, 17), calendar)
    assert not is_working_time(utc(2026, 3, 2, 9) - ONE_US, calendar)
    assert not is_working_time(utc(2026, 3, 7, 12), calendar)


# --- Invalid input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hours",
    [
        0,
        -1,
        Decimal("-0.5"),
        8761,
        Decimal("8760.000001"),
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        Decimal("sNaN"),
        Decimal("Infinity"),
        1e-12,  # positive, but under half a microsecond
    ],
)
@pytest.mark.parametrize("business_hours_only", [False, True])
def test_invalid_hours(hours, business_hours_only):
    with pytest.raises(ValueError, match="hours"):
        compute_due_at(utc(2026, 3, 2, 9), hours, business_hours_only=business_hours_only)


@pytest.mark.parametrize("hours", [True, "8", None, [8]])
def test_hours_of_the_wrong_type(hours):
    with pytest.raises(TypeError):
        compute_due_at(utc(2026, 3, 2, 9), hours)


def test_naive_datetimes_rejected():
    naive = datetime(2026, 3, 2, 9)
    calendar = WorkingCalendar()
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_due_at(naive, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_due_at(naive, 1, business_hours_only=True)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_hours_between(utc(2026, 3, 2), naive, calendar)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_working_time(naive, calendar)
    with pytest.raises(TypeError):
        compute_due_at(date(2026, 3, 2), 1)


def test_out_of_range_dates_rejected():
    with pytest.raises(ValueError, match="range"):
        compute_due_at(datetime.max.replace(tzinfo=UTC), 1)
    with pytest.raises(ValueError, match="range"):
        due(datetime.max.replace(tzinfo=UTC), 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"timezone": "Mars/Olympus_Mons"},
        {"timezone": ""},
        {"timezone": "../etc/passwd"},
        {"timezone": None},
        {"working_days": frozenset()},
        {"working_days": frozenset({7})},
        {"working_days": frozenset({-1})},
        {"working_days": frozenset({True})},
        {"working_days": frozenset({1.0})},
        {"working_days": None},
        {"day_start": time(9), "day_end": time(9)},
        {"day_start": time(22), "day_end": time(6)},  # overnight
        {"day_start": "09:00"},
        {"day_end": time(17, tzinfo=UTC)},
        {"holidays": frozenset({datetime(2026, 12, 25)})},
        {"holidays": frozenset({"2026-12-25"})},
        {"holidays": 5},
    ],
)
def test_invalid_calendar(kwargs):
    with pytest.raises(ValueError):  # noqa: PT011 - every configuration mistake is a ValueError
        WorkingCalendar(**kwargs)


def test_calendar_normalises_collections_and_stays_hashable():
    calendar = WorkingCalendar(working_days=[0, 1, 1], holidays=[date(2026, 1, 1)])
    assert calendar.working_days == frozenset({0, 1})
    assert calendar == WorkingCalendar(
        working_days=frozenset({0, 1}), holidays=frozenset({date(2026, 1, 1)})
    )
    assert hash(calendar) == hash(
        WorkingCalendar(working_days=frozenset({0, 1}), holidays=frozenset({date(2026, 1, 1)}))
    )


def test_calendar_without_working_time_in_ten_years_raises():
    first = date(2026, 1, 1)
    everything = frozenset(first + timedelta(days=n) for n in range(3700))
    calendar = WorkingCalendar(holidays=everything)
    with pytest.raises(ValueError, match="too little working time"):
        due(utc(2026, 1, 1), 1, calendar)
    # A sparse calendar that cannot fit a year of hours into ten years is rejected too.
    sparse = WorkingCalendar(working_days=frozenset({2}), day_start=time(9), day_end=time(10))
    with pytest.raises(ValueError, match="too little working time"):
        due(utc(2026, 1, 1), 1000, sparse)


# --- Properties ---------------------------------------------------------------------------------

ZONES = [
    "UTC",
    NEW_YORK,
    BERLIN,
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
    "Pacific/Apia",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "America/Santiago",  # DST shift at local midnight
    "Asia/Gaza",  # irregular, Ramadan-dependent DST
]

PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _time_of_minute(minute: int) -> time:
    return time.max if minute == 24 * 60 else time(minute // 60, minute % 60)


ANY_ZONE = st.sampled_from(ZONES)


@st.composite
def calendars(draw, zones=ANY_ZONE, earliest_start_minute=0, latest_end_minute=24 * 60):
    """Arbitrary calendars with at least an hour a week, so 200 hours fit within ten years."""
    start_minute = draw(
        st.integers(earliest_start_minute, latest_end_minute - 60).map(lambda m: m - m % 15)
    )
    end_minute = draw(st.integers(start_minute + 60, latest_end_minute))
    return WorkingCalendar(
        timezone=draw(zones),
        working_days=draw(st.frozensets(st.integers(0, 6), min_size=1)),
        day_start=_time_of_minute(start_minute),
        day_end=_time_of_minute(end_minute),
        holidays=draw(st.frozensets(st.dates(date(2019, 12, 1), date(2031, 12, 31)), max_size=20)),
    )


starts = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)
hours_values = st.one_of(
    st.decimals(min_value=Decimal("0.000001"), max_value=Decimal(200), places=6),
    st.floats(min_value=0.001, max_value=200),
    st.integers(min_value=1, max_value=200),
)


@PROPERTY_SETTINGS
@given(start=starts, hours=hours_values, calendar=calendars())
def test_business_due_date_is_in_working_time_and_inverts(start, hours, calendar):
    result = due(start, hours, calendar)
    assert result >= start
    assert result.tzinfo is UTC
    # Inside a window, or exactly at a window's close.
    assert is_working_time(result, calendar) or is_working_time(result - ONE_US, calendar)
    assert abs(business_hours_between(start, result, calendar) - Decimal(hours)) <= ONE_US_IN_HOURS


@PROPERTY_SETTINGS
@given(start=starts, a=hours_values, b=hours_values, calendar=calendars())
def test_due_date_is_monotonic_in_hours(start, a, b, calendar):
    low, high = sorted([a, b])
    assert due(start, low, calendar) <= due(start, high, calendar)
    assert compute_due_at(start, low) <= compute_due_at(start, high)


@PROPERTY_SETTINGS
@given(start=starts, hours=hours_values, zone=st.sampled_from(ZONES))
def test_wall_clock_due_date_is_start_plus_hours(start, hours, zone):
    local_start = start.astimezone(ZoneInfo(zone))
    result = compute_due_at(local_start, hours)
    assert result >= start
    assert abs(result - (start + timedelta(hours=float(hours)))) <= ONE_US


@PROPERTY_SETTINGS
@given(moment=starts, calendar=calendars())
def test_is_working_time_agrees_with_business_hours_between(moment, calendar):
    worked = business_hours_between(moment, moment + ONE_US, calendar)
    assert (worked > 0) == is_working_time(moment, calendar)


def _oracle_due(start: datetime, minutes: int, calendar: WorkingCalendar) -> datetime:
    """Brute force: walk minute by minute, counting those the local wall clock puts at work."""
    zone = calendar.zone
    moment = start
    while True:
        reading = moment.astimezone(zone)
        day = reading.date()
        if (
            day.weekday() in calendar.working_days
            and day not in calendar.holidays
            and calendar.day_start <= reading.time() < calendar.day_end
        ):
            minutes -= 1
            if minutes == 0:
                return moment + timedelta(minutes=1)
        moment += timedelta(minutes=1)


@settings(max_examples=40, deadline=None, database=None)
@given(
    start=starts.map(lambda s: s.replace(second=0, microsecond=0)),
    minutes=st.integers(1, 12 * 60),
    calendar=calendars(
        zones=st.sampled_from(["UTC", NEW_YORK, BERLIN, "Asia/Kathmandu"]),
        earliest_start_minute=5 * 60,  # no DST shift inside or at these windows' bounds
        latest_end_minute=23 * 60 + 59,  # time.max would end windows 1 us before the oracle's
    ),
)
def test_matches_brute_force_oracle(start, minutes, calendar):
    assume(len(calendar.working_days) >= 3)
    assert due(start, Decimal(minutes) / 60, calendar) == _oracle_due(start, minutes, calendar)
