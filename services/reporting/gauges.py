"""Prometheus gauges for the current month's headline figures, trust-wide, suppression applied.

The only label is the figure's name: never a site, a group or anything about a person.
A suppressed or undefined figure reads NaN.
"""

from __future__ import annotations

import math
from datetime import datetime

import asyncpg
from prometheus_client import Gauge

from services.reporting.domain import periods
from services.reporting.domain.board import Disclosure
from services.reporting.domain.objectives import headline, number
from services.reporting.handlers import Projection, Scope, board

CURRENT_MONTH = Gauge("vanda_reporting_current_month", "Headline board figures for the current calendar month"
                      " (suppressed or undefined figures are NaN).", ["figure"])


async def refresh(pool: asyncpg.Pool | None, p: Projection, threshold: int, now: datetime) -> None:
    """Recompute the current month's headline figures at scrape time."""
    if pool is None:
        return
    month = periods.month_of(now, p.zone)
    figures = await board(pool, Scope(periods.parse(periods.label(month))), p, Disclosure(threshold))
    for name, value in headline(figures["totals"]).items():
        v = number(value)
        CURRENT_MONTH.labels(name).set(math.nan if v is None else v)
