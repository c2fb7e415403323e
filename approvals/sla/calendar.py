"""SLA due dates for approval stages, in wall-clock hours or in a tenant's business hours.

Pure standard library (no Django, no database) so models, serializers, background jobs and
analytics can all share one definition of "due".

Semantics:

* Wall-clock SLAs are plain elapsed time: ``start + hours``.
* Business-hours SLAs count only working time. Each working day (a weekday in
  ``working_days`` that is not in ``holidays``, both judged by the *local* date) has one
  window: the real-time interval ``[open, close)`` from the local instant ``day_start`` to the
  local instant ``day_end``. Hours are measured as real elapsed time inside windows, so a
  window that contains a DST shift is shorter or longer than ``day_end - day_start``.
* A local bound is resolved to "the first instant at which the local clock reads that time or
  later". An ambiguous time (clocks fall back over it) therefore means its first occurrence,
  and a nonexistent time (clocks spring forward over it) means the instant of the jump. This
  rule is monotonic, so windows never overlap or invert, and a local date that a zone skips
  entirely (Pacific/Apia, 2011-12-30) gets an empty window.
* A due date that lands exactly on a window's close stays there (Monday 09:00 + 8 h is
  Monday 17:00), because the close is the moment the last working hour is used up.
* Hours must be in (0, 8760] and are rounded half-even to whole microseconds. A business-hours
  due date is searched for at most ``SEARCH_HORIZON_DAYS`` (about ten years) ahead; a calendar
  that cannot supply the hours by then raises ValueError instead of looping.

Inputs must be timezone-aware; all returned datetimes are timezone-aware UTC.
"""

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import ParamSpec, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# A year of wall-clock time; larger SLAs are configuration mistakes, not deadlines.
MAX_SLA_HOURS = Decimal(8760)
# How far (about ten years) a business-hours due date is searched for before the calendar is
# declared to have too little working time; this is what bounds the loop for calendars whose
# holidays swallow nearly every working day.
SEARCH_HORIZON_DAYS = 3653

_US_PER_HOUR = 3_600_000_000
_ONE_DAY = timedelta(days=1)
_ONE_US = timedelta(microseconds=1)
# Private context so results do not depend on whatever the caller's thread context is.
_DECIMAL = Context(prec=34, rounding=ROUND_HALF_EVEN)

_P = ParamSpec("_P")
_R = TypeVar("_R")


