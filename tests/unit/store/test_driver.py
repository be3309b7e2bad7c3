"""Values bound by the hot path's raw statements, as the column types would bind them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from store.driver import driver_for

INSTANTS = [
    datetime(2026, 3, 1, 8, 30, tzinfo=UTC),
    datetime(2026, 3, 1, 8, 30, 0, 1, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
]


@pytest.mark.parametrize("at", INSTANTS, ids=str)
def test_an_instant_in_utc_binds_as_the_same_instant_in_another_zone(at: datetime) -> None:
    elsewhere = at.astimezone(timezone(timedelta(hours=-5, minutes=-30)))
    sqlite, postgres = driver_for("sqlite"), driver_for("postgresql")
    assert sqlite.instant(at) == sqlite.instant(elsewhere) == at.replace(tzinfo=None).isoformat(" ", "microseconds")
    assert postgres.instant(at) == postgres.instant(elsewhere) == at
    assert postgres.instant(at).tzinfo is UTC


def test_a_naive_instant_is_refused_on_both_backends() -> None:
    for name in ("sqlite", "postgresql"):
        with pytest.raises(ValueError, match="naive"):
            driver_for(name).instant(datetime(2026, 3, 1, 8, 30))  # noqa: DTZ001 -- the naive time under test
    assert driver_for("sqlite").instant(None) is None
