"""Reporting periods: calendar month, calendar quarter, NHS financial year (April to March) and its halves.

The halves serve the Violence Prevention and Reduction Standard, which asks for board
assurance twice a year.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
FINANCIAL_YEAR = re.compile(r"^FY(\d{4})-(\d{2})(?:-H([12]))?$")
PERIOD_PATTERN = r"^(\d{4}-(0[1-9]|1[0-2])|\d{4}-Q[1-4]|FY\d{4}-\d{2}(-H[12])?)$"
PERIOD_EXAMPLES = "2024-03, 2024-Q1, FY2024-25 or its halves FY2024-25-H1 (April to September) and -H2"


@dataclass(frozen=True, order=True)
class Period:
    """A run of whole calendar months, first and last inclusive, with its board label."""

    first: date
    last: date
    label: str

    @property
    def months(self) -> list[date]:
        return month_range(self.first, self.last)


def add_months(month: date, n: int) -> date:
    """The first of the month `n` months after `month` (n may be negative)."""
    total = month.year * 12 + month.month - 1 + n
    return date(total // 12, total % 12 + 1, 1)


def month_range(start: date, end: date) -> list[date]:
    """Every first-of-month from start to end inclusive."""
    months, current = [], date(start.year, start.month, 1)
    while current <= end:
        months.append(current)
        current = add_months(current, 1)
    return months


# Incidents before 2000 are refused at intake (FY1999-00 holds the first months they may fall
# in); far beyond this century is a typing slip, and past year 9999 no date exists.
FIRST_YEAR, LAST_YEAR = 1999, 2100


def parse(text: str) -> Period:
    """Read `2024-03`, `2024-Q1`, `FY2024-25` or `FY2024-25-H1`; raise ValueError otherwise."""
    if (m := MONTH.match(text) or QUARTER.match(text) or FINANCIAL_YEAR.match(text)) and not (
            FIRST_YEAR <= int(m[1]) <= LAST_YEAR):
        raise ValueError(f"period: {text!r} must fall in the years {FIRST_YEAR} to {LAST_YEAR}")
    if m := MONTH.match(text):
        first = date(int(m[1]), int(m[2]), 1)
        return Period(first, first, text)
    if m := QUARTER.match(text):
        first = date(int(m[1]), 3 * int(m[2]) - 2, 1)
        return Period(first, add_months(first, 2), text)
    if m := FINANCIAL_YEAR.match(text):
        start = int(m[1])
        if int(m[2]) != (start + 1) % 100:
            raise ValueError(f"period: {text} must name consecutive years, e.g. FY{start}-{(start + 1) % 100:02d}")
        # The NHS financial year runs from 1 April to 31 March; H1 to September, H2 from October.
        first, months = date(start, 4, 1), 12
        if m[3]:
            first, months = add_months(first, 6 * (int(m[3]) - 1)), 6
        return Period(first, add_months(first, months - 1), text)
    raise ValueError(f"period: {text!r} is not YYYY-MM, YYYY-Qn, FYyyyy-yy or FYyyyy-yy-Hn")


def span(first: date, last: date) -> Period:
    """A period from one month to another, labelled by its ends."""
    label = first.strftime("%Y-%m") if first == last else f"{first:%Y-%m} to {last:%Y-%m}"
    return Period(first, last, label)


def month_of(moment: datetime, zone: ZoneInfo) -> date:
    """First day of the calendar month, in the trust's time zone, that a moment falls in."""
    local = moment.astimezone(zone)
    return date(local.year, local.month, 1)


def start_of(month: date, zone: ZoneInfo) -> datetime:
    """The UTC instant a local calendar month begins."""
    return datetime(month.year, month.month, 1, tzinfo=zone).astimezone(UTC)


def bounds(period: Period, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a period as UTC instants, in the trust's calendar."""
    return start_of(period.first, zone), start_of(add_months(period.last, 1), zone)


def label(month: date) -> str:
    return month.strftime("%Y-%m")
