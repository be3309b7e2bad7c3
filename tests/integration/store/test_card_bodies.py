"""A stored card's body is the card as rendered, whether or not the response lists the very same card objects."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from sqlalchemy import Engine, select

from store.db import make_session_factory
from store.repository import SqlUnitOfWork
from store.tables import CardRow
from tests.unit.store import builders


@pytest.mark.parametrize("shared", [True, False], ids=["response-lists-the-cards", "response-holds-copies"])
def test_a_stored_card_body_is_the_rendered_card(uow: SqlUnitOfWork, migrated_engine: Engine, shared: bool) -> None:
    call = builders.hook_call()
    card = call.results[0].card
    assert card is not None
    if not shared:
        # Same content but other objects, and a response that says something else about the card.
        other = {**copy.deepcopy(card), "summary": "as the response tells it"}
        call = dataclasses.replace(call, response={"cards": [other]})
    with uow:
        recorded = uow.repo.record_hook_call(call)
        uow.commit()
    session = make_session_factory(migrated_engine)()
    try:
        (row,) = session.scalars(select(CardRow))
    finally:
        session.close()
    assert row.body == card
    assert recorded.response == call.response
