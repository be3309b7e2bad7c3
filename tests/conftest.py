"""Fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The read-only shared data sets (never copied into the project, never fetched)."""
    path = SHARED_DIR / "data"
    if not path.is_dir():
        pytest.fail(f"shared data directory not found at {path}; tests read it from ../shared beside the repo")
    return path
