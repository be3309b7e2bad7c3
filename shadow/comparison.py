"""How a candidate's decisions on live calls differed from what the calls served: counts by action and by reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

_SCHEMA = pl.Schema(
    {
        "hook_instance": pl.String(),
        "served": pl.Boolean(),
        "action": pl.String(),
        "reasons": pl.List(pl.String),
        "live_action": pl.String(),
        "live_reasons": pl.List(pl.String),
    }
)


def compare(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The comparison report of one candidate from its recorded decisions (store: `shadow_decisions`).

    Shadow rows (never shown) are compared with the decision the call served; canary rows are what the call served,
    so they are only counted. Outputs whose candidate decision could not be paired with a live one are counted as
    unpaired and left out of the tables.
    """
    frame = pl.DataFrame([{k: r.get(k) for k in _SCHEMA} for r in rows], schema=_SCHEMA)
    shadow = frame.filter(~pl.col("served"))
    paired = shadow.filter(pl.col("live_action").is_not_null())
    by_action = (
        paired.group_by("live_action", "action")
        .len("count")
        .sort("count", "live_action", "action", descending=[True, False, False])
    )
    candidate_reasons = paired.select(pl.col("reasons").explode().alias("reason")).group_by("reason").len("candidate")
    live_reasons = paired.select(pl.col("live_reasons").explode().alias("reason")).group_by("reason").len("live")
    by_reason = (
        candidate_reasons.join(live_reasons, on="reason", how="full", coalesce=True)
        .drop_nulls("reason")
        .with_columns(pl.col("candidate").fill_null(0), pl.col("live").fill_null(0))
        .with_columns((pl.col("candidate") - pl.col("live")).alias("difference"))
        .sort("reason")
    )
    changed = paired.filter(pl.col("action") != pl.col("live_action")).height
    return {
        "calls": shadow.get_column("hook_instance").n_unique(),
        "decisions": paired.height,
        "unpaired": shadow.height - paired.height,
        "changed": changed,
        "agreement": None if paired.is_empty() else round(1 - changed / paired.height, 4),
        "canary_decisions_served": frame.height - shadow.height,
        "by_action": by_action.select("live_action", "action", "count").to_dicts(),
        "by_reason": by_reason.select("reason", "live", "candidate", "difference").to_dicts(),
    }
