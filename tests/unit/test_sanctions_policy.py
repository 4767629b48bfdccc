"""The card ladder and its guards, as tables of cases and properties."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.sanctions import (
    ClinicalReviewRequested,
    RedCardProposed,
    Restriction,
    SafeguardingReferralRequested,
    YellowCardIssued,
)
from services.sanctions.domain import History, PastIncident, Policy, decide
from tests.factories import T0, incident

POLICY = Policy("test-1", window=timedelta(days=365), red_card_duration=timedelta(days=180))


def run(incidents, policy=POLICY):
    """Feed incidents through decide() in order, as the service does; return all decisions."""
    history, decisions = History(), []
    for inc in incidents:
        outcome = decide(history, inc, policy, T0)
        decisions.extend(outcome.decisions)
        if outcome.qualifying:
            history = History(history.qualifying + (PastIncident(inc.incident_id, inc.occurred_at),),
                              history.red_card_open)
        if any(isinstance(d, RedCardProposed) for d in outcome.decisions):
            history = History(history.qualifying, red_card_open=True)
    return decisions


def summary(decisions):
    return [(type(d).__name__, getattr(d, "level", None)) for d in decisions]


def test_three_incidents_in_a_year_give_yellow_yellow_red():
    decisions = run([incident(days=0), incident(days=30), incident(days=60)])
    assert summary(decisions) == [("YellowCardIssued", 1), ("YellowCardIssued", 2), ("RedCardProposed", None)]


def test_third_incident_in_a_year_proposes_red_card_citing_all_three():
    incs = [incident(days=0), incident(days=30), incident(days=60)]
    red = run(incs)[-1]
    assert isinstance(red, RedCardProposed)
    assert red.evidence_incident_ids == [i.incident_id for i in incs]
    assert red.restriction == Restriction.NON_EMERGENCY_CARE and red.emergency_care_never_barred
    assert red.proposed_duration_days == 180 and red.policy_version == "test-1"


def test_incidents_outside_the_window_do_not_count():
    decisions = run([incident(days=0), incident(days=400)])
    assert summary(decisions) == [("YellowCardIssued", 1), ("YellowCardIssued", 1)]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"medical_factors": True}, [("ClinicalReviewRequested", None)]),
        ({"age_band": "under_18"}, [("SafeguardingReferralRequested", None)]),
        ({"age_band": "under_18", "medical_factors": True}, [("SafeguardingReferralRequested", None)]),
        ({"kind": "staff"}, []),
        ({"kind": "unknown"}, []),
        ({"kind": "member_of_public"}, []),
        ({"subject": None}, []),
        ({"kind": "relative"}, [("YellowCardIssued", 1)]),
        ({"kind": "visitor"}, [("YellowCardIssued", 1)]),
        ({"category": "weapon"}, [("RedCardProposed", None)]),
        ({"category": "physical_assault", "harm": "moderate"}, [("RedCardProposed", None)]),
        ({"category": "physical_assault", "harm": "low"}, [("YellowCardIssued", 1)]),
    ],
)
def test_guards_and_first_decision(kwargs, expected):
    assert summary(run([incident(**kwargs)])) == expected


def test_guarded_incidents_do_not_count_towards_the_ladder():
    decisions = run([incident(medical_factors=True), incident(days=1), incident(days=2, medical_factors=True),
                     incident(days=3)])
    assert summary(decisions) == [("ClinicalReviewRequested", None), ("YellowCardIssued", 1),
                                  ("ClinicalReviewRequested", None), ("YellowCardIssued", 2)]


def test_relative_red_card_restricts_visiting_never_their_own_care():
    red = run([incident(kind="relative", category="weapon")])[0]
    assert isinstance(red, RedCardProposed) and red.restriction == Restriction.VISITING


def test_open_red_card_absorbs_further_incidents_as_evidence():
    decisions = run([incident(days=d) for d in range(6)])
    assert summary(decisions).count(("RedCardProposed", None)) == 1
    assert len(decisions) == 3


def test_decision_ids_are_deterministic():
    incs = [incident(days=0), incident(days=1)]
    assert [d.decision_id for d in run(incs)] == [d.decision_id for d in run(incs)]


kinds = st.sampled_from(["patient", "relative", "visitor", "member_of_public", "staff", "unknown"])
cases = st.lists(
    st.fixed_dictionaries({
        "days": st.integers(0, 900), "kind": kinds, "medical_factors": st.booleans(),
        "age_band": st.sampled_from(["under_18", "18_to_64", "65_and_over", None]),
        "category": st.sampled_from(["verbal_abuse", "weapon", "physical_assault", "sexual_misconduct"]),
        "harm": st.sampled_from(["none", "low", "moderate", "severe"]),
    }),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(cases)
def test_properties_of_any_sequence(specs):
    incs = [incident(**s) for s in sorted(specs, key=lambda s: s["days"])]
    decisions = run(incs)
    by_incident = {i.incident_id: i for i in incs}
    for d in decisions:
        source = by_incident[d.incident_id]
        # Guards: children and clinical causes are never carded; staff/unknown/public get nothing.
        assert source.perpetrator.kind in ("patient", "relative", "visitor")
        if isinstance(d, (YellowCardIssued, RedCardProposed)):
            assert source.perpetrator.age_band != "under_18" and not source.perpetrator.medical_factors
            assert d.incident_id in d.evidence_incident_ids
        if isinstance(d, SafeguardingReferralRequested):
            assert source.perpetrator.age_band == "under_18"
        if isinstance(d, ClinicalReviewRequested):
            assert source.perpetrator.medical_factors
        if isinstance(d, RedCardProposed):
            assert d.proposed_duration_days <= 366
    # Never two red card proposals at once (approval comes later, so at most one here).
    assert sum(isinstance(d, RedCardProposed) for d in decisions) <= 1
    # At most one decision per incident.
    assert len({d.incident_id for d in decisions}) == len(decisions)
