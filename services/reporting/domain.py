"""Board aggregates as pure folds: each event becomes counter increments; views read them.

Only categorical facts are counted: no subject id, identifier or narrative reaches a
reporting row.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from schemas.base import EventData
from schemas.incidents import IncidentAmended, IncidentReported, IncidentWithdrawn
from schemas.sanctions import Decision, YellowCardIssued


@dataclass(frozen=True, order=True)
class Cell:
    """One counter: a measure broken down by one dimension, per month and site."""

    month: date
    organisation: str
    site: str
    measure: str
    dimension: str


def month_of(moment: datetime, zone: ZoneInfo) -> date:
    """First day of the calendar month, in the trust's time zone, that a moment falls in."""
    local = moment.astimezone(zone)
    return date(local.year, local.month, 1)


def increments(data: EventData, zone: ZoneInfo) -> list[Cell]:
    """Counter cells an event adds one to."""
    if isinstance(data, (IncidentReported, IncidentAmended)):
        return _incident_cells(data, zone)
    if isinstance(data, Decision):
        return [Cell(month_of(data.decided_at, zone), data.organisation, data.site, "sanctions", _sanction(data))]
    return []


def changes(data: EventData, previous: list[Cell] | None, zone: ZoneInfo) -> tuple[Counter[Cell], list[Cell] | None]:
    """(count deltas, cells to remember for the incident) for one event.

    An amendment replaces what the incident counted for; a withdrawal removes it, so the
    board never counts an incident entered in error.
    """
    if isinstance(data, (IncidentAmended, IncidentWithdrawn)) and previous is None:
        raise ValueError(f"incident_id: {data.incident_id} was never reported to reporting")
    new = [] if isinstance(data, IncidentWithdrawn) else increments(data, zone)
    deltas = Counter(new)
    deltas.subtract(previous or [])
    remember = new if isinstance(data, (IncidentReported, IncidentAmended, IncidentWithdrawn)) else None
    return Counter({cell: n for cell, n in deltas.items() if n}), remember


def _incident_cells(i: IncidentReported | IncidentAmended, zone: ZoneInfo) -> list[Cell]:
    facts = [
        ("incidents", "all"),
        ("incidents_by_category", i.category.value),
        ("incidents_by_harm", i.harm.value),
        ("incidents_by_location", i.location_type.value),
        ("incidents_by_perpetrator", i.perpetrator.kind.value),
        ("medical_factors", "yes" if i.perpetrator.medical_factors else "no"),
        ("body_worn_camera", "used" if i.body_worn_camera_used else "not_used"),
    ]
    facts += [("staff_affected_by_ethnic_group", s.ethnic_group.value) for s in i.staff_affected]
    facts += [("staff_affected_by_staff_group", s.staff_group.value) for s in i.staff_affected]
    facts += [("hate_aggravation", a.value) for a in i.hate_aggravation]
    month = month_of(i.occurred_at, zone)
    return [Cell(month, i.organisation, i.site, measure, dim) for measure, dim in facts]


def _sanction(d: Decision) -> str:
    if isinstance(d, YellowCardIssued):
        return f"yellow_card_{d.level}"
    # "uk.nhs.vanda.sanction.red_card_proposed.v1" -> "red_card_proposed"
    return d.event_type.split(".")[-2]


def fold(cells: list[Cell]) -> dict[Cell, int]:
    """Sum cells into counts; the database does the same with upserts."""
    counts: dict[Cell, int] = defaultdict(int)
    for cell in cells:
        counts[cell] += 1
    return dict(counts)


def board(counts: dict[Cell, int], months: list[date]) -> dict[str, Any]:
    """The board view: per month and in total, each measure by dimension, plus by site."""
    per_month = {m: _empty() for m in months}
    totals = _empty()
    for cell, n in counts.items():
        if cell.month not in per_month:
            continue
        for view in (per_month[cell.month], totals):
            view["measures"].setdefault(cell.measure, {}).setdefault(cell.dimension, 0)
            view["measures"][cell.measure][cell.dimension] += n
            if cell.measure == "incidents":
                view["incidents_by_site"][cell.site] = view["incidents_by_site"].get(cell.site, 0) + n
    return {
        "months": [{"month": m.strftime("%Y-%m"), **_finish(per_month[m])} for m in months],
        "totals": _finish(totals),
    }


def _empty() -> dict[str, Any]:
    return {"measures": {}, "incidents_by_site": {}}


def _finish(view: dict[str, Any]) -> dict[str, Any]:
    measures = view["measures"]
    return {
        "incidents": measures.get("incidents", {}).get("all", 0),
        "incidents_by_site": dict(sorted(view["incidents_by_site"].items())),
        "breakdowns": {k: dict(sorted(v.items())) for k, v in sorted(measures.items()) if k != "incidents"},
    }


def month_range(start: date, end: date) -> list[date]:
    """Every first-of-month from start to end inclusive."""
    months, current = [], start
    while current <= end:
        months.append(current)
        current = date(current.year + current.month // 12, current.month % 12 + 1, 1)
    return months
