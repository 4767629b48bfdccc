"""Pure arithmetic of the bench: percentiles, rates, ratios, targets and the rows of its table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100) by linear interpolation between closest ranks; None if empty."""
    if not 0 <= q <= 100:
        raise ValueError("q must be within [0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rate(count: int, seconds: float) -> float | None:
    """Items per second; None when nothing was timed."""
    return count / seconds if seconds > 0 and count > 0 else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class Target:
    """A goal printed beside a figure, never asserted: `at_least` or `at_most` `value`."""

    figure: str
    direction: str
    value: float
    label: str

    def met(self, figures: dict[str, Any]) -> bool | None:
        got = figures.get(self.figure)
        if got is None:
            return None
        return got >= self.value if self.direction == "at_least" else got <= self.value


TARGETS = (
    Target("ratio_pipeline_naive", "at_least", 20, ">= 20x naive"),
    Target("pipeline_per_s", "at_least", 10_000, ">= 10,000/s"),
    Target("latency_p99_ms", "at_most", 250, "p99 < 250 ms at 500/s"),
    Target("rebuild_1m_events_s", "at_most", 120, "1M events < 2 min"),
    Target("memory_growth_mb", "at_most", 25, "flat (second-half peak < first-half peak + 25 MB)"),
)

# (figure key, what it is, unit), in the order the table prints them.
ROWS: tuple[tuple[str, str, str], ...] = (
    ("limit_produce_per_s", "limit: raw Kafka produce", "incidents/s"),
    ("limit_consume_per_s", "limit: raw Kafka consume", "incidents/s"),
    ("limit_copy_per_s", "limit: PostgreSQL COPY", "incidents/s"),
    ("limit_per_s", "limit: slowest of the three", "incidents/s"),
    ("naive_per_s", "naive peer (1 message, 1 transaction)", "incidents/s"),
    ("pipeline_per_s", "pipeline: submitted -> sanctions and reporting applied", "incidents/s"),
    ("pipeline_seconds", "pipeline: wall time", "s"),
    ("pipeline_intake_done_seconds", "  of which until intake stored all", "s"),
    ("pipeline_reporting_done_seconds", "  until reporting applied all", "s"),
    ("pipeline_sanctions_done_seconds", "  until sanctions applied all", "s"),
    ("ratio_pipeline_limit", "pipeline / limit", "x"),
    ("ratio_pipeline_naive", "pipeline / naive", "x"),
    ("http_single_per_s", "HTTP single POST throughput", "incidents/s"),
    ("http_single_p50_ms", "HTTP single POST p50", "ms"),
    ("http_single_p99_ms", "HTTP single POST p99", "ms"),
    ("latency_rate_per_s", "latency run: achieved submit rate", "incidents/s"),
    ("latency_p50_ms", "decision latency p50", "ms"),
    ("latency_p99_ms", "decision latency p99", "ms"),
    ("rebuild_seconds", "reporting rebuild: replay", "s"),
    ("rebuild_events_per_s", "reporting rebuild", "events/s"),
    ("rebuild_1m_events_s", "reporting rebuild: 1M events (extrapolated)", "s"),
    ("memory_growth_mb", "largest rise of a service's peak RSS from the pipeline's first half to its second", "MB"),
)


def fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if unit == "x":
            return f"{value:.3g}"  # small ratios (pipeline / limit) keep their digits
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def table_rows(figures: dict[str, Any], notes: dict[str, str] | None = None) -> list[tuple[str, str, str, str]]:
    """(figure, value, unit, target and whether met) for every figure, in print order."""
    targets = {t.figure: t for t in TARGETS}
    notes = notes or {}
    rows = []
    for key, label, unit in ROWS:
        target = targets.get(key)
        goal = ""
        if target is not None:
            met = target.met(figures)
            goal = f"{target.label} ({'met' if met else 'not met' if met is not None else 'n/a'})"
        name = f"{label} [{notes[key]}]" if key in notes else label
        rows.append((name, fmt(figures.get(key), unit), unit, goal))
    return rows


def derived(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures computed from the measured ones: the limit, ratios and the 1M extrapolation."""
    limits = [figures.get(k) for k in ("limit_produce_per_s", "limit_consume_per_s", "limit_copy_per_s")]
    limit = min((v for v in limits if v), default=None)
    rebuild_rate = figures.get("rebuild_events_per_s")
    return {
        "limit_per_s": limit,
        "ratio_pipeline_limit": ratio(figures.get("pipeline_per_s"), limit),
        "ratio_pipeline_naive": ratio(figures.get("pipeline_per_s"), figures.get("naive_per_s")),
        "rebuild_1m_events_s": 1_000_000 / rebuild_rate if rebuild_rate else None,
    }
