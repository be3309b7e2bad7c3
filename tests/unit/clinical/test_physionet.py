"""PhysioNet 2019 stays from hand-made .psv files: canonical columns, scaling, stay attributes, containers."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

import pytest

from clinical.physionet import iter_stays, load_table

HEADER = (
    "HR|O2Sat|Temp|SBP|MAP|DBP|Resp|EtCO2|BaseExcess|HCO3|FiO2|pH|PaCO2|SaO2|AST|BUN|Alkalinephos|Calcium|"
    "Chloride|Creatinine|Bilirubin_direct|Glucose|Lactate|Magnesium|Phosphate|Potassium|Bilirubin_total|"
    "TroponinI|Hct|Hgb|PTT|WBC|Fibrinogen|Platelets|Age|Gender|Unit1|Unit2|HospAdmTime|ICULOS|SepsisLabel"
)
NAN_LABS = "|".join(["NaN"] * 20)  # AST ... Platelets


def row(hr: str, fio2: str, gender: str, unit1: str, unit2: str, hour: int, label: int) -> str:
    vitals_and_gases = f"{hr}|97|37.2|120|80|60|18|NaN|NaN|24|{fio2}|7.4|NaN|NaN"
    return f"{vitals_and_gases}|{NAN_LABS}|65.5|{gender}|{unit1}|{unit2}|-2.5|{hour}|{label}"


def write_stays(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "p000002.psv").write_text("\n".join([HEADER, row("NaN", "NaN", "1", "0", "1", 1, 0)]) + "\n")
    (directory / "p000001.psv").write_text(
        "\n".join([HEADER, row("80", "0.4", "0", "1", "0", 1, 0), row("95", "NaN", "0", "1", "0", 2, 1)]) + "\n"
    )
    (directory / "p000003.psv").write_text("\n".join([HEADER, row("70", "0.21", "1", "NaN", "NaN", 5, 0)]))


def test_stays_become_one_table_with_canonical_columns(tmp_path: Path) -> None:
    write_stays(tmp_path / "stays")
    table = load_table(tmp_path / "stays")
    assert table["stay_id"].to_list() == ["p000001", "p000001", "p000002", "p000003"]
    assert table["hour"].to_list() == [1, 2, 1, 5]
    assert table["heart_rate"].to_list() == [80.0, 95.0, None, 70.0]
    # FiO2 is a fraction in PhysioNet and a percentage in canonical form.
    fio2 = table["fio2"].to_list()
    assert fio2[0] == pytest.approx(40.0) and fio2[3] == pytest.approx(21.0) and fio2[1:3] == [None, None]
    assert table["sex"].to_list() == ["female", "female", "male", "male"]
    assert table["unit"].to_list() == ["MICU", "MICU", "SICU", "unknown"]
    assert table["sepsis_label"].to_list() == [0, 1, 0, 0]
    assert table["age"].to_list() == [65.5] * 4 and table["hosp_adm_time"].to_list() == [-2.5] * 4


def test_zip_tar_and_directory_give_the_same_table(tmp_path: Path) -> None:
    write_stays(tmp_path / "stays")
    with zipfile.ZipFile(tmp_path / "stays.zip", "w") as archive:
        for path in sorted((tmp_path / "stays").iterdir()):
            archive.write(path, f"training/{path.name}")
    with tarfile.open(tmp_path / "stays.tar.gz", "w:gz") as archive:
        archive.add(tmp_path / "stays", arcname="training")
    expected = load_table(tmp_path / "stays")
    assert load_table(tmp_path / "stays.zip").equals(expected)
    assert load_table(tmp_path / "stays.tar.gz").equals(expected)


def test_iter_stays_yields_each_stay_in_id_order(tmp_path: Path) -> None:
    write_stays(tmp_path / "stays")
    stays = list(iter_stays(tmp_path / "stays"))
    assert [s.stay_id for s in stays] == ["p000001", "p000002", "p000003"]
    assert stays[0].table["heart_rate"].to_list() == [80.0, 95.0]
    assert stays[0].table.columns == load_table(tmp_path / "stays").columns


def test_a_folder_without_stays_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_table(tmp_path)
