"""Replaying held incidents under the policy a trust runs and under a candidate."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.incidents import PerpetratorFacts
from services.sanctions.domain import IncidentRecord, SubjectState
from services.sanctions.handlers import incident_input
from services.sanctions.domain.simulate import Comparison, kind, replay
from tests.factories import incident
from tests.unit.sanctions_cases import POLICY, SUBJECT, feed, record

SHORT_WINDOW = POLICY.model_copy(update={"version": "short-window", "window_days": 90})
NO_SEXUAL_RED = POLICY.model_copy(update={"version": "no-sexual-red", "immediate_red_on_sexual_assault": False})
TWO_PEOPLE = POLICY.model_copy(update={"version": "two", "clinical_agreement_required": True})
NO_APPROVAL = POLICY.model_copy(update={"version": "none", "approval_required": False})


def held(*records) -> SubjectState:
    """A subject's state as sanctions holds it after the incidents arrived in this order."""
    state, _ = feed(records)
    return state


def kinds(decisions) -> list[str]:
    return [kind(d) for d in decisions]


# Incidents 100 days apart: three warnings-worth under a 12-month window, never two under 90 days.
SPACED = [record(days=d) for d in (0, 100, 200)]

CASES = [
    ("the shipped ladder", SPACED, POLICY, False, ["yellow_card_1", "yellow_card_2", "red_card_proposed"]),
    ("a 90-day window: each incident starts again, and the warnings lapse",
     SPACED, SHORT_WINDOW, False, ["yellow_card_1", "warning_lapsed", "yellow_card_1", "warning_lapsed",
                                   "yellow_card_1"]),
    ("sexual assault proposes a ban at once", [record(category="sexual_misconduct", sexual_assault=True)], POLICY,
     False, ["red_card_proposed"]),
    ("...or is a first warning without that rule", [record(category="sexual_misconduct", sexual_assault=True)],
     NO_SEXUAL_RED, False, ["yellow_card_1"]),
    ("every proposal approved: one yes", [record(category="weapon")], POLICY, True,
     ["red_card_proposed", "ban_imposed"]),
    ("every proposal approved: two yeses", [record(category="weapon")], TWO_PEOPLE, True,
     ["red_card_proposed", "red_card_endorsed", "ban_imposed"]),
    ("no approval needed: the ban starts at once", [record(category="weapon")], NO_APPROVAL, True,
     ["red_card_proposed", "ban_imposed"]),
    ("a child and a clinical cause: guards, no card", [record(age_band="under_18"), record(medical_factors=True)],
     POLICY, False, ["safeguarding_referral_requested", "clinical_review_requested"]),
    ("a withdrawn incident is left out", [record(withdrawn=True), record(days=1)], POLICY, False, ["yellow_card_1"]),
    ("an excused incident is left out", [record(excused=True), record(days=1)], POLICY, False, ["yellow_card_1"]),
]


@pytest.mark.parametrize(("what", "records", "policy", "approve", "expected"), CASES, ids=[c[0] for c in CASES])
def test_replay(what, records, policy, approve, expected):
    state = SubjectState(subject_id=SUBJECT, incidents=tuple(r.model_copy(update={"seq": n})
                                                             for n, r in enumerate(records)))
    assert kinds(replay(state, policy, approve)) == expected


def test_time_runs_on_to_the_given_day_after_the_last_incident():
    state = held(record(days=0), record(category="weapon", days=10))
    assert kinds(replay(state, POLICY, approve=True)) == ["yellow_card_1", "red_card_proposed", "ban_imposed"]
    a_year_on = state.incidents[-1].occurred_at + timedelta(days=400)
    assert kinds(replay(state, POLICY, approve=True, until=a_year_on)) == [
        "yellow_card_1", "red_card_proposed", "ban_imposed", "warning_lapsed", "ban_review_due", "ban_expired"]


def test_incidents_are_replayed_in_the_order_they_happened_whatever_order_they_arrived_in():
    late = [record(days=200), record(days=0), record(days=100)]
    assert kinds(replay(held(*late), POLICY)) == ["yellow_card_1", "yellow_card_2", "red_card_proposed"]