@dataclass(frozen=True)
class WorkingCalendar:
    """A tenant's working time: a weekly local window in an IANA time zone, minus holidays.

    Invalid configuration raises ValueError (whatever the cause) so callers building
    calendars from tenant settings can report every mistake the same way. ``working_days``
    and ``holidays`` accept any iterable and are stored as frozensets to keep the calendar
    hashable. ``datetime.time`` cannot express 24:00, so "until midnight" is ``time.max``, which
    ends the window a microsecond early.
    """

    timezone: str = "UTC"
    working_days: frozenset[int] = frozenset({0, 1, 2, 3, 4})  # Monday=0, as date.weekday()
    day_start: time = time(9, 0)
    day_end: time = time(17, 0)
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if not isinstance(self.timezone, str):
            raise ValueError(f"timezone must be an IANA time zone name, got {self.timezone!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {self.timezone!r}") from exc

        try:
            days = frozenset(self.working_days)
        except TypeError as exc:
            raise ValueError("working_days must be a collection of weekday numbers") from exc
        if not days:
            raise ValueError("working_days must not be empty: the calendar has no working time")
        if any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in days):
            raise ValueError(f"working_days must be integers 0 (Monday) to 6, got {set(days)}")
        object.__setattr__(self, "working_days", days)

        for name in ("day_start", "day_end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise ValueError(f"{name} must be a naive datetime.time, got {value!r}")
        if self.day_end <= self.day_start:
            raise ValueError(
                "day_end must be after day_start (windows spanning midnight are not supported)"
            )

        try:
            holidays = frozenset(self.holidays)
        except TypeError as exc:
            raise ValueError("holidays must be a collection of dates") from exc
        # datetime is a subclass of date, but a datetime would never match a local date.
        if any(not isinstance(h, date) or isinstance(h, datetime) for h in holidays):
            raise ValueError("holidays must contain datetime.date values only")
        object.__setattr__(self, "holidays", holidays)

    @property
    def zone(self) -> ZoneInfo:
        """The ZoneInfo for ``timezone`` (ZoneInfo caches instances, so this is cheap)."""
        return ZoneInfo(self.timezone)


def _range_checked(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """Report datetimes pushed past year 1 or 9999 as the invalid input they are."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return func(*args, **kwargs)
        except OverflowError as exc:
            raise ValueError("date out of the supported range (years 1 to 9999)") from exc

    return wrapper


def _naive_utc(moment: datetime, name: str) -> datetime:
    """Naive UTC equivalent of an aware datetime; naive UTC keeps the day loop cheap."""
    if not isinstance(moment, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(moment).__name__}")
    offset = moment.utcoffset()
    if offset is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment.replace(tzinfo=None) - offset


def _hours_to_delta(hours: Decimal | float | int) -> timedelta:
    """Validate an SLA length and round it to whole microseconds (half-even)."""
    if isinstance(hours, bool) or not isinstance(hours, Decimal | float | int):
        raise TypeError(f"hours must be a Decimal, float or int, got {type(hours).__name__}")
    value = Decimal(hours)  # exact for floats, so rounding happens once, below
    if not value.is_finite() or not 0 < value <= MAX_SLA_HOURS:
        raise ValueError(f"hours must be > 0 and <= {MAX_SLA_HOURS}, got {hours!r}")
    micros = int(_DECIMAL.multiply(value, _US_PER_HOUR).to_integral_value(context=_DECIMAL))
    if micros == 0:
        raise ValueError(f"hours must be at least one microsecond, got {hours!r}")
    return timedelta(microseconds=micros)


class _Schedule:
    """Per-call view of a calendar that yields each local date's window in naive UTC."""

    __slots__ = ("days", "end", "end_fold1", "holidays", "start", "start_fold1", "zone")

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.zone = calendar.zone
        self.days = calendar.working_days
        self.holidays = calendar.holidays
        # fold=1 twins let each bound be checked for a DST gap or overlap without the
        # (slow) datetime.replace in the per-day loop.
        self.start = calendar.day_start.replace(fold=0)
        self.start_fold1 = calendar.day_start.replace(fold=1)
        self.end = calendar.day_end.replace(fold=0)
        self.end_fold1 = calendar.day_end.replace(fold=1)

    def local_date(self, utc: datetime) -> date:
        return self.zone.fromutc(utc.replace(tzinfo=self.zone)).date()

    def windows(self, first: date, last: date) -> Iterator[tuple[datetime, datetime]]:
        """Working windows of local dates ``first``..``last`` in order, as naive-UTC pairs.

        This is the hot loop (about 1,500 days for an 8760-hour SLA), hence the local aliases
        and the fold=0 local bounds stepped a day at a time instead of rebuilt. Whole weeks are
        not skipped arithmetically: zoneinfo does not expose its transitions, so only checking
        every bound proves a week free of DST shifts (tzdata has shifts less than seven days
        apart that cancel out, e.g. Asia/Gaza in 2040).
        """
        days, holidays, offset, combine = (
            self.days,
            self.holidays,
            self.zone.utcoffset,
            datetime.combine,
        )
        start, start_fold1, end, end_fold1 = self.start, self.start_fold1, self.end, self.end_fold1
        day, opening_local, closing_local = first, combine(first, start), combine(first, end)
        while day <= last:
            if day.weekday() in days and day not in holidays:
                # fold=0 gives the offset in force before any shift at that local time, fold=1
                # the one after; they differ only inside a DST gap or overlap.
                before, after = offset(opening_local), offset(combine(day, start_fold1))
                opening = (
                    opening_local - before
                    if before >= after
                    else self._jump(opening_local, before, after)
                )
                before, after = offset(closing_local), offset(combine(day, end_fold1))
                closing = (
                    closing_local - before
                    if before >= after
                    else self._jump(closing_local, before, after)
                )
                yield opening, closing
            day += _ONE_DAY
            opening_local += _ONE_DAY
            closing_local += _ONE_DAY

    def _jump(self, local: datetime, before: timedelta, after: timedelta) -> datetime:
        """The naive-UTC instant the clock springs forward over the nonexistent ``local``.

        That instant lies in ``(local - after, local - before]``; bisect it to the microsecond
        (about 32 steps for a one-hour shift, and only on the rare bound that falls in a gap).
        """
        earlier, lo, hi = local - after, 0, (after - before) // _ONE_US
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._reading(earlier + timedelta(microseconds=mid)) >= local:
                hi = mid
            else:
                lo = mid
        return earlier + timedelta(microseconds=hi)

    def _reading(self, utc: datetime) -> datetime:
        """What the local wall clock shows at a naive-UTC instant."""
        return self.zone.fromutc(utc.replace(tzinfo=self.zone)).replace(tzinfo=None)


@_range_checked
def compute_due_at(
    start: datetime,
    hours: Decimal | float | int,
    *,
    business_hours_only: bool = False,
    calendar: WorkingCalendar | None = None,
) -> datetime:
    """When a stage started at ``start`` with an SLA of ``hours`` is due, in UTC.

    Without ``business_hours_only`` the calendar is ignored and the result is ``start + hours``
    of elapsed time. With it, only working time of ``calendar`` (default: Mon-Fri 09:00-17:00
    UTC) counts, and a start outside working time begins counting at the next window's
    opening. Raises ValueError for a naive ``start``, ``hours`` outside (0, 8760], or a
    calendar that cannot supply the hours within about ten years.
    """
    begin = _naive_utc(start, "start")
    remaining = _hours_to_delta(hours)
    if not business_hours_only:
        return (begin + remaining).replace(tzinfo=UTC)

    schedule = _Schedule(WorkingCalendar() if calendar is None else calendar)
    # Windows of earlier local dates all close before ``begin``: its clock already reads later.
    first = schedule.local_date(begin)
    for opening, closing in schedule.windows(first, first + timedelta(SEARCH_HORIZON_DAYS)):
        if closing > begin:
            opening = max(opening, begin)
            if remaining <= closing - opening:
                return (opening + remaining).replace(tzinfo=UTC)
            remaining -= closing - opening
    raise ValueError(
        f"calendar has too little working time for {hours} business hours "
        f"within {SEARCH_HORIZON_DAYS} days"
    )


@_range_checked
def business_hours_between(start: datetime, end: datetime, calendar: WorkingCalendar) -> Decimal:
    """Working time of ``calendar`` elapsed from ``start`` to ``end``, in hours.

    The inverse of ``compute_due_at`` (up to its microsecond rounding), for SLA analytics and
    reminder thresholds. Signed like a timedelta: negative when ``end`` is before ``start``,
    so clock skew shows up instead of being silently clamped to zero.
    """
    lo, hi = _naive_utc(start, "start"), _naive_utc(end, "end")
    if hi < lo:
        return _DECIMAL.minus(business_hours_between(end, start, calendar))
    schedule = _Schedule(calendar)
    total = timedelta(0)
    # One local date past ``hi``: a fall-back across midnight (tzdata has none over 24 hours)
    # can open that date's window before ``hi`` while the clock still reads the day before.
    first, last = schedule.local_date(lo), schedule.local_date(hi) + _ONE_DAY
    for opening, closing in schedule.windows(first, last):
        overlap = min(closing, hi) - max(opening, lo)
        if overlap > timedelta(0):
            total += overlap
    return _DECIMAL.divide(Decimal(total // _ONE_US), _US_PER_HOUR)


@_range_checked
def is_working_time(moment: datetime, calendar: WorkingCalendar) -> bool:
    """Whether ``moment`` lies inside a working window (a window's close is outside it)."""
    utc = _naive_utc(moment, "moment")
    schedule = _Schedule(calendar)
    # Earlier dates' windows have closed; the next date's can already be open after a
    # fall-back across midnight (see business_hours_between).
    today = schedule.local_date(utc)
    return any(
        opening <= utc < closing for opening, closing in schedule.windows(today, today + _ONE_DAY)
    )
