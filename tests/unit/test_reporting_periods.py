"""Reporting periods: months, quarters, the NHS financial year (1 April to 31 March) and its halves."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from services.reporting.domain.periods import PERIOD_PATTERN, bounds, month_of, month_range, parse

LONDON = ZoneInfo("Europe/London")


@pytest.mark.parametrize(("text", "first", "last"), [
    ("2024-03", date(2024, 3, 1), date(2024, 3, 1)),
    ("2024-Q1", date(2024, 1, 1), date(2024, 3, 1)),
    ("2024-Q4", date(2024, 10, 1), date(2024, 12, 1)),
    ("FY2024-25", date(2024, 4, 1), date(2025, 3, 1)),
    ("FY1999-00", date(1999, 4, 1), date(2000, 3, 1)),
    ("FY2024-25-H1", date(2024, 4, 1), date(2024, 9, 1)),
    ("FY2024-25-H2", date(2024, 10, 1), date(2025, 3, 1)),
])
def test_periods_cover_whole_months(text, first, last):
    period = parse(text)
    assert (period.first, period.last, period.label) == (first, last, text)


@pytest.mark.parametrize("text", ["2024-13", "2024-Q5", "FY2024-26", "2024", "fy2024-25", "FY2024-25-H3",
                                  "FY2024-26-H1", "FY2024-25-h1",
                                  "9999-12", "9999-Q4", "0000-01", "FY9999-00", "1998-12", "2101-01"])
def test_bad_periods_are_refused(text):
    with pytest.raises(ValueError, match="period: .+"):
        parse(text)


def test_financial_year_has_twelve_months_april_to_march():
    assert [m.month for m in parse("FY2024-25").months] == [4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 3]


def test_the_two_halves_make_the_financial_year():
    first, second = parse("FY2024-25-H1"), parse("FY2024-25-H2")
    assert first.months + second.months == parse("FY2024-25").months and len(first.months) == 6
    assert bounds(first, LONDON)[1] == bounds(second, LONDON)[0] == datetime(2024, 9, 30, 23, 0, tzinfo=UTC)


def test_every_period_parse_takes_matches_the_api_pattern():
    for text in ("2024-03", "2024-Q1", "FY2024-25", "FY2024-25-H1", "FY2024-25-H2"):
        assert re.match(PERIOD_PATTERN, text), text
    assert not re.match(PERIOD_PATTERN, "FY2024-25-H3")


def test_financial_year_boundary_is_midnight_on_1_april_london_time():
    start, end = bounds(parse("FY2024-25"), LONDON)
    # 1 April 2024 is in British Summer Time: the year starts at 23:00 UTC on 31 March.
    assert start == datetime(2024, 3, 31, 23, 0, tzinfo=UTC)
    assert end == datetime(2025, 3, 31, 23, 0, tzinfo=UTC)


def test_month_follows_london_time_at_the_boundary():
    assert month_of(datetime(2026, 5, 31, 23, 30, tzinfo=UTC), LONDON) == date(2026, 6, 1)
    assert month_of(datetime(2026, 1, 31, 23, 30, tzinfo=UTC), LONDON) == date(2026, 1, 1)


def test_month_range_crosses_years():
    assert month_range(date(2025, 11, 1), date(2026, 2, 1)) == [
        date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)]


@pytest.mark.parametrize("query", [
    "from=9999-12&to=9999-12", "from=0000-01&to=0000-02", "from=2025-01&to=9999-12",
    "period=9999-12", "period=9999-Q4", "period=0000-01", "period=FY9999-00",
])
def test_a_board_asked_for_beyond_the_calendar_is_refused_naming_the_field(monkeypatch, query):
    # Refused before the database is asked: the app is built but never started.
    from fastapi.testclient import TestClient

    from services.reporting.bootstrap import create_app
    from vanda.runtime.auth import sign

    monkeypatch.setenv("AUTH_JWT_SECRET", "unit-test-secret-of-at-least-32-bytes")
    client = TestClient(create_app())
    token = sign("unit-test-secret-of-at-least-32-bytes", "viewer-1", ["board_viewer"])
    answer = client.get(f"/v1/metrics/board?{query}", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert error["field"] in ("from", "to", "period") and error["reason"]
