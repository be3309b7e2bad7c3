"""The type-checked FHIR readers: the server base of a Bundle entry, with and without the base of the entry before."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clinical.fhir_fast import server_base

BASE = "https://ehr.example.org/fhir"


@pytest.mark.parametrize(
    ("full_url", "base"),
    [
        (f"{BASE}/Observation/o1", BASE),
        (f"{BASE}/Observation/o1/_history/2", BASE),
        (f"{BASE}/Observation/o1/", BASE),
        (f"{BASE}//o1", BASE),
        ("https://ehr.example.org/Observation/o1", "https://ehr.example.org"),
        ("https://other.example/fhir/Observation/o1", "https://other.example/fhir"),
        (f"{BASE}/_history/5", None),
        ("https://h/o1", None),
        ("urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a", None),
        ("", None),
        (None, None),
        # No server at all: these once raised, and the whole prefetch with them.
        ("https://", None),
        ("https:///", None),
        ("http:///Observation/1", None),
    ],
)
def test_the_server_base_is_the_full_url_without_type_id_and_history(full_url: object, base: str | None) -> None:
    assert server_base(full_url) == base
    assert server_base(full_url, BASE) == base  # the base of the entry before changes nothing


_segments = st.sampled_from(["", "Observation", "o1", "_history", "2", "fhir", "ehr.example.org", "x"])
_full_urls = st.builds(
    lambda scheme, segments, slash: scheme + "/".join(segments) + slash,
    st.sampled_from(["https://", "http://", "urn:uuid:", ""]),
    st.lists(_segments, max_size=6),
    st.sampled_from(["", "/"]),
)


@given(before=_full_urls, full_url=_full_urls)
def test_the_base_of_the_entry_before_is_only_a_shortcut(before: str, full_url: str) -> None:
    assert server_base(full_url, server_base(before)) == server_base(full_url)
