"""The feedback report as a self-contained HTML page (tables, and inline SVG bars where a picture reads faster) and
as one long CSV table."""

from __future__ import annotations

import csv
import io
from html import escape
from typing import Any

import polars as pl

from feedback.report import FeedbackReport

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2rem;color:#222;max-width:70rem}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:.2rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}caption{text-align:left;font-weight:600;padding:.3rem 0}
.bar{fill:#c0392b}.axis{font-size:10px;fill:#555}
"""
_PERCENT = ("override_rate", "acceptance_rate", "share")


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "–"
    if name in _PERCENT and isinstance(value, float):
        return f"{value:.1%}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _table(frame: pl.DataFrame, caption: str) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(c, v))}</td>" for c, v in row.items()) + "</tr>"
        for row in frame.iter_rows(named=True)
    )
    return f"<table><caption>{escape(caption)}</caption><tr>{head}</tr>{rows}</table>"


def _bars(frame: pl.DataFrame, caption: str) -> str:
    """Override rate per group as a bar chart (inline SVG: the page stays one file with no scripts)."""
    width, height, pad = 640, 160, 24
    rows = frame.iter_rows(named=True)
    values = [(str(r["group"]), float(r["override_rate"] or 0.0), int(r["responses"])) for r in rows]
    if not values:
        return ""
    step = (width - pad) / len(values)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 2 * pad}" role="img">']
    parts.append(f"<title>{escape(caption)}</title>")
    for i, (group, rate, count) in enumerate(values):
        x, h = pad + i * step, rate * height
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{pad + height - h:.1f}" width="{step * 0.8:.1f}" height="{h:.1f}">'
            f"<title>{escape(group)}: {rate:.1%} of {count}</title></rect>"
            f'<text class="axis" x="{x:.1f}" y="{pad + height + 14}">{escape(group)}</text>'
        )
    parts.append(f'<text class="axis" x="0" y="{pad - 8}">100%</text>')
    parts.append(f'<text class="axis" x="0" y="{pad + height}">0%</text></svg>')
    return f"<figure>{''.join(parts)}<figcaption>{escape(caption)}</figcaption></figure>"


def _every_hour(frame: pl.DataFrame) -> pl.DataFrame:
    """All 24 hours on the axis, so a quiet hour shows as a gap rather than disappearing."""
    hours = pl.DataFrame({"group": [str(h) for h in range(24)]})
    return hours.join(frame, on="group", how="left").with_columns(pl.col("responses").fill_null(0))


def render_html(report: FeedbackReport) -> str:
    window = f"{report.since or 'the beginning'} – {report.until or 'now'}"
    summary = pl.DataFrame({"measure": list(report.summary), "value": [_cell(k, v) for k, v in report.summary.items()]})
    sections = [
        _table(summary, "Summary"),
        _bars(_every_hour(report.rates["hour"]), "Override rate by hour of day (UTC) of the response"),
        _bars(report.rates["scorer"], "Override rate by scorer"),
        *(_table(report.rates[name], f"Responses by {name}") for name in report.rates),
        _table(report.reasons, "Override and dismissal reasons"),
        _table(report.first_response, "Time to first response (minutes from the card being shown)"),
        _table(report.repeats, "Cards shown most often to the same patient (pseudonymous)"),
        _table(report.unknown_cards, "Responses about cards this service never sent (kept apart)"),
    ]
    notes = (
        "<p>Override rate: overridden and dismissed responses over all responses in the group; acceptance rate: "
        "accepted, acknowledged and escalated. Deferrals and 'already addressed' count in the denominator only. "
        "Responses about cards we never sent are counted apart and left out of every rate.</p>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Feedback report</title>'
        f"<style>{_CSS}</style></head><body><h1>Feedback report</h1><p>{escape(window)}</p>{notes}"
        f"{''.join(sections)}</body></html>"
    )


def render_csv(report: FeedbackReport) -> str:
    """Every figure as `section,group,measure,value`, one per line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["section", "group", "measure", "value"])
    for measure, value in report.summary.items():
        writer.writerow(["summary", "", measure, "" if value is None else value])
    tables = {
        **{f"by_{name}": frame for name, frame in report.rates.items()},
        "reasons": report.reasons,
        "first_response": report.first_response,
        "repeats": report.repeats,
        "unknown_cards": report.unknown_cards,
    }
    for section, frame in tables.items():
        key, *measures = frame.columns
        for row in frame.iter_rows(named=True):
            for measure in measures:
                value = row[measure]
                writer.writerow([section, row[key], measure, "" if value is None else value])
    return out.getvalue()
