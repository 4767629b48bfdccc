"""The board view: counts per month and for the period, suppressed, with derived indicators."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.reporting import ReferralCriterion
from services.reporting.domain.disclosure import Relation, suppress
from services.reporting.domain.indicators import Cells, Headcount, Heads, hidden_heads, indicators
from services.reporting.domain.metrics import (
    BY_CHARACTERISTIC,
    CROSS,
    CROSSED,
    SEXUAL,
    SEXUAL_SAFETY_BY,
    Inputs,
    Window,
    row_counts,
)
from services.reporting.domain.police import CATEGORY_CRITERIA, DEFAULT_CRITERIA

TOTAL = "total"
# Breakdowns whose dimensions add up to a published figure: secondary suppression guards them.
MARGINS: dict[str, tuple[str, str]] = {
    measure: ("incidents", "all")
    for measure in ("incidents_by_category", "incidents_by_harm", "incidents_by_perpetrator",
                    "incidents_by_location", "incidents_by_site", "medical_factors", "body_worn_camera")
} | {
    "staff_affected_by_staff_group": ("staff_affected", "all"),
    "staff_affected_by_category": ("staff_affected", "all"),
    **dict.fromkeys(SEXUAL_SAFETY_BY.values(), ("staff_affected_by_category", SEXUAL)),
    **dict.fromkeys(BY_CHARACTERISTIC.values(), ("staff_affected", "all")),
    "body_worn_camera_by_site": ("body_worn_camera", "used"),
    "police_outcomes": ("police", "outcome_known"),
    # An incident may carry several flags, so these can add up to more than their total; as
    # good as exact where each carries one (as most do), and guarded as if they were.
    "perpetrator_vulnerability": ("incidents_identified", "all"),
    "red_cards_by_vulnerability": ("sanctions", "red_card_proposed"),
    "hate_aggravation": ("hate_aggravated", "all"),
}
# Figures at an instant or over distinct people: the months do not add up to the period.
# ...and figures given for the period only: split by month, nearly every cell would be hidden.
NOT_ADDITIVE = frozenset({"sanctions_at_period_end", "repeat_perpetrators", *CROSSED.values()})


@dataclass(frozen=True)
class Disclosure:
    threshold: int = 5
    raw: bool = False  # only for the authorised operations role
    rounding: int = 1  # published counts are rounded to a multiple of this; 1 leaves them exact


@dataclass(frozen=True)
class Board:
    rows: list[str]
    cells: dict[tuple[str, str, str], int]
    samples: dict[tuple[str, str], list[float]]
    hidden: set[tuple[str, str, str]] = field(default_factory=set)


def compute(inputs: Inputs, months: Sequence[Window], total: Window, disclosure: Disclosure) -> Board:
    """Count every row, then decide which cells disclosure control hides."""
    cells: dict[tuple[str, str, str], int] = {}
    samples: dict[tuple[str, str], list[float]] = {}

    def add(label: str, counts: Mapping[tuple[str, str], int], row_samples: Mapping[str, list[float]]) -> None:
        cells.update({(label, m, d): n for (m, d), n in counts.items()})
        samples.update({(label, name): values for name, values in row_samples.items()})

    # Each incident falls in one month: where the months tile the period, its counts are theirs summed.
    summed: Counter[tuple[str, str]] | None = Counter() if _tiled(months, total) else None
    for window in months:
        counts, row_samples, counted = row_counts(inputs, window)
        summed = None if summed is None else summed + counted
        add(window.label, counts, row_samples)
    counts, row_samples, _ = row_counts(inputs, total, crossed=True, counted=summed)
    add(TOTAL, counts, row_samples)
    rows = [w.label for w in months] + [TOTAL]
    if disclosure.raw:
        return Board(rows, cells, samples)
    start, kept = set(), frozenset()
    if summed is not None and len(months) > 1:
        start, kept = _as_alone(inputs, months, disclosure), frozenset(k for k in cells if k[0] != TOTAL)
    hidden = suppress(cells, relations(cells, rows, inputs.criteria), disclosure.threshold, start, kept)
    return Board(rows, cells, samples, hidden | stocks_beside_hidden_flows(rows, hidden))


def _as_alone(inputs: Inputs, months: Sequence[Window], disclosure: Disclosure) -> set[tuple[str, str, str]]:
    """Each month's cells hidden as its own board hides them (the one its monthly event
    publishes), and the period's sums of any of them. Secondary suppression then keeps to
    other cells where it can.

    A month hidden one way alone and another way beside other months gives back what either
    hides: the cells each shows, and the margin, leave one unknown. Hidden the same way, the
    period's figures are sums of what the months show or sums holding a hidden cell, and tell
    nothing the months alone do not."""
    alone: set[tuple[str, str, str]] = set()
    crossed = set(CROSSED.values())  # given for the period only
    for window in months:
        # Its total row is what the month's event publishes.
        board = compute(inputs, [window], window, disclosure)
        alone |= {(window.label, m, d) for r, m, d in board.hidden if r == TOTAL and m not in crossed}
    sums = {(TOTAL, m, d) for _, m, d in alone if m not in NOT_ADDITIVE}
    return alone | sums


BAN_FLOWS = ("ban_imposed", "ban_expired", "rescinded")
STOCK = ("sanctions_at_period_end", "active_bans")


def stocks_beside_hidden_flows(rows: Sequence[str], hidden: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """The month-end counts of bans in force that would give a hidden count back.

    One month's stock less the month before's is that month's bans imposed less those ended:
    not a sum the suppression's relations can hold (it subtracts). So where any month's bans
    imposed, expired or rescinded are hidden, the monthly stocks go (with the endings shown,
    often 0, they give a hidden count of bans imposed back); the period's, a single month-end
    with no start beside it, stays. And where a month's stock is itself hidden (a few bans in
    force), the stock beside it and the flows between give it back: every stock goes, the
    period's too, which with the last month's flows gives the month before's."""
    months = [r for r in rows if r != TOTAL]
    if any((r, *STOCK) in hidden for r in months):
        return {(r, *STOCK) for r in rows}
    if any((r, "sanctions", k) in hidden for r in months for k in BAN_FLOWS):
        return {(r, *STOCK) for r in months}
    return set()


