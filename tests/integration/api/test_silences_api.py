"""The silences API on the real app: a silence created through it mutes the next matching hook call's card, and
expiring it lets the card through again; every change is audited under the informaticist's pseudonym."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.admin.service import AdminAuditKind
from api.security.staff import Role
from tests.integration.api.admin_harness import SALT, AdminApp, admin_app
from tests.staff_tokens import expected_pseudonym, staff_headers


@pytest.fixture(scope="module")
def app(module_database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdminApp]:
    with admin_app(module_database_url, tmp_path_factory.mktemp("data")) as running:
        yield running


INFORMATICIST = staff_headers(Role.INFORMATICIST, sub="informaticist-silences")


def _in(minutes: float) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def _silence(app: AdminApp, **fields: Any) -> Any:
    body = {"match": {"scorer": "news2", "band": "high"}, "ends_at": _in(60), "comment": "rapid response drill"}
    body.update(fields)
    return app.client.post("/silences", json=body, headers=INFORMATICIST)


def test_a_silence_mutes_the_next_matching_card_and_expiring_it_lets_cards_through(app: AdminApp) -> None:
    created = _silence(app)
    assert created.status_code == 201, created.text
    silence = created.json()

    muted_call, muted = app.call_hook()
    expired = app.client.post(f"/silences/{silence['silence_id']}/expire", headers=INFORMATICIST)
    shown_call, shown = app.call_hook()

    assert silence["status"] == "active"
    assert silence["author"] == expected_pseudonym(SALT, "informaticist-silences")
    assert muted["cards"] == []
    _, action, reasons, _ = app.decision_of(muted_call)
    assert (action, reasons) == ("suppress", ["silenced"])
    assert expired.status_code == 200 and expired.json()["status"] == "expired"
    assert [card["indicator"] for card in shown["cards"]] == ["critical"]
    assert app.decision_of(shown_call)[1] == "escalate"


def test_a_silence_for_another_band_leaves_the_card_alone(app: AdminApp) -> None:
    created = _silence(app, match={"scorer": "news2", "band": "low"})
    assert created.status_code == 201

    _, answer = app.call_hook()

    assert len(answer["cards"]) == 1
    app.client.post(f"/silences/{created.json()['silence_id']}/expire", headers=INFORMATICIST)


def test_a_silence_that_starts_later_is_listed_as_pending_and_mutes_nothing_yet(app: AdminApp) -> None:
    created = _silence(app, starts_at=_in(30), ends_at=_in(90))

    _, answer = app.call_hook()
    pending = app.client.get("/silences", params={"status": "pending"}, headers=INFORMATICIST).json()

    assert created.json()["status"] == "pending"
    assert len(answer["cards"]) == 1
    assert created.json()["silence_id"] in [s["silence_id"] for s in pending]
    app.client.post(f"/silences/{created.json()['silence_id']}/expire", headers=INFORMATICIST)


def test_listing_filters_by_status_and_shows_the_newest_first(app: AdminApp) -> None:
    first = _silence(app, comment="first").json()
    second = _silence(app, comment="second").json()
    app.client.post(f"/silences/{first['silence_id']}/expire", headers=INFORMATICIST)

    active = app.client.get("/silences", params={"status": "active"}, headers=INFORMATICIST).json()
    expired = app.client.get("/silences", params={"status": "expired"}, headers=INFORMATICIST).json()
    everything = app.client.get("/silences", headers=INFORMATICIST).json()

    active_ids = [s["silence_id"] for s in active]
    expired_ids = [s["silence_id"] for s in expired]
    assert second["silence_id"] in active_ids and first["silence_id"] not in active_ids
    assert first["silence_id"] in expired_ids and second["silence_id"] not in expired_ids
    assert [s["silence_id"] for s in everything][:2] == [second["silence_id"], first["silence_id"]]
    assert next(s for s in expired if s["silence_id"] == first["silence_id"])["expired_at"] is not None
    app.client.post(f"/silences/{second['silence_id']}/expire", headers=INFORMATICIST)


def test_creating_and_expiring_are_audited_under_the_informaticists_pseudonym(app: AdminApp) -> None:
    created = _silence(app, comment="audited silence").json()
    app.client.post(f"/silences/{created['silence_id']}/expire", headers=INFORMATICIST)

    subject = f"silence:{created['silence_id']}"
    made = [r for r in app.audit(AdminAuditKind.SILENCE_CREATED) if r.subject == subject]
    ended = [r for r in app.audit(AdminAuditKind.SILENCE_EXPIRED) if r.subject == subject]

    assert len(made) == 1 and len(ended) == 1
    assert made[0].actor == ended[0].actor == expected_pseudonym(SALT, "informaticist-silences")
    assert made[0].payload["comment"] == "audited silence"
    assert made[0].payload["match"]["band"]["values"] == ["high"]
    assert app.audit_chain_ok()


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"match": {}}, "match: a silence needs at least one matcher"),
        ({"ends_at": _in(-5)}, "ends_at: must be in the future"),
        ({"match": {"scorer": "news2", "colour": "red"}}, "match.colour"),
        ({"comment": "   "}, "comment: a silence needs a comment"),
    ],
    ids=["no matcher", "already over", "unknown matcher", "blank comment"],
)
def test_a_silence_that_does_not_validate_is_refused_with_400_saying_why(
    app: AdminApp, fields: dict[str, Any], problem: str
) -> None:
    response = _silence(app, **fields)

    assert response.status_code == 400
    assert problem in response.json()["error"]["message"]


def test_a_naive_end_time_is_refused(app: AdminApp) -> None:
    response = _silence(app, ends_at=(datetime.now(UTC) + timedelta(hours=1)).replace(tzinfo=None).isoformat())

    assert response.status_code == 400


def test_expiring_an_unknown_silence_is_404_and_an_ended_one_409(app: AdminApp) -> None:
    created = _silence(app).json()
    first = app.client.post(f"/silences/{created['silence_id']}/expire", headers=INFORMATICIST)
    again = app.client.post(f"/silences/{created['silence_id']}/expire", headers=INFORMATICIST)
    unknown = app.client.post("/silences/no-such-silence/expire", headers=INFORMATICIST)

    assert (first.status_code, again.status_code, unknown.status_code) == (200, 409, 404)


def test_only_informaticists_may_create_list_or_expire_silences(app: AdminApp) -> None:
    clinician = staff_headers(Role.CLINICIAN, Role.OPERATOR)
    body = {"match": {"scorer": "news2"}, "ends_at": _in(60), "comment": "not allowed"}

    statuses = [
        app.client.post("/silences", json=body, headers=clinician).status_code,
        app.client.get("/silences", headers=clinician).status_code,
        app.client.post("/silences/x/expire", headers=clinician).status_code,
        app.client.post("/silences", json=body).status_code,
        app.client.post("/silences", json=body, headers=app.ehr_headers("/silences")).status_code,
    ]

    assert statuses == [403, 403, 403, 401, 401]
    assert all(s["comment"] != "not allowed" for s in app.client.get("/silences", headers=INFORMATICIST).json())
