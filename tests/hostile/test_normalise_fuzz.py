"""Normalisation of arbitrary prefetch documents: whatever JSON an EHR sends, the only exception is PrefetchError."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clinical.model import ClinicalContext
from clinical.normalise import PrefetchError, normalise_prefetch
from tests.strategies import json_values, prefetch_documents

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@settings(max_examples=200, deadline=None)
@given(prefetch=prefetch_documents, validation=st.sampled_from(["fast", "strict"]))
def test_any_prefetch_document_normalises_or_is_refused_with_a_prefetch_error(
    prefetch: dict[str, Any], validation: Any
) -> None:
    try:
        context = normalise_prefetch(prefetch, validation=validation, now=NOW, salt="fuzz")
    except PrefetchError:
        return
    assert isinstance(context, ClinicalContext)


@settings(max_examples=100, deadline=None)
@given(prefetch=json_values.filter(lambda value: not isinstance(value, dict)))
def test_a_prefetch_that_is_not_a_json_object_is_refused_with_a_prefetch_error(prefetch: Any) -> None:
    with pytest.raises(PrefetchError):
        normalise_prefetch(prefetch, now=NOW, salt="fuzz")
