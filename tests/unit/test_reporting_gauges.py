"""The live gauges leave out what could say who was affected, or what a known report led to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from services.reporting import gauges
from services.reporting.domain.objectives import HEADLINE
from services.reporting.gauges import live

# Written out, not taken from the code: a figure about people's characteristics added to the
# headline, or dropped from the gauge's exclusions, must fail here.
LIVE = {"incidents", "body_worn_camera_share", "active_bans_at_period_end", "incidents_per_1000_staff"}


def test_the_live_gauge_carries_exactly_the_figures_about_no_one_s_characteristics() -> None:
    assert set(live(dict.fromkeys(HEADLINE, 1.0))) == LIVE


def test_footage_due_today_joins_the_gauges_at_the_next_midnight_in_whole_days():
    """A count that moved as each incident fell due would tell, around one known incident's
    thirtieth day, whether anything rested on its footage."""
    now = datetime(2026, 3, 9, 15, 42, tzinfo=UTC)
    midnight = gauges.day_start(now)
    assert midnight == datetime(2026, 3, 9, tzinfo=UTC)
    assert gauges.day_start(datetime(2026, 3, 9, 0, 30, tzinfo=timezone(timedelta(hours=1)))) == datetime(
        2026, 3, 8, tzinfo=UTC)
    assert gauges.days_overdue(datetime(2026, 3, 9, 9, 0, tzinfo=UTC), midnight) == 0  # due today: not yet
    assert gauges.days_overdue(datetime(2026, 3, 8, 23, 0, tzinfo=UTC), midnight) == 0  # under a day
    assert gauges.days_overdue(datetime(2026, 3, 1, 23, 0, tzinfo=UTC), midnight) == 7
    assert gauges.days_overdue(datetime(2026, 3, 2, 0, 0, tzinfo=UTC), midnight) == 7


async def test_footage_is_counted_once_a_day_as_at_its_midnight(monkeypatch):
    """Between midnights the gauges keep the count made at the first refresh after one: a
    referral or a card that takes due footage off the count must not show at once either."""
    asked: list[datetime] = []
    due = {"n": 3}

    async def footage_due(pool, due_before):
        asked.append(due_before)
        return due["n"], datetime(2026, 2, 1, tzinfo=UTC)

    monkeypatch.setattr(gauges.footage_store, "footage_due", footage_due)
    counted: dict = {}
    retention = timedelta(days=30)
    await gauges.refresh_footage(None, datetime(2026, 3, 9, 0, 5, tzinfo=UTC), retention, counted)
    due["n"] = 2  # one became evidence during the day
    await gauges.refresh_footage(None, datetime(2026, 3, 9, 15, 0, tzinfo=UTC), retention, counted)
    assert asked == [datetime(2026, 2, 7, tzinfo=UTC)]
    assert gauges.FOOTAGE_DUE._value.get() == 3
    assert gauges.FOOTAGE_OVERDUE._value.get() == 6 * 86400  # due on 3 March, counted at 9 March 00:00
    await gauges.refresh_footage(None, datetime(2026, 3, 10, 0, 1, tzinfo=UTC), retention, counted)
    assert asked[-1] == datetime(2026, 2, 8, tzinfo=UTC) and gauges.FOOTAGE_DUE._value.get() == 2
