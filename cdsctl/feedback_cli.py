"""`cdsctl feedback report` and `cdsctl feedback advise`: what clinicians did with the cards, and the thresholds it
suggests trying in shadow mode, from the configured database."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cdsctl.settings import get_settings

if TYPE_CHECKING:
    from feedback.report import FeedbackFrames

app = typer.Typer(help="Clinicians' feedback: the report, and threshold advice for shadow mode.", no_args_is_help=True)
DB_HELP = "Database to read (default: the configured CDS_DATABASE_URL)."
TIME_HELP = "An ISO 8601 instant with its offset, e.g. 2026-11-01T00:00:00Z."


class Format(StrEnum):
    HTML = "html"
    JSON = "json"
    CSV = "csv"


def _instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise typer.BadParameter(f"{text!r} needs a UTC offset (e.g. Z or +00:00)")
    return value


def _frames(database_url: str | None, since: datetime | None, until: datetime | None) -> FeedbackFrames:
    from store.db import make_engine
    from store.feedback_store import load_feedback_frames
    from store.repository import SqlUnitOfWork

    engine = make_engine(database_url or get_settings().resolved_database_url)
    try:
        with SqlUnitOfWork(engine) as uow:
            return load_feedback_frames(uow, since=since, until=until)
    finally:
        engine.dispose()


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}", err=True)


@app.command("report")
def report_command(
    since: Annotated[str | None, typer.Option(help=f"Cards and responses from this instant. {TIME_HELP}")] = None,
    until: Annotated[str | None, typer.Option(help=f"... up to (not including) this instant. {TIME_HELP}")] = None,
    format: Annotated[Format, typer.Option("--format", help="html (a self-contained page), json or csv.")] = (
        Format.HTML
    ),
    out: Annotated[Path | None, typer.Option(help="Write here instead of standard output.")] = None,
    database_url: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
) -> None:
    """Override and acceptance rates by scorer, route, unit, role, reason and hour; time to first response; alerts
    per patient-day; the cards shown most often to one patient (pseudonymous)."""
    import orjson

    from feedback.report import build_report
    from feedback.report_render import render_csv, render_html

    start, end = _instant(since), _instant(until)
    report = build_report(_frames(database_url, start, end), since=start, until=end)
    if format is Format.HTML:
        _emit(render_html(report), out)
    elif format is Format.CSV:
        _emit(render_csv(report), out)
    else:
        _emit(orjson.dumps(report.to_dict(), option=orjson.OPT_INDENT_2).decode(), out)


@app.command("advise")
def advise_command(
    replay: Annotated[
        Path | None,
        typer.Option(help="A `cdsctl replay` output folder (its rows.parquet has scores and sepsis labels)."),
    ] = None,
    scorer: Annotated[str, typer.Option(help="The scorer whose threshold to advise on.")] = "sepsis-hgb",
    current: Annotated[float | None, typer.Option(help="The live threshold (default: the lowest score shown).")] = None,
    max_extra_missed: Annotated[
        int, typer.Option(min=0, help="Events a candidate may miss beyond the current threshold's.")
    ] = 0,
    since: Annotated[str | None, typer.Option(help=f"Feedback from this instant. {TIME_HELP}")] = None,
    until: Annotated[str | None, typer.Option(help=f"... up to this instant. {TIME_HELP}")] = None,
    out: Annotated[Path | None, typer.Option(help="Write the threshold table as CSV here.")] = None,
    database_url: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
) -> None:
    """How the override rate (live feedback) and missed events (replayed labels) move with the threshold, and a
    candidate threshold to put into shadow mode."""
    import polars as pl

    from feedback.advice import advise

    rows = pl.read_parquet(replay / "rows.parquet") if replay is not None else None
    frames = _frames(database_url, _instant(since), _instant(until))
    advice = advise(frames, scorer=scorer, replay_rows=rows, current=current, max_extra_missed=max_extra_missed)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        typer.echo(str(advice.table))
    typer.echo(advice.reason)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        advice.table.write_csv(out)
        typer.echo(f"wrote {out}", err=True)
