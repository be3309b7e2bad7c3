"""Clock arithmetic in the policy's time zone: which named windows are open now, and when the current shift began."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from policy.document import TimeWindow

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Shifts assumed when a policy declares no budget: the common 07:00 / 19:00 twelve-hour pattern.
DEFAULT_SHIFTS = (time(7, 0), time(19, 0))


def _recurring_end(window: TimeWindow, local: datetime) -> datetime | None:
    """The end of the occurrence of `window` that contains `local`, or None when it is closed."""
    assert window.start is not None and window.end is not None
    # An occurrence may have started today or, for a window across midnight, yesterday.
    for back in (0, 1):
        day = (local - timedelta(days=back)).date()
        if window.days is not None and _DAYS[day.weekday()] not in window.days:
            continue
        start = datetime.combine(day, window.start, tzinfo=local.tzinfo)
        end_day = day if window.end > window.start else day + timedelta(days=1)
        end = datetime.combine(end_day, window.end, tzinfo=local.tzinfo)
        if start <= local < end:
            return end
    return None


def open_windows(
    windows: Mapping[str, TimeWindow], zone: ZoneInfo, now: datetime, external: frozenset[str]
) -> dict[str, datetime]:
    """Open windows by name, each with the time it closes (an external one is re-checked after its `hold`)."""
    local = now.astimezone(zone)
    found: dict[str, datetime] = {}
    for name, window in windows.items():
        if window.external:
            if name in external:
                found[name] = now + window.hold
            continue
        end = _recurring_end(window, local)
        if end is not None:
            found[name] = end.astimezone(now.tzinfo)
    return found


def shift_start(shifts: Sequence[time], zone: ZoneInfo, now: datetime) -> datetime:
    """When the shift containing `now` began, shifts given as local start times."""
    local = now.astimezone(zone)
    candidates = [
        datetime.combine(local.date() - timedelta(days=back), start, tzinfo=zone) for back in (0, 1) for start in shifts
    ]
    began = max(c for c in candidates if c <= local)
    return began.astimezone(now.tzinfo)
