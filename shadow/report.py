"""`cdsctl report`: a replay folder as one self-contained HTML file (inline CSS and SVG, nothing fetched) and as
the tables behind it, in Parquet or CSV.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from shadow.figures import ArmMark, Interval, SweepMark, interval_svg, tradeoff_svg
from shadow.metrics import ALERT_METRICS
from shadow.sweep import Recommendation, recommend

if TYPE_CHECKING:
    from scoring.model.card import ModelCard
    from shadow.candidates import Candidate

ALL_UNITS = "all"  # the unit label of the overall rows (as `shadow.replay` writes them)
ROW_METRICS = ("normalised_utility", "auroc", "auprc")
# Alert and difference figures show these; the tables show every metric.
KEY_ALERT_METRICS = ("alerts_per_patient_day", "event_recall", "alert_precision", "lead_time_median_h")
KEY_DIFFERENCES = (*KEY_ALERT_METRICS, "normalised_utility")
SECTIONS = ("summary", "row-metrics", "alert-metrics", "differences", "sweep", "methods")
LABELS = {
    "normalised_utility": "Normalised utility",
    "auroc": "AUROC",
    "auprc": "AUPRC",
    "alerts_per_patient_day": "Alerts per patient-day",
    "share_of_stays_alerted": "Share of stays alerted",
    "alert_precision": "Alert precision",
    "event_recall": "Event recall",
    "workup_to_detection": "Workup-to-detection ratio",
    "lead_time_median_h": "Lead time, median (h)",
    "lead_time_q25_h": "Lead time, 25th percentile (h)",
    "lead_time_q75_h": "Lead time, 75th percentile (h)",
    "time_to_first_alert_median_h": "Time to first alert, median (h)",
}
TEMPLATES = Path(__file__).parent / "templates"
RUN_FACTS = ("model", "data", "bootstrap", "thresholds", "held_out_auroc", "training_source", "training_split", "bands")


class TableFormat(StrEnum):
    PARQUET = "parquet"
    CSV = "csv"


@dataclass(frozen=True, slots=True)
class ReplayTables:
    """What a report is made of: the replay's own tables plus a per-unit data summary and the run's facts."""

    summary: pl.DataFrame
    metrics: pl.DataFrame
    differences: pl.DataFrame
    sweep: pl.DataFrame | None = None
    run: dict[str, Any] = field(default_factory=dict)

    def named(self) -> dict[str, pl.DataFrame]:
        tables = {"summary": self.summary, "metrics": self.metrics, "differences": self.differences}
        return tables | ({"sweep": self.sweep} if self.sweep is not None else {})


def write_run(out: Path, facts: dict[str, Any]) -> Path:
    """run.json beside the replay tables: model, data name, arms and bootstrap draws, for the report's header."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "run.json"
    path.write_text(json.dumps(facts, indent=2, sort_keys=True))
    return path


def run_facts(card: ModelCard, data: Path, arms: Sequence[Candidate], bootstrap: int) -> dict[str, Any]:
    """What the report header and method notes say about a replay (the data set by file name only)."""
    held_out = card.metrics.get("test", {}).get("auroc")
    return {
        "model": f"{card.model_id} {card.version}",
        "data": data.name,
        "bootstrap": bootstrap,
        "thresholds": {a.name: a.threshold for a in arms},
        "held_out_auroc": held_out,
        "training_source": card.training_data.get("source"),
        "training_split": card.training_data.get("split"),
        "bands": [[b.name, b.min_score] for b in card.bands],
    }


