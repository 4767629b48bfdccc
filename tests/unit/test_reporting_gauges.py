"""The live gauge of the current month leaves out what could say who was affected."""

from __future__ import annotations

from services.reporting.domain.objectives import HEADLINE
from services.reporting.gauges import NOT_LIVE, live


def test_the_live_gauge_leaves_out_every_figure_about_people_s_characteristics() -> None:
    figures = live(dict.fromkeys(HEADLINE, 1.0))
    assert NOT_LIVE <= set(HEADLINE) and not NOT_LIVE & set(figures)
    assert {"incidents", "police_referral_rate", "sexual_safety_share", "active_bans_at_period_end"} <= set(figures)
