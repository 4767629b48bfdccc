"""Board objectives (EDI High Impact Action 1: SMART objectives): a target per headline figure.

Status is green when the figure meets its target, amber when it misses by no more than
the tolerance (a fraction of the target), red otherwise, and unknown when the figure is
suppressed or undefined. The trend compares the last two months that have a figure.

A count, or a rate per 1,000 staff (not annualised), grows with the length of the period, so
its target says what length it is for: a board of another length does not judge it, and a
monthly target is judged month by month instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Direction(StrEnum):
    AT_LEAST = "at_least"
    AT_MOST = "at_most"


@dataclass(frozen=True)
class Objective:
    metric: str
    target: float
    direction: Direction
    tolerance: float = 0.1
    months: int | None = None  # the length of period the target is for, where the figure grows with it


HEADLINE = ("incidents", "police_referral_rate", "charge_rate", "victim_declined_rate", "sexual_safety_share",
            "body_worn_camera_share", "riddor_reported_on_time_share", "medical_factors_share", "hate_aggravated_share", "median_days_to_referral",
            "median_days_to_card", "active_bans_at_period_end", "repeat_perpetrators",
            "ethnic_minority_share_of_staff_affected", "ethnicity_not_stated_share", "ethnic_minority_white_gap_per_1000",
            "disabled_share_of_staff_affected", "disabled_non_disabled_gap_per_1000", "incidents_per_1000_staff",
            "sexual_safety_staff_affected_per_1000")


GROWS_WITH_PERIOD = frozenset({
    "incidents", "repeat_perpetrators", "incidents_per_1000_staff", "sexual_safety_staff_affected_per_1000",
    "ethnic_minority_white_gap_per_1000", "disabled_non_disabled_gap_per_1000"})
OTHER_LENGTH = "other_length"
# Fractions of 1 (a target of 80 for 80% could never be met); the gaps may go either way.
SHARES = frozenset(m for m in HEADLINE if m.endswith(("_share", "_rate", "share_of_staff_affected")))
GAPS = frozenset(m for m in HEADLINE if "_gap_" in m)


def target_problem(metric: str, target: float) -> str | None:
    """Why a target can never be what the trust meant for this figure, or None."""
    if metric in SHARES and not 0 <= target <= 1:
        return f"{metric} is a share, from 0 to 1: {target:g} can never be met or missed as meant (80% is 0.8)"
    if metric not in SHARES | GAPS and target < 0:
        return f"{metric} is never below 0"
    return None


def headline(row: Mapping[str, Any]) -> dict[str, Any]:
    """The headline figures of one rendered board row (incidents plus selected indicators)."""
    figures = {"incidents": row["incidents"]} | {k: v for k, v in row["indicators"].items() if k in HEADLINE}
    return {k: figures.get(k) for k in HEADLINE}


def number(value: Any) -> float | None:
    """A figure as a number, or None when it is suppressed or undefined."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def status(objective: Objective, value: Any) -> str:
    """green, amber, red or unknown."""
    v = number(value)
    if v is None:
        return "unknown"
    gap = v - objective.target if objective.direction == Direction.AT_LEAST else objective.target - v
    if gap >= 0:
        return "green"
    return "amber" if -gap <= abs(objective.target) * objective.tolerance else "red"


def trend(objective: Objective, series: Sequence[Any]) -> str:
    """improving, worsening or steady towards the target; unknown with fewer than two figures."""
    known = [v for v in map(number, series) if v is not None]
    if len(known) < 2:
        return "unknown"
    change = known[-1] - known[-2]
    if change == 0:
        return "steady"
    better = change > 0 if objective.direction == Direction.AT_LEAST else change < 0
    return "improving" if better else "worsening"


def assess(objectives: Sequence[Objective], total: Mapping[str, Any],
           months: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each objective with the period's figure, its status, and the monthly series and trend.
    A target for another length of period than the board's is not judged on the period's
    figure (`other_length`); a monthly one is judged on each month (`series_status`)."""
    out = []
    for o in objectives:
        series = [m.get(o.metric) for m in months]
        judged = o.months is None or o.months == len(months)
        out.append({"metric": o.metric, "target": o.target, "direction": o.direction.value,
                    "tolerance": o.tolerance, "months": o.months, "value": total.get(o.metric),
                    "status": status(o, total.get(o.metric)) if judged else OTHER_LENGTH,
                    "trend": trend(o, series), "series": series,
                    "series_status": [status(o, v) for v in series] if o.months == 1 else None})
    return out