def summarise_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """Stays, hours, patient-days and septic stays, by unit and overall, from a replay's rows table."""
    stays = rows.group_by("patient", "unit").agg(
        pl.len().alias("hours"), (pl.col("sepsis_label").max() == 1).alias("septic")
    )

    def totals(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select(
            pl.len().alias("stays"),
            pl.col("hours").sum().alias("rows"),
            (pl.col("hours").sum() / 24.0).alias("patient_days"),
            pl.col("septic").sum().alias("septic_stays"),
        ).with_columns((pl.col("septic_stays") / pl.col("stays")).alias("septic_share"))

    by_unit = [
        totals(stays.filter(unit=u)).insert_column(0, pl.lit(u).alias("unit")) for u in sorted(set(stays["unit"]))
    ]
    overall = totals(stays).insert_column(0, pl.lit(ALL_UNITS).alias("unit"))
    return pl.concat([overall, *by_unit])


def load_replay(folder: Path) -> ReplayTables:
    """The tables `cdsctl replay` (and `--sweep` / `cdsctl sweep`) wrote to `folder`."""
    missing = [n for n in ("rows", "metrics", "differences") if not (folder / f"{n}.parquet").is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}.parquet: is it a `cdsctl replay` output folder?")
    rows = pl.read_parquet(folder / "rows.parquet", columns=["patient", "unit", "sepsis_label"])
    sweep = folder / "sweep.parquet"
    run = folder / "run.json"
    return ReplayTables(
        summary=summarise_rows(rows),
        metrics=pl.read_parquet(folder / "metrics.parquet"),
        differences=pl.read_parquet(folder / "differences.parquet"),
        sweep=pl.read_parquet(sweep) if sweep.is_file() else None,
        run=json.loads(run.read_text()) if run.is_file() else {},
    )


def write_tables(tables: ReplayTables, out: Path, fmt: TableFormat = TableFormat.PARQUET) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in tables.named().items():
        path = out / f"{name}.{fmt.value}"
        if fmt is TableFormat.CSV:
            frame.write_csv(path)
        else:
            frame.write_parquet(path)
        written.append(path)
    return written


def render_report(tables: ReplayTables, generated: datetime | None = None) -> str:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined)
    env.filters["num"] = _number
    metrics = tables.metrics
    arms = list(dict.fromkeys(metrics["candidate"]))
    units = [ALL_UNITS, *sorted(set(metrics["unit"]) - {ALL_UNITS})]
    cell = {(r["candidate"], r["unit"], r["metric"]): r for r in metrics.iter_rows(named=True)}
    recommendation = _recommendation(tables.sweep)
    context = {
        "generated": (generated or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC"),
        "run": dict.fromkeys(RUN_FACTS) | {"thresholds": {}} | tables.run,
        "summary": tables.summary.to_dicts(),
        "arms": arms,
        "units": units,
        "cell": cell,
        "row_metrics": ROW_METRICS,
        "alert_metrics": ALERT_METRICS,
        "labels": LABELS,
        "differences": tables.differences.to_dicts(),
        "sweep": tables.sweep.to_dicts() if tables.sweep is not None else None,
        "recommendation": recommendation,
        "alert_figures": [_arm_figure(metric, arms, cell) for metric in KEY_ALERT_METRICS],
        "difference_figures": [_difference_figure(metric, tables.differences) for metric in KEY_DIFFERENCES],
        "tradeoff": _tradeoff_figure(tables.sweep, recommendation, arms, cell),
    }
    return env.get_template("report.html.j2").render(**context)


def write_report(
    folder: Path, out: Path, tables_dir: Path | None = None, fmt: TableFormat = TableFormat.PARQUET
) -> list[Path]:
    """Render `folder`'s replay as `out` (one HTML file), and its tables into `tables_dir` if given."""
    tables = load_replay(folder)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_report(tables), encoding="utf-8")
    return [out, *(write_tables(tables, tables_dir, fmt) if tables_dir is not None else [])]


def _number(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _recommendation(sweep: pl.DataFrame | None) -> Recommendation | None:
    if sweep is None or sweep.is_empty() or "budget" not in sweep.columns:
        return None
    budget = float(sweep["budget"][0])
    return None if math.isnan(budget) else recommend(sweep, budget)


def _arm_figure(metric: str, arms: list[str], cell: dict[tuple[str, str, str], dict[str, Any]]) -> Markup:
    items = [
        Interval(a, *(float(cell[(a, ALL_UNITS, metric)][k]) for k in ("value", "lo", "hi")))
        for a in arms
        if (a, ALL_UNITS, metric) in cell
    ]
    return Markup(interval_svg(f"arms:{metric}", f"{LABELS[metric]}, all units (95% CI)", items))  # noqa: S704  # built from escaped parts


def _difference_figure(metric: str, differences: pl.DataFrame) -> Markup:
    rows = differences.filter(metric=metric).iter_rows(named=True) if not differences.is_empty() else iter(())
    items = [Interval(r["candidate"], r["difference"], r["lo"], r["hi"]) for r in rows]
    title = f"{LABELS[metric]}: candidate minus live (95% CI)"
    return Markup(interval_svg(f"difference:{metric}", title, items, zero_line=True))  # noqa: S704  # escaped parts


def _tradeoff_figure(
    sweep: pl.DataFrame | None,
    recommendation: Recommendation | None,
    arms: list[str],
    cell: dict[tuple[str, str, str], dict[str, Any]],
) -> Markup | None:
    if sweep is None:
        return None
    chosen = recommendation.threshold if recommendation else None
    marks = [
        SweepMark(r["threshold"], r["alerts_per_patient_day"], r["event_recall"], r["threshold"] == chosen)
        for r in sweep.iter_rows(named=True)
    ]
    placed = [
        ArmMark(
            a, cell[(a, ALL_UNITS, "alerts_per_patient_day")]["value"], cell[(a, ALL_UNITS, "event_recall")]["value"]
        )
        for a in arms
        if (a, ALL_UNITS, "event_recall") in cell
    ]
    return Markup(tradeoff_svg(marks, recommendation.budget if recommendation else None, placed))  # noqa: S704
