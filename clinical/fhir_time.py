"""FHIR date, dateTime and instant strings to timezone-aware UTC datetimes.

Decision (documented here once, relied on everywhere): a value without a time-zone offset, which FHIR allows for
dates and partial dates, is read as UTC. A partial date ("2013", "2013-04") means the start of that period. The
source string is always kept beside the parsed value so that the decision can be revisited.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_PARTIAL_DATE = re.compile(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")
# Sub-microsecond digits (FHIR allows any number) are cut to six, which is all a datetime can hold.
_LONG_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_fhir_datetime(text: object) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware UTC datetime, or None if it is not one."""
    if type(text) is not str:
        return None
    return parse_fhir_datetime_text(text)


# Observations of one charting round share their timestamps, so a small cache saves most parses.
@lru_cache(maxsize=4096)
def parse_fhir_datetime_text(text: str) -> datetime | None:
    """parse_fhir_datetime of a value already known to be a string (the hot path checks the type itself)."""
    if len(text) < 4 or not text[:4].isdigit():
        return None
    if len(text) <= 10:
        return _parse_partial_date(text)
    if "." in text:
        text = _LONG_FRACTION.sub(r"\1", text)
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: an offset that pushes year 1 or 9999 out of range.
        return None


def _parse_partial_date(text: str) -> datetime | None:
    if len(text) == 10 and text[4] == "-" and text[7] == "-" and text[5:7].isdigit() and text[8:].isdigit():
        try:  # the common full date, without the regular expression
            return datetime(int(text[:4]), int(text[5:7]), int(text[8:]), tzinfo=UTC)
        except ValueError:
            return None
    match = _PARTIAL_DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day = match.groups()
    try:
        return datetime(int(year), int(month or 1), int(day or 1), tzinfo=UTC)
    except ValueError:
        return None


def years_between(start: datetime, end: datetime) -> float | None:
    """Age-style difference in years (mean Gregorian year), or None if `end` is before `start`."""
    delta = end - start
    if delta < timedelta(0):
        return None
    return delta / timedelta(days=365.2425)
