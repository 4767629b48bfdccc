"""The board view: counts per month and for the period, suppressed, with derived indicators."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.incidents import Category
from schemas.reporting import ReferralCriterion
from services.reporting.domain.disclosure import Relation, Within, suppress
from services.reporting.domain.indicators import Cells, Headcount, Heads, hidden_heads, indicators
from services.reporting.domain.metrics import (
    BY_CHARACTERISTIC,
    CROSS,
    CROSSED,
    SEXUAL,
    SEXUAL_SAFETY_BY,
    Inputs,
    Window,
    crossed_counts,
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
    if summed is not None and len(months) > 1:
        return Board(rows, cells, samples, _beside(inputs, months, cells, rows, disclosure))
    return Board(rows, cells, samples, _hidden(cells, rows, inputs.criteria, disclosure))


def _hidden(cells: Mapping[tuple[str, str, str], int], rows: Sequence[str], criteria: Iterable[ReferralCriterion],
            disclosure: Disclosure) -> set[tuple[str, str, str]]:
    hidden = suppress(cells, relations(cells, rows, criteria), disclosure.threshold,
                      within=bounds(cells, rows, criteria))
    return hidden | stocks_beside_hidden_flows(rows, hidden)


def _beside(inputs: Inputs, months: Sequence[Window], cells: Mapping[tuple[str, str, str], int],
            rows: Sequence[str], disclosure: Disclosure) -> set[tuple[str, str, str]]:
    """The cells to hide on a board of several months: each month hides at least what its own
    board (the one its monthly event publishes) hides, and the period every sum holding one.

    A month hidden one way alone and another way beside other months gives back what either
    hides: the cells each shows, and the margin, leave one unknown. So the month's own board
    is worked out first, and its cells, its crossed ones included (the event gives them; this
    board gives only the period's), enter this board's suppression as what a reader knows:
    published where that board shows them, and kept so where another cover will do."""
    crossed = set(CROSSED.values())
    known = dict(cells)
    start: set[tuple[str, str, str]] = set()
    found = relations(cells, rows, inputs.criteria)
    for window in months:
        alone = _alone(inputs, window, cells, disclosure)
        known |= {(window.label, m, d): n for (_, m, d), n in alone.cells.items() if m in crossed}
        start |= {(window.label, m, d) for _, m, d in alone.hidden}
        found += [r for c, m in CROSSED.items() for r in _crossed(c, m, _dims(alone.cells, m), window.label)]
    for m in crossed:
        dims = {d for r, mm, d in known if mm == m}
        found += [Relation(tuple((w.label, m, d) for w in months), (TOTAL, m, d)) for d in sorted(dims)]
        known |= {(r, m, d): 0 for r in rows for d in dims if (r, m, d) not in known}
    start |= {(TOTAL, m, d) for _, m, d in start if m not in NOT_ADDITIVE or m in crossed}
    kept = frozenset(k for k in known if k[0] != TOTAL)
    hidden = suppress(known, found, disclosure.threshold, start, kept, bounds(known, rows, inputs.criteria))
    return {k for k in hidden if k in cells} | stocks_beside_hidden_flows(rows, hidden)


@dataclass(frozen=True)
class _Alone:
    """A month's own board as its event publishes it: its total row's cells, and those hidden."""

    cells: dict[tuple[str, str, str], int]
    hidden: set[tuple[str, str, str]]


def _alone(inputs: Inputs, window: Window, cells: Mapping[tuple[str, str, str], int],
           disclosure: Disclosure) -> _Alone:
    # The month's counts are made already: only its crossed ones are new.
    month = {(m, d): n for (r, m, d), n in cells.items() if r == window.label}
    crossing = crossed_counts(f for f in inputs.incidents if window.start <= f.occurred_at < window.end)
    own = {(r, m, d): n for r in (window.label, TOTAL) for (m, d), n in month.items()}
    own |= {(TOTAL, m, d): n for (m, d), n in (+crossing).items()}
    rows = [window.label, TOTAL]
    hidden = _hidden(own, rows, inputs.criteria, disclosure)
    return _Alone({k: n for k, n in own.items() if k[0] == TOTAL}, {k for k in hidden if k[0] == TOTAL})


def _dims(alone: Mapping[tuple[str, str, str], int], measure: str) -> list[str]:
    return sorted(d for _, m, d in alone if m == measure)


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


# Counts inside others, within a row: (part measure, whole measure), dimension for dimension.
PARTS_OF = {
    "body_worn_camera_by_site": "incidents_by_site",
    **{m: BY_CHARACTERISTIC.get(c, f"staff_affected_by_{c}") for c, m in SEXUAL_SAFETY_BY.items()},
}
# ...and single cells inside others: (part, whole) as (measure, dimension) each.
PART_OF = (
    (("staff_affected", "injured"), ("staff_affected", "all")),
    (("staff_affected", "over_7_day_incapacity"), ("staff_affected", "all")),
    (("incidents_identified", "all"), ("incidents", "all")),
    (("police", "referred"), ("police", "meeting_criteria")),
    (("police", "outcome_known"), ("police", "referred")),
    (("incidents_by_category", Category.HATE_INCIDENT.value), ("hate_aggravated", "all")),
    (("sexual_safety", "sexual_assault"), ("incidents_by_category", SEXUAL)),
    (("riddor_reported", "within_15_days"), ("riddor_reported", "all")),
    (("riddor_reported", "all"), ("riddor_reportable", "over_7_day_incapacity")),
)


def bounds(cells: Mapping[tuple[str, str, str], int], rows: Sequence[str],
           criteria: Iterable[ReferralCriterion] = DEFAULT_CRITERIA) -> list[Within]:
    """Every count the output publishes inside another without adding up to it: what a reader
    knows besides the sums (a part shown bounds its hidden whole from below)."""
    dims: dict[str, set[str]] = {}
    for _, m, d in cells:
        dims.setdefault(m, set()).add(d)
    found = [Within(((r, part, d),), (r, whole, d))
             for r in rows for part, whole in PARTS_OF.items() for d in sorted(dims.get(part, ()))]
    found += [Within(((r, *part),), (r, *whole)) for r in rows for part, whole in PART_OF]
    # Reportable incidents include those reported and those whose 15 days still run, apart.
    riddor = (("riddor_reported", "all"), ("riddor_pending", "within_15_days"))
    found += [Within(tuple((r, *c) for c in riddor), (r, "riddor_reportable", "over_7_day_incapacity"))
              for r in rows]
    wanted = set(criteria)
    # Incidents meeting the police criteria include every one of a category among them, and
    # every hate-aggravated one while hate aggravation is among them.
    categories = sorted(CATEGORY_CRITERIA[c] for c in wanted if c in CATEGORY_CRITERIA)
    meeting = ("police", "meeting_criteria")
    found += [Within(tuple((r, "incidents_by_category", c) for c in categories), (r, *meeting))
              for r in rows if categories]
    if ReferralCriterion.HATE_AGGRAVATION in wanted:
        found += [Within(((r, "hate_aggravated", "all"),), (r, *meeting)) for r in rows]
    return found


def _referral(rows: Sequence[str], criteria: Iterable[ReferralCriterion]) -> list[Relation]:
    """With only category criteria, the incidents meeting them are those categories added up."""
    wanted = set(criteria)
    if not wanted or not wanted <= CATEGORY_CRITERIA.keys():
        return []
    categories = sorted(CATEGORY_CRITERIA[c] for c in wanted)
    return [Relation(tuple((r, "incidents_by_category", c) for c in categories), (r, "police", "meeting_criteria"))
            for r in rows]


def _crossed(characteristic: str, measure: str, dims: Sequence[str], row: str = TOTAL) -> list[Relation]:
    """Each ethnic group's cells add up to its count by ethnic group, and each value of the
    other characteristic's cells to its count by that characteristic."""
    sums: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for d in dims:
        group, value = d.split(CROSS)
        sums.setdefault((BY_CHARACTERISTIC["ethnic_group"], group), []).append((row, measure, d))
        sums.setdefault((BY_CHARACTERISTIC[characteristic], value), []).append((row, measure, d))
    return [Relation(tuple(cells), (row, *margin)) for margin, cells in sums.items()]


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
