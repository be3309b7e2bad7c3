"""A tiny registry trained end to end on synthetic .psv stays, once per session, and one real PhysioNet stay."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from scoring.model.training import Candidate, TrainResult, train
from tests.unit.scoring.model.stays import write_psv_stays

TINY_CANDIDATES = (Candidate(min_samples_leaf=10, max_leaf_nodes=8), Candidate(min_samples_leaf=10, label_lead_hours=3))


@pytest.fixture(scope="session")
def tiny_stays(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("stays")
    write_psv_stays(folder, stays=45, seed=11)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tiny_stays: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    registry = tmp_path_factory.mktemp("registry")
    return train(tiny_stays, registry, seed=5, candidates=TINY_CANDIDATES, max_iter=40, threads=1, progress=False)


@pytest.fixture(scope="session")
def real_septic_stay(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first septic stay of training set A that starts after ICU hour 1, as a one-file folder."""
    folder = tmp_path_factory.mktemp("real")
    with tarfile.open(shared_data / "physionet2019" / "training_setA.tar.gz", mode="r|gz") as archive:
        for member in archive:
            handle = archive.extractfile(member) if member.isfile() and member.name.endswith(".psv") else None
            if handle is None:
                continue
            data = handle.read()
            lines = data.decode().strip().split("\n")
            if len(lines) > 30 and lines[-1].endswith("|1") and lines[1].split("|")[-2] != "1":
                (folder / Path(member.name).name).write_bytes(io.BytesIO(data).getvalue())
                return folder
    pytest.fail("no septic stay found in training set A")