def _tiled(months: Sequence[Window], total: Window) -> bool:
    """Whether the months cover the period exactly, end to end, so its counts are theirs summed."""
    edges = [total.start, *(w.start for w in months[1:]), total.end]
    return bool(months) and all(w.start == a and w.end == b for w, a, b in zip(months, edges, edges[1:], strict=False))


def relations(cells: Mapping[tuple[str, str, str], int], rows: Sequence[str],
              criteria: Iterable[ReferralCriterion] = DEFAULT_CRITERIA) -> list[Relation]:
    """Every sum the output publishes: breakdowns within a row, months within the period, and
    the incidents meeting the police criteria where those are categories alone."""
    dims: dict[str, set[str]] = {}
    for _, m, d in cells:
        dims.setdefault(m, set()).add(d)
    found = [Relation(tuple((r, m, d) for d in sorted(dims[m])), (r, *MARGINS[m]))
             for r in rows for m in sorted(dims) if m in MARGINS]
    months = [r for r in rows if r != TOTAL]
    found += [Relation(tuple((r, m, d) for r in months), (TOTAL, m, d))
              for m in sorted(dims) if m not in NOT_ADDITIVE for d in sorted(dims[m])]
    found += [r for c, m in CROSSED.items() if m in dims for r in _crossed(c, m, sorted(dims[m]))]
    return found + _referral(rows, criteria)


def _referral(rows: Sequence[str], criteria: Iterable[ReferralCriterion]) -> list[Relation]:
    """With only category criteria, the incidents meeting them are those categories added up."""
    wanted = set(criteria)
    if not wanted or not wanted <= CATEGORY_CRITERIA.keys():
        return []
    categories = sorted(CATEGORY_CRITERIA[c] for c in wanted)
    return [Relation(tuple((r, "incidents_by_category", c) for c in categories), (r, "police", "meeting_criteria"))
            for r in rows]


def _crossed(characteristic: str, measure: str, dims: Sequence[str]) -> list[Relation]:
    """Each ethnic group's cells add up to its count by ethnic group, and each value of the
    other characteristic's cells to its count by that characteristic."""
    sums: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for d in dims:
        group, value = d.split(CROSS)
        sums.setdefault((BY_CHARACTERISTIC["ethnic_group"], group), []).append((TOTAL, measure, d))
        sums.setdefault((BY_CHARACTERISTIC[characteristic], value), []).append((TOTAL, measure, d))
    return [Relation(tuple(cells), (TOTAL, *margin)) for margin, cells in sums.items()]


def view(board: Board, disclosure: Disclosure, headcount: Headcount) -> dict[str, Any]:
    """The JSON body: months, totals; each with counts, breakdowns and indicators."""
    hidden = frozenset() if disclosure.raw or not headcount else hidden_heads(headcount, disclosure.threshold)
    rendered = {r: render_row(board, r, disclosure, headcount, hidden) for r in board.rows}
    return {
        "suppression": {"threshold": disclosure.threshold, "raw": disclosure.raw,
                        "rounding": 1 if disclosure.raw else disclosure.rounding,
                        "cells_suppressed": len(board.hidden)},
        "months": [{"month": r, **rendered[r]} for r in board.rows if r != TOTAL],
        "totals": rendered[TOTAL],
    }


def render_row(board: Board, row: str, disclosure: Disclosure, headcount: Headcount,
               heads_hidden: frozenset[Heads]) -> dict[str, Any]:
    cells = Cells({(m, d): n for (r, m, d), n in board.cells.items() if r == row},
                  {(m, d) for (r, m, d) in board.hidden if r == row},
                  {name: v for (r, name), v in board.samples.items() if r == row},
                  disclosure.threshold, disclosure.raw, disclosure.rounding)
    breakdowns: dict[str, dict[str, Any]] = {}
    for (m, d) in sorted(cells.counts):
        if m not in ("incidents", "incidents_by_site"):
            breakdowns.setdefault(m, {})[d] = cells.show(m, d)
    return {
        "incidents": cells.show("incidents", "all"),
        "incidents_by_site": {d: cells.show(m, d) for (m, d) in sorted(cells.counts) if m == "incidents_by_site"},
        "breakdowns": breakdowns,
        "indicators": indicators(cells, headcount, heads_hidden, crossed=row == TOTAL),
    }
