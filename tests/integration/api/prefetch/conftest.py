"""Asyncio as the loop the resolver's deadline handling is written for."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
