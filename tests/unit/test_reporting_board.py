"""The board view: suppression applied, indicators withheld with their inputs, objectives, CSV and HTML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.reporting.domain.board import Disclosure, compute, view
from services.reporting.domain.facts import Staff
from services.reporting.domain.metrics import Inputs, Window
from services.reporting.domain.objectives import Direction, Objective, assess, status, trend
from services.reporting.entrypoints import to_csv
from services.reporting.pack import COLOURS, render
from tests.unit.test_reporting_metrics import decision, fact

JAN, FEB, MAR = (datetime(2025, m, 1, tzinfo=UTC) for m in (1, 2, 3))
MONTHS = [Window("2025-01", JAN, FEB), Window("2025-02", FEB, MAR)]
TOTAL = Window("total", JAN, MAR)
SUPPRESSED = {"suppressed": True}


def build(incidents, decisions=(), raw=False, heads=None):
    disclosure = Disclosure(5, raw)
    board = compute(Inputs(incidents, list(decisions), {}), MONTHS, TOTAL, disclosure)
    return view(board, disclosure, heads or {}) | {"period": "2025-01 to 2025-02"}


def jan(**kw):
    return fact(occurred_at=JAN + timedelta(days=3), **kw)


def feb(**kw):
    return fact(occurred_at=FEB + timedelta(days=3), **kw)


def sample():
    # January: 6 verbal abuse, 3 weapon; February: 8 verbal abuse, 7 weapon.
    return ([jan() for _ in range(6)] + [jan(category="weapon") for _ in range(3)]
            + [feb() for _ in range(8)] + [feb(category="weapon") for _ in range(7)])


def test_raw_view_shows_every_count():
    body = build(sample(), raw=True)
    assert [m["incidents"] for m in body["months"]] == [9, 15] and body["totals"]["incidents"] == 24
    assert body["totals"]["breakdowns"]["incidents_by_category"] == {"verbal_abuse": 14, "weapon": 10}


def test_small_cell_and_everything_that_would_reveal_it_are_suppressed():
    body = build(sample())
    jan_cats = body["months"][0]["breakdowns"]["incidents_by_category"]
    feb_cats = body["months"][1]["breakdowns"]["incidents_by_category"]
    # Jan weapon (3) is primary; Jan verbal (6) hides it from the January total; Feb weapon hides it
    # from the period's weapon total; Feb verbal then hides Feb weapon from February's total.
    assert jan_cats == {"verbal_abuse": SUPPRESSED, "weapon": SUPPRESSED}
    assert feb_cats == {"verbal_abuse": SUPPRESSED, "weapon": SUPPRESSED}
    assert body["totals"]["breakdowns"]["incidents_by_category"] == {"verbal_abuse": 14, "weapon": 10}
    assert [m["incidents"] for m in body["months"]] == [9, 15] and body["suppression"]["threshold"] == 5


def test_a_share_is_withheld_when_its_numerator_is():
    incidents = [jan(medical_factors=True) for _ in range(2)] + [jan() for _ in range(10)]
    body = build(incidents)
    assert body["totals"]["indicators"]["medical_factors_share"] == SUPPRESSED
    assert build(incidents, raw=True)["totals"]["indicators"]["medical_factors_share"] == round(2 / 12, 3)


def test_police_rates_on_counts_above_threshold():
    met = [jan(category="physical_assault", police_informed=True, police_outcome="charged") for _ in range(5)]
    met += [jan(category="physical_assault", police_informed=True) for _ in range(5)]
    met += [jan(category="physical_assault") for _ in range(10)]
    ind = build(met)["totals"]["indicators"]
    assert ind["police_referral_rate"] == 0.5 and ind["charge_rate"] == 0.5


def test_ethnic_gap_per_1000_staff_needs_workforce():
    white, black = Staff("ambulance", "white", False, False), Staff("ambulance", "black", False, False)
    incidents = [jan(staff=(white,)) for _ in range(10)] + [jan(staff=(black,)) for _ in range(10)]
    heads = {("ambulance", "white"): 1000, ("ambulance", "black"): 500}
    ind = build(incidents, heads=heads)["totals"]["indicators"]
    assert ind["white_staff_affected_per_1000"] == 10.0
    assert ind["ethnic_minority_staff_affected_per_1000"] == 20.0
    assert ind["ethnic_minority_white_gap_per_1000"] == 10.0
    assert ind["ethnic_minority_share_of_staff_affected"] == 0.5
    assert build(incidents)["totals"]["indicators"]["workforce_loaded"] is False


def test_median_days_to_card_needs_enough_cards():
    few = build([], [decision("yellow_card_1", JAN + timedelta(days=5)) for _ in range(3)])
    many = build([], [decision("yellow_card_1", JAN + timedelta(days=5)) for _ in range(5)])
    assert few["totals"]["indicators"]["median_days_to_card"] == SUPPRESSED
    assert many["totals"]["indicators"]["median_days_to_card"] == 2.0


def test_objective_status_and_trend():
    goal = Objective("police_referral_rate", 0.9, Direction.AT_LEAST)
    assert [status(goal, v) for v in (0.95, 0.85, 0.5, SUPPRESSED)] == ["green", "amber", "red", "unknown"]
    assert trend(goal, [0.5, None, 0.7]) == "improving" and trend(goal, [0.7, 0.6]) == "worsening"
    fewer = Objective("incidents", 10, Direction.AT_MOST)
    assert status(fewer, 12) == "red" and trend(fewer, [12, 9]) == "improving"
    [result] = assess([goal], {"police_referral_rate": 0.95}, [{"police_referral_rate": 0.8}, {}])
    assert result["status"] == "green" and result["series"] == [0.8, None]


def test_csv_has_one_line_per_cell_and_marks_suppression():
    text = to_csv(build(sample()))
    assert text.splitlines()[0] == "period,row,measure,dimension,value,suppressed"
    assert "2025-01 to 2025-02,2025-01,incidents_by_category,weapon,,true" in text
    assert "2025-01 to 2025-02,total,incidents_by_category,weapon,10,false" in text


def test_board_pack_is_self_contained_with_four_charts():
    html = render(build(sample()) | {"objectives": [], "organisation": None, "site": "<b>x</b>"})
    assert html.count("<svg class='chart'") == 4 and all(colour in html for colour in COLOURS.values())
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    assert "<b>x</b>" not in html and "suppressed" in html
