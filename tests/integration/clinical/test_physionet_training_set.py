"""A handful of real stays from the shared PhysioNet 2019 training set A."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from clinical.physionet import iter_stays, load_table

STAYS = ("p000001", "p000009", "p000012")


@pytest.fixture(scope="module")
def table(shared_data: Path) -> pl.DataFrame:
    return load_table(shared_data / "physionet2019" / "training_setA.tar.gz", stay_ids=STAYS)


def test_the_chosen_stays_are_read_from_the_tar_gz(table: pl.DataFrame) -> None:
    assert table["stay_id"].unique().sort().to_list() == list(STAYS)
    # ICULOS rows stay in file order within each stay.
    for _, stay in table.group_by("stay_id"):
        assert stay["hour"].is_sorted()


def test_fio2_fractions_become_percentages(table: pl.DataFrame) -> None:
    fio2 = table["fio2"].drop_nulls()
    assert fio2.len() > 0 and fio2.min() > 1.0 and fio2.max() <= 100.0


def test_iter_stays_agrees_with_the_table(shared_data: Path, table: pl.DataFrame) -> None:
    stays = list(iter_stays(shared_data / "physionet2019" / "training_setA.tar.gz", stay_ids=STAYS))
    assert pl.concat([s.table for s in stays]).equals(table)


@pytest.mark.slow
def test_the_whole_training_set_has_its_published_size(shared_data: Path) -> None:
    table = load_table(shared_data / "physionet2019" / "training_setA.tar.gz")
    assert table.height == 790_215
    assert table["stay_id"].n_unique() == 20_336
    assert table.filter(table["sepsis_label"] == 1)["stay_id"].n_unique() == 1_790