def test_compare_counts_decisions_and_people_for_each_policy():
    repeat = held(*SPACED)
    once = SubjectState(subject_id="sub_" + "c" * 40, incidents=(record(category="weapon", kind="visitor"),))
    comparison = Comparison(POLICY, SHORT_WINDOW, approve=True)
    for state in (repeat, once):
        comparison.add(state)
    before, after = comparison.before, comparison.after
    assert before.decisions["yellow_card_1"] == 1 and after.decisions["yellow_card_1"] == 3
    assert before.decisions["people_proposed_a_ban"] == 2 and after.decisions["people_proposed_a_ban"] == 1
    assert before.decisions["people_banned"] == 2 and after.decisions["people_banned"] == 1
    assert before.decisions["people"] == after.decisions["people"] == 2
    assert after.by_kind_of_perpetrator[("visitor", "ban_imposed")] == 1
    assert after.by_kind_of_perpetrator[("patient", "ban_imposed")] == 0


@settings(max_examples=150, deadline=None)
@given(days=st.lists(st.integers(min_value=0, max_value=800), min_size=1, max_size=8),
       categories=st.lists(st.sampled_from(["verbal_abuse", "weapon", "physical_assault"]), min_size=8, max_size=8))
def test_replaying_under_the_running_policy_never_cards_more_than_the_incidents_and_is_repeatable(days, categories):
    state = held(*(record(days=d, category=c) for d, c in zip(days, categories, strict=False)))
    first = replay(state, POLICY, approve=True)
    assert kinds(first) == kinds(replay(state, POLICY, approve=True))  # the same answer each time
    cards = [k for k in kinds(first) if k in ("yellow_card_1", "yellow_card_2", "red_card_proposed",
                                               "red_card_proposed:red.extension")]
    assert len(cards) <= len(days)
    # With every proposal approved, each one becomes a ban.
    assert kinds(first).count("ban_imposed") == sum(k.startswith("red_card_proposed") for k in kinds(first))


def test_the_equality_rows_count_proposals_and_bans_by_the_perpetrator_s_vulnerabilities():
    housed = held(record(category="weapon"))
    homeless = SubjectState(subject_id="sub_" + "d" * 40, incidents=(
        record(category="weapon", vulnerabilities=("homelessness", "care_leaver")),))
    comparison = Comparison(POLICY, NO_SEXUAL_RED, approve=True)
    for state in (housed, homeless):
        comparison.add(state)
    by = comparison.after.by_vulnerability
    assert (by[("none", "red_card_proposed")], by[("homelessness", "ban_imposed")], by[("care_leaver", "ban_imposed")]) \
        == (1, 1, 1)
    assert by[("criminal_justice", "ban_imposed")] == 0


def test_the_subject_s_incidents_reach_sanctions_with_their_vulnerabilities_but_the_stored_state_omits_none():
    event = incident().model_copy(update={"perpetrator": PerpetratorFacts(
        kind="patient", identified=True, medical_factors=False, vulnerabilities=["homelessness"])})
    _, seen = incident_input(event)
    assert seen.record.vulnerabilities == ("homelessness",)
    plain = json.loads(record().model_dump_json())
    assert "vulnerabilities" not in plain and IncidentRecord.model_validate(plain).vulnerabilities == ()


def test_one_organisation_sees_its_people_and_the_decisions_on_its_incidents_with_the_whole_ladder():
    travelling = held(record(days=0, organisation="RZA"), record(days=10, organisation="RYJ"),
                      record(days=20, organisation="RYJ"))
    elsewhere = SubjectState(subject_id="sub_" + "e" * 40, incidents=(record(organisation="RZA"),))
    comparison = Comparison(POLICY, SHORT_WINDOW, organisation="RYJ")
    for state in (travelling, elsewhere):
        comparison.add(state)
    # At RYJ: the final warning and the proposal, counted on the first warning given at RZA.
    assert comparison.before.decisions["people"] == 1
    assert (comparison.before.decisions["yellow_card_1"], comparison.before.decisions["yellow_card_2"],
            comparison.before.decisions["red_card_proposed"]) == (0, 1, 1)
