"""Comparing two policy versions (the YAML diff and which parts changed) and listing silences from their events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from policy.document import BUNDLED_DIR
from policy.silences import SilenceStatus, create_silence, expire_silence, fold_silences
from policy.versions import diff_versions, new_version

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
TEXT = (BUNDLED_DIR / "deterioration.yaml").read_text(encoding="utf-8")


def test_a_comment_only_change_shows_in_the_text_diff_but_changes_no_part_of_the_document() -> None:
    old = new_version(TEXT, author="staff:a", comment="c", now=NOW)
    new = new_version(
        "# reviewed 2026-11\n" + TEXT.replace('"1.0.0"', '"1.0.1"'), author="staff:a", comment="c", now=NOW
    )

    diff = diff_versions(old, new)

    assert "+# reviewed 2026-11" in diff.unified
    assert diff.changed_fields == ()
    assert diff.routes_added == diff.routes_removed == diff.routes_changed == ()


def test_a_removed_route_and_a_changed_default_are_named() -> None:
    old = new_version(TEXT, author="staff:a", comment="c", now=NOW)
    start = TEXT.index("      - name: news2-high")
    end = TEXT.index("      - name: news2-medium")
    without_high = TEXT[:start] + TEXT[end:]
    new = new_version(
        without_high.replace('"1.0.0"', '"1.1.0"').replace("dedup: 4h", "dedup: 2h"),
        author="staff:a",
        comment="c",
        now=NOW,
    )

    diff = diff_versions(old, new)

    assert diff.routes_removed == ("news2/news2-high",)
    assert set(diff.changed_fields) == {"defaults", "routes"}
    assert diff.routes_added == ()


def test_silences_are_listed_with_their_early_expiry_and_status() -> None:
    made = create_silence(
        silence_id="s1",
        match={"scorer": "news2"},
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=2),
        author="staff:a",
        comment="drill",
        now=NOW,
    )
    later = create_silence(
        silence_id="s2",
        match={"band": "high"},
        starts_at=NOW + timedelta(hours=1),
        ends_at=NOW + timedelta(hours=3),
        author="staff:a",
        comment="planned",
        now=NOW,
    )
    ended = expire_silence(made.silence, NOW + timedelta(minutes=30))

    records = fold_silences([made, later, ended])
    at = NOW + timedelta(minutes=45)

    assert records["s1"].silence.ends_at == NOW + timedelta(minutes=30)
    assert records["s1"].expired_at == NOW + timedelta(minutes=30)
    assert (records["s1"].status(at), records["s2"].status(at)) == (SilenceStatus.EXPIRED, SilenceStatus.PENDING)
    assert records["s2"].status(NOW + timedelta(hours=2)) is SilenceStatus.ACTIVE
