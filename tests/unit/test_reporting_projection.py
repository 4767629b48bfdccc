"""Board aggregates: pure folds from events to counters, and the board view."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.sanctions import YellowCardIssued
from services.reporting.domain import Cell, board, fold, increments, month_of, month_range
from tests.factories import T0, incident

LONDON = ZoneInfo("Europe/London")


def yellow(level: int) -> YellowCardIssued:
    return YellowCardIssued(decision_id=uuid.uuid4(), subject_id="sub_" + "a" * 40, perpetrator_kind="patient",
                            incident_id=uuid.uuid4(), evidence_incident_ids=[], rule="r", policy_version="p",
                            organisation="RZA", site="Riverside Hospital", occurred_at=T0, decided_at=T0,
                            level=level)


def test_month_follows_london_time_at_the_boundary():
    # 23:30 UTC on 31 May is 00:30 on 1 June in London (BST).
    assert month_of(datetime(2026, 5, 31, 23, 30, tzinfo=UTC), LONDON) == date(2026, 6, 1)
    assert month_of(datetime(2026, 1, 31, 23, 30, tzinfo=UTC), LONDON) == date(2026, 1, 1)


def test_incident_counts_by_category_site_and_staff_ethnicity():
    counts = fold(increments(incident(), LONDON) + increments(incident(category="weapon"), LONDON))
    month = date(2026, 3, 1)
    assert counts[Cell(month, "RZA", "Riverside Hospital", "incidents", "all")] == 2
    assert counts[Cell(month, "RZA", "Riverside Hospital", "incidents_by_category", "weapon")] == 1
    assert counts[Cell(month, "RZA", "Riverside Hospital", "staff_affected_by_ethnic_group", "asian")] == 2


def test_reporting_cells_hold_no_subject_id():
    cells = increments(incident(), LONDON) + increments(yellow(1), LONDON)
    assert all("sub_" not in str(c) for c in cells)


def test_board_view_months_totals_and_sites():
    cells = increments(incident(), LONDON) + increments(incident(days=40, site="Northgate"), LONDON)
    cells += increments(yellow(1), LONDON) + increments(yellow(2), LONDON)
    view = board(fold(cells), month_range(date(2026, 3, 1), date(2026, 5, 1)))
    assert [m["month"] for m in view["months"]] == ["2026-03", "2026-04", "2026-05"]
    assert [m["incidents"] for m in view["months"]] == [1, 1, 0]
    assert view["totals"]["incidents"] == 2
    assert view["totals"]["incidents_by_site"] == {"Northgate": 1, "Riverside Hospital": 1}
    assert view["totals"]["breakdowns"]["sanctions"] == {"yellow_card_1": 1, "yellow_card_2": 1}


def test_month_range_crosses_years():
    assert month_range(date(2025, 11, 1), date(2026, 2, 1)) == [
        date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 200), max_size=30))
def test_fold_total_equals_number_of_incidents_in_range(days):
    cells = [c for d in days for c in increments(incident(days=d), LONDON)]
    months = month_range(date(2026, 3, 1), date(2026, 9, 1))
    assert board(fold(cells), months)["totals"]["incidents"] == len(days)


def amended(inc, **changes):
    from schemas.incidents import IncidentAmended

    body = inc.model_dump() | changes | {"revision": 2, "changed_fields": list(changes), "amended_at": T0}
    body.pop("schema_version", None)
    return IncidentAmended(**body)


def test_amendment_moves_the_incident_between_categories():
    from services.reporting.domain import changes

    inc = incident()
    _, kept = changes(inc, None, LONDON)
    deltas, kept2 = changes(amended(inc, category="weapon"), kept, LONDON)
    month = date(2026, 3, 1)
    assert deltas == {Cell(month, "RZA", "Riverside Hospital", "incidents_by_category", "verbal_abuse"): -1,
                      Cell(month, "RZA", "Riverside Hospital", "incidents_by_category", "weapon"): 1}
    assert kept2 != kept


def test_withdrawal_takes_back_everything_the_incident_counted():
    from schemas.incidents import IncidentWithdrawn
    from services.reporting.domain import changes

    inc = incident()
    added, kept = changes(inc, None, LONDON)
    removed, kept2 = changes(IncidentWithdrawn(incident_id=inc.incident_id, subject_id=inc.subject_id,
                                               reason="entered_in_error", withdrawn_at=T0), kept, LONDON)
    assert {c: -n for c, n in added.items()} == removed and kept2 == []


def test_amending_an_incident_reporting_never_saw_is_refused():
    import pytest

    from services.reporting.domain import changes

    with pytest.raises(ValueError, match="never reported"):
        changes(amended(incident(), harm="low"), None, LONDON)
