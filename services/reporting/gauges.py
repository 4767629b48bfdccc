"""Prometheus gauges for the current month's headline figures, trust-wide, suppression applied
(those about people's characteristics left out, `NOT_LIVE`), and for body-worn camera footage
kept past its retention period.

The only label is the figure's name: never a site, a group or anything about a person.
A suppressed or undefined figure reads NaN.

The figures are a whole month's board, so they are computed on a timer, not at scrape time:
a large region's month takes seconds, and a scrape that slow outlasts Prometheus' timeout,
losing every other reporting metric with it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta

import asyncpg
from prometheus_client import Gauge

from services.reporting import footage_store
from services.reporting.domain import periods
from services.reporting.domain.board import Disclosure
from services.reporting.domain.objectives import headline, number
from services.reporting.handlers import Projection, Scope, board

CURRENT_MONTH = Gauge("vanda_reporting_current_month", "Headline board figures for the current calendar month"
                      " (suppressed or undefined figures are NaN).", ["figure"])
PUBLISHING_BACKLOG = Gauge("vanda_reporting_publishing_backlog", "Events written to reporting's topics before its"
                           " last publishing round that it had yet to apply: board months wait while above 0.")
FOOTAGE_DUE = Gauge("vanda_footage_delete_due", "Incidents whose body-worn camera footage was past its retention"
                    " period at the last midnight (UTC) with nothing resting on it, and not recorded as deleted.")
FOOTAGE_OVERDUE = Gauge("vanda_footage_oldest_delete_due_age_seconds", "How long the oldest such footage had been"
                        " due for deletion at the last midnight, in whole days (0 when none is).")
# Figures about the protected characteristics or health of the people involved, a sexual
# or hate incident, or a police outcome: each new report or outcome moves them, and a share
# times `incidents` is a count, so two scrapes of /metrics (which needs no token) around one
# report would say that the member of staff just affected is disabled, say, was off work
# over 7 days (RIDDOR), suffered sexual or racist abuse, or declined to support a
# prosecution, or that someone was charged. So do the figures about what a report led to or
# who made it (a referral and its delay, a card and its delay, a repeat perpetrator): around
# one known report they say whether it met the police criteria, earned a card, or came from
# someone reported before. They stay on the board, behind its roles, and in the monthly
# publication.
NOT_LIVE = frozenset({"police_referral_rate", "median_days_to_referral", "median_days_to_card", "repeat_perpetrators",
                      "ethnic_minority_share_of_staff_affected", "ethnicity_not_stated_share",
                      "ethnic_minority_white_gap_per_1000", "disabled_share_of_staff_affected",
                      "disabled_non_disabled_gap_per_1000", "sexual_safety_staff_affected_per_1000",
                      "medical_factors_share", "sexual_safety_share", "hate_aggravated_share",
                      "riddor_reported_on_time_share", "charge_rate", "victim_declined_rate"})
UPDATED = Gauge("vanda_reporting_current_month_updated_timestamp_seconds",
                "When the current month's headline figures were last computed (Unix time).")


async def refresh(pool: asyncpg.Pool, p: Projection, disclosure: Disclosure, now: datetime) -> None:
    """Recompute the current month's headline figures."""
    month = periods.month_of(now, p.zone)
    figures = await board(pool, Scope(periods.parse(periods.label(month))), p, disclosure, now)
    for name, value in live(headline(figures["totals"])).items():
        v = number(value)
        CURRENT_MONTH.labels(name).set(math.nan if v is None else v)
    UPDATED.set(now.timestamp())


def live(figures: dict[str, object]) -> dict[str, object]:
    """The headline figures the live gauge may carry: none about people's characteristics."""
    return {name: value for name, value in figures.items() if name not in NOT_LIVE}


async def refresh_footage(pool: asyncpg.Pool, now: datetime, retention: timedelta,
                          counted: dict[str, datetime] | None = None) -> None:
    """Recount the footage due for deletion: keeping it past its period is itself a breach.

    Counted once a day, at the first refresh after midnight (UTC), as at that midnight, in
    whole days: footage falls due at the end of its period only if nothing rests on it, and
    stops being due when something comes to (a referral, a card), so a count that moved at
    once would say, around one known incident's last day or later, whether it met the police
    criteria or earned a card (and the oldest's age would jump when it did). A day's changes
    show at midnight together, as sanctions' pending red cards do. `counted` keeps the
    midnight last counted for (the service's own, so that a restart counts again)."""
    midnight = day_start(now)
    counted = _FOOTAGE_COUNTED if counted is None else counted
    if counted.get("at") == midnight:
        return
    due, oldest = await footage_store.footage_due(pool, midnight - retention)
    FOOTAGE_DUE.set(due)
    FOOTAGE_OVERDUE.set(0 if oldest is None else days_overdue(oldest + retention, midnight) * DAY.total_seconds())
    counted["at"] = midnight


_FOOTAGE_COUNTED: dict[str, datetime] = {}


DAY = timedelta(days=1)


def day_start(now: datetime) -> datetime:
    """The midnight (UTC) that began `now`'s day."""
    return datetime.combine(now.astimezone(UTC).date(), time(), UTC)


def days_overdue(due_at: datetime, midnight: datetime) -> int:
    """Whole days from when footage fell due to the midnight it is counted at."""
    return max(0, (midnight - due_at) // DAY)



