"""The card policy, rule by rule, as tables of cases."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from pydantic import ValidationError

from schemas.sanctions import AppealOutcome, BanImposed, RedCardProposed, Restriction
from services.sanctions.config import DEFAULT_POLICY, SanctionsSettings, load_policy
from services.sanctions.domain import (
    Agree,
    AppealState,
    Approve,
    CardStatus,
    Conflict,
    DecideAppeal,
    IncidentGone,
    IncidentSeen,
    LodgeAppeal,
    NotFound,
    Policy,
    Reject,
    SubjectState,
    Tick,
)
from services.sanctions.domain.ladder import card_level, in_force
from tests.factories import T0
from tests.unit.sanctions_cases import POLICY, feed, names, record
from vanda.runtime.settings import explain

Y1, Y2, RED = "yellow_card_issued:1", "yellow_card_issued:2", "red_card_proposed"


def test_three_incidents_in_a_year_give_yellow_yellow_red():
    incs = [record(0), record(30), record(60)]
    _, decisions = feed(incs)
    assert names(decisions) == [Y1, Y2, RED]
    red = decisions[-1]
    assert red.evidence_incident_ids == [i.incident_id for i in incs]
    assert red.rule == "ladder.third_or_later" and red.policy_version == "test-1"
    assert red.restriction == Restriction.NON_EMERGENCY_CARE and red.emergency_care_never_barred


def test_incidents_outside_the_rolling_window_do_not_count():
    assert names(feed([record(0), record(400)])[1]) == [Y1, Y1]


@pytest.mark.parametrize(("kw", "expected"), [
    ({"medical_factors": True}, ["clinical_review_requested"]),
    ({"age_band": "under_18"}, ["safeguarding_referral_requested"]),
    ({"age_band": "under_18", "medical_factors": True},
     ["safeguarding_referral_requested", "clinical_review_requested"]),
    ({"kind": "staff"}, []),
    ({"kind": "unknown"}, []),
    ({"kind": "member_of_public"}, []),
    ({"kind": "relative"}, [Y1]),
    ({"kind": "visitor"}, [Y1]),
    ({"category": "weapon"}, [RED]),
    ({"category": "physical_assault", "harm": "moderate"}, [RED]),
    ({"category": "physical_assault", "harm": "death"}, [RED]),
    ({"category": "physical_assault", "harm": "low"}, [Y1]),
    ({"category": "sexual_misconduct", "sexual_assault": True}, [RED]),
    ({"category": "sexual_misconduct"}, [Y1]),
])
def test_guards_and_immediate_red(kw, expected):
    assert names(feed([record(**kw)])[1]) == expected


def test_guarded_incidents_do_not_count_towards_the_ladder():
    incs = [record(0, medical_factors=True), record(1), record(2, age_band="under_18"), record(3)]
    assert names(feed(incs)[1]) == ["clinical_review_requested", Y1, "safeguarding_referral_requested", Y2]


def test_relative_or_visitor_red_card_restricts_visiting_never_their_own_care():
    red = feed([record(kind="visitor", category="weapon")])[1][0]
    assert isinstance(red, RedCardProposed) and red.restriction == Restriction.VISITING


def test_open_red_card_absorbs_further_incidents_as_evidence_never_two_proposals():
    state, decisions = feed([record(d) for d in range(5)])
    assert names(decisions) == [Y1, Y2, RED, "evidence_attached", "evidence_attached"]
    red_id = decisions[2].decision_id
    assert all(d.sanction_id == red_id for d in decisions[3:])


def test_approval_imposes_a_time_limited_ban_from_now():
    state, decisions = feed([record(0, category="weapon")])
    now = T0 + timedelta(days=3)
    state, decisions = feed([Approve(decisions[0].decision_id, "reviewer-1")], state, now=now)
    ban = decisions[0]
    assert isinstance(ban, BanImposed) and ban.reviewer == "reviewer-1"
    assert ban.starts_at == now and ban.ends_at == now + timedelta(days=180) and ban.emergency_care_never_barred
    assert state.active_ban() is not None


@pytest.mark.parametrize("command", [Approve, Reject])
def test_only_a_proposed_red_card_can_be_approved_or_rejected(command):
    state, decisions = feed([record(0)])
    with pytest.raises(Conflict, match="only a proposed red card"):
        feed([command(decisions[0].decision_id, "r")], state)
    with pytest.raises(NotFound):
        feed([command(record().incident_id, "r")], state)


def test_rejection_closes_the_card_and_only_a_new_incident_proposes_again():
    state, decisions = feed([record(0, category="weapon"), record(1)])
    assert names(decisions) == [RED, "evidence_attached"]
    state, decisions = feed([Reject(decisions[0].decision_id, "r")], state)
    assert names(decisions) == ["red_card_rejected"]
    state, decisions = feed([record(2)], state)
    assert names(decisions) == [RED]


def test_without_approval_policy_a_red_card_takes_effect_at_once():
    policy = Policy(version="auto", approval_required=False)
    _, decisions = feed([record(0, category="weapon")], policy=policy)
    assert names(decisions) == [RED, "ban_imposed"] and decisions[1].reviewer is None


def test_review_is_due_28_days_before_the_end_then_the_ban_expires():
    state, decisions = feed([record(0, category="weapon")])
    state, _ = feed([Approve(decisions[0].decision_id, "r")], state)
    ends = state.active_ban().ends_at
    assert feed([Tick()], state, now=ends - timedelta(days=29))[1] == []
    state, decisions = feed([Tick()], state, now=ends - timedelta(days=28))
    assert names(decisions) == ["ban_review_due"]
    assert feed([Tick()], state, now=ends - timedelta(days=1))[1] == []
    state, decisions = feed([Tick()], state, now=ends)
    assert names(decisions) == ["ban_expired"] and state.active_ban() is None


def test_after_a_ban_expires_a_new_qualifying_incident_starts_counting_again():
    state, decisions = feed([record(0, category="weapon")])
    state, _ = feed([Approve(decisions[0].decision_id, "r")], state)
    state, _ = feed([Tick()], state, now=state.active_ban().ends_at)
    _, decisions = feed([record(200)], state)
    assert names(decisions) == [Y2]  # the weapon incident is still within the 12-month window


def test_withdrawing_the_first_incident_moves_the_second_down_to_yellow_one():
    a, b = record(0), record(10)
    state, _ = feed([a, b])
    state, decisions = feed([IncidentGone(a.incident_id)], state)
    assert names(decisions) == ["rescinded", "rescinded", Y1]
    assert {d.reason for d in decisions[:2]} == {"incident_withdrawn"}
    assert decisions[2].incident_id == b.incident_id
    assert [c.status for c in state.cards if c.status != CardStatus.RESCINDED] == [CardStatus.ISSUED]


AGE_KNOWN = Policy(version="test-age-known", card_without_age_band=False)


@pytest.mark.parametrize(("policy", "kw", "expected"), [
    # Taken to be an adult: the setting's default, and how policies before it behaved.
    (POLICY, {"age_band": None}, [Y1]),
    (AGE_KNOWN, {"age_band": None}, []),
    (AGE_KNOWN, {"age_band": None, "category": "weapon"}, []),
    (AGE_KNOWN, {"age_band": "18_to_64"}, [Y1]),
    (AGE_KNOWN, {"age_band": "65_and_over", "category": "weapon"}, [RED]),
    (AGE_KNOWN, {"age_band": "under_18"}, ["safeguarding_referral_requested"]),
    (AGE_KNOWN, {"age_band": None, "medical_factors": True}, ["clinical_review_requested"]),
])
def test_a_card_waits_for_the_age_band_where_the_policy_says(policy, kw, expected):
    assert names(feed([record(**kw)], policy=policy)[1]) == expected


def test_an_incident_awaiting_its_age_band_counts_once_recorded_and_its_card_follows():
    a, b = record(0, age_band=None), record(1)
    state, decisions = feed([a, b], policy=AGE_KNOWN)
    assert names(decisions) == [Y1]  # b is the first the ladder can count
    adult = a.model_copy(update={"age_band": "18_to_64", "revision": 2})
    state, decisions = feed([IncidentSeen(adult, amended=True)], state, policy=AGE_KNOWN)
    # a is now first: it takes yellow 1 and b moves up to yellow 2 (b's old card rescinded).
    assert sorted(names(decisions)) == sorted(["rescinded", Y1, Y2])
    assert {(c.incident_id, c.kind) for c in state.cards if c.standing} == {(a.incident_id, "yellow_1"),
                                                                         (b.incident_id, "yellow_2")}


def test_an_age_band_cleared_takes_no_card_away_and_earns_none_new():
    a, b = record(0), record(1)
    state, _ = feed([a], policy=AGE_KNOWN)
    cleared = a.model_copy(update={"age_band": None, "revision": 2})
    # Clearing it proves no child, unlike an amendment that says so: the warning stands.
    state, decisions = feed([IncidentSeen(cleared, amended=True)], state, policy=AGE_KNOWN)
    assert decisions == [] and [c.status for c in state.cards] == [CardStatus.ISSUED]
    # ...and keeps its place: the next incident is the second warning.
    assert names(feed([b], state, policy=AGE_KNOWN)[1]) == [Y2]


def test_a_ban_imposed_before_the_policy_asked_for_the_age_band_stands_after_it_does():
    weapon = record(0, age_band=None, category="weapon")
    before = Policy(version="before", card_without_age_band=True)
    state, decisions = feed([weapon], policy=before)
    state, _ = feed([Approve(decisions[0].decision_id, "security-manager")], state, policy=before)
    assert [c.status for c in state.cards] == [CardStatus.ACTIVE]
    # Upgraded: the next incident, of an adult, re-derives the ladder; people imposed that ban.
    state, decisions = feed([record(5)], state, policy=AGE_KNOWN, now=days(5))
    assert [c.status for c in state.cards if c.incident_id == weapon.incident_id] == [CardStatus.ACTIVE]
    assert "rescinded" not in names(decisions)


def test_a_ban_proposed_for_someone_of_no_recorded_age_falls_once_the_policy_asks_for_it():
    # Not yet imposed: no reviewer may approve a ban for someone who may be a child.
    weapon = record(0, age_band=None, category="weapon")
    before = Policy(version="before", card_without_age_band=True)
    state, _ = feed([weapon], policy=before)
    state, decisions = feed([record(5)], state, policy=AGE_KNOWN, now=days(5))
    assert [c.status for c in state.cards if c.incident_id == weapon.incident_id] == [CardStatus.RESCINDED]
    assert names(decisions) == ["rescinded", Y1]


def test_amending_to_medical_factors_rescinds_the_card_and_requests_clinical_review():
    a = record(0)
    state, _ = feed([a])
    amended = a.model_copy(update={"medical_factors": True, "revision": 2})
    state, decisions = feed([IncidentSeen(amended, amended=True)], state)
    assert names(decisions) == ["clinical_review_requested", "rescinded"]
    assert decisions[1].reason == "incident_amended"


@pytest.mark.parametrize("then", [{"medical_factors": True}, {"age_band": "under_18"}])
def test_a_card_that_ran_its_course_is_overturned_when_the_incident_is_found_not_to_qualify(then):
    a = record(0)
    state, _ = feed([a])
    state, lapsed = feed([Tick()], state, now=days(400))
    assert names(lapsed) == ["warning_lapsed"]
    state, decisions = feed([IncidentSeen(a.model_copy(update=then | {"revision": 2}), amended=True)], state,
                            now=days(410))
    assert names(decisions)[-1] == "rescinded" and decisions[-1].reason == "incident_amended"
    assert [c.status for c in state.cards] == [CardStatus.RESCINDED]
    # An amendment that leaves it qualifying leaves the lapsed card as history.
    state, _ = feed([Tick()], feed([a])[0], now=days(400))
    harm = a.model_copy(update={"harm": "low", "revision": 2})
    assert feed([IncidentSeen(harm, amended=True)], state, now=days(410))[1] == []
    assert [c.status for c in state.cards] == [CardStatus.LAPSED]


@pytest.mark.parametrize(("first", "then", "expected"), [
    # Found later to be a child: safeguarding, though clinical review went already.
    ({"medical_factors": True}, {"age_band": "under_18"}, ["safeguarding_referral_requested"]),
    ({"age_band": "under_18"}, {"age_band": "18_to_64", "medical_factors": True}, ["clinical_review_requested"]),
    ({"age_band": "under_18"}, {"medical_factors": True}, ["clinical_review_requested"]),
    # Each referral goes once: an amendment that changes nothing a guard reads sends none again.
    ({"medical_factors": True}, {"harm": "low"}, []),
])
def test_an_amendment_sends_the_referral_the_record_now_calls_for_once(first, then, expected):
    a = record(0, **first)
    state, _ = feed([a])
    state, decisions = feed([IncidentSeen(a.model_copy(update=then | {"revision": 2}), amended=True)], state)
    assert names(decisions) == expected
    again = a.model_copy(update=then | {"revision": 3})
    assert names(feed([IncidentSeen(again, amended=True)], state)[1]) == []


def test_a_state_kept_before_the_referrals_were_told_apart_is_not_sent_its_first_again():
    a = record(0, age_band="under_18", medical_factors=True)
    state, _ = feed([a])
    old = state.model_copy(update={"guarded": frozenset({str(a.incident_id)})})  # as stored then
    amended = a.model_copy(update={"harm": "low", "revision": 2})
    assert names(feed([IncidentSeen(amended, amended=True)], old)[1]) == ["clinical_review_requested"]


def test_amending_harm_upwards_turns_a_yellow_into_a_red_proposal():
    a = record(0, category="physical_assault", harm="low")
    state, _ = feed([a])
    amended = a.model_copy(update={"harm": "severe", "revision": 2})
    assert names(feed([IncidentSeen(amended, amended=True)], state)[1]) == ["rescinded", RED]


def test_a_late_report_of_an_earlier_incident_re_derives_the_ladder():
    jan, feb, mar = record(0), record(31), record(59)
    state, decisions = feed([jan, mar])
    assert names(decisions) == [Y1, Y2]
    state, decisions = feed([feb], state)
    assert names(decisions) == ["rescinded", Y2, RED]
    assert decisions[0].reason == "incident_reported_late" and decisions[2].incident_id == mar.incident_id


@pytest.mark.parametrize(("case", "days_old", "expected"), [
    ("a day inside the window: warned, lapsing tomorrow", 364, [Y1]),
    ("on the day it leaves the window", 365, []),
    ("long past", 800, []),
])
def test_no_warning_is_issued_for_an_incident_reported_after_it_left_the_window(case, days_old, expected):
    state, decisions = feed([record(-days_old, reported_at=T0)], now=T0)
    assert names(decisions) == expected, case
    assert [c.status for c in state.cards] == [CardStatus.ISSUED] * len(expected)


def test_an_incident_reported_after_it_left_the_window_still_counts_for_the_ones_within_it():
    # 400 and 300 days ago, both reported today: the first gets no warning of its own, but the
    # second is still the second within a year, so its warning is the final one.
    first, second = record(-400, reported_at=T0), record(-300, reported_at=T0)
    state, decisions = feed([first, second], now=T0)
    assert names(decisions) == [Y2] and decisions[0].incident_id == second.incident_id
    assert decisions[0].evidence_incident_ids == [first.incident_id, second.incident_id]


def test_a_serious_incident_reported_after_it_left_the_window_proposes_no_ban():
    # A backfill of history would otherwise put a proposal before a reviewer for every old
    # weapon; nor does the ban that never came absorb a recent incident as its evidence.
    old_weapon, recent = record(-400, category="weapon", reported_at=T0), record(-10, reported_at=T0)
    state, decisions = feed([old_weapon, recent], now=T0)
    assert names(decisions) == [Y1] and decisions[0].incident_id == recent.incident_id
    # Reported in time, the same weapon proposed its ban then, and re-deriving later keeps it.
    timely = record(-400, category="weapon", reported_at=T0 - timedelta(days=399))
    state, decisions = feed([timely], now=T0 - timedelta(days=399))
    assert names(decisions) == [RED]
    state, decisions = feed([recent], state, now=T0)
    assert [c.status for c in state.cards] == [CardStatus.PROPOSED] and names(decisions) == ["evidence_attached"]


def days(n):
    return T0 + timedelta(days=n)


@pytest.mark.parametrize("undo", ["amended to medical factors", "withdrawn"])
def test_a_ban_served_stands_when_an_earlier_incident_goes_and_no_warning_follows_for_its_conduct(undo):
    a, b, c = record(0), record(10), record(20)
    state, decisions = feed([a, b, c])
    state, _ = feed([Approve(decisions[2].decision_id, "r")], state, now=days(25))
    served, ended = feed([Tick()], state, now=days(205))
    assert names(ended) == ["ban_review_due", "ban_expired"]
    gone = (IncidentSeen(b.model_copy(update={"medical_factors": True, "revision": 2}), amended=True)
            if undo != "withdrawn" else IncidentGone(b.incident_id))
    after, decisions = feed([gone], served, now=days(220))
    # B's warning falls; C's ban stays on the record as served; no final warning for C.
    assert [n for n in names(decisions) if n != "clinical_review_requested"] == ["rescinded"]
    assert decisions[-1].incident_id == b.incident_id
    assert [c_.status for c_ in after.cards if c_.incident_id == c.incident_id] == [CardStatus.EXPIRED]
    assert card_level(after, POLICY, days(221)) == "yellow_1"
    # In force, the ban falls instead, and C's place is a final warning: as before.
    _, decisions = feed([gone], state, now=days(100))
    assert [n for n in names(decisions) if n != "clinical_review_requested"] == ["rescinded", "rescinded", Y2]


def test_a_proposal_whose_evidence_is_withdrawn_is_proposed_again_on_what_is_left():
    a, b, c = record(0), record(10), record(20, category="weapon")
    state, decisions = feed([a, b, c])
    assert decisions[-1].evidence_incident_ids == [a.incident_id, b.incident_id, c.incident_id]
    state, decisions = feed([IncidentGone(a.incident_id)], state, now=days(21))
    assert names(decisions) == ["rescinded", "rescinded", "rescinded", Y1, RED]
    again = decisions[-1]
    assert again.evidence_incident_ids == [b.incident_id, c.incident_id] and again.rule == "red.immediate"
    _, imposed = feed([Approve(again.decision_id, "r")], state, now=days(22))
    assert imposed[-1].evidence_incident_ids == [b.incident_id, c.incident_id]


def test_a_yes_given_to_a_proposal_does_not_carry_over_once_its_rule_changes():
    two = Policy(version="two-people", clinical_agreement_required=True)
    a, b, c = record(0), record(10), record(20, category="weapon")
    state, decisions = feed([a, b, c], policy=two)
    first = decisions[-1]
    state, _ = feed([Approve(first.decision_id, "security")], state, policy=two, now=days(21))
    # Amended from a weapon to verbal abuse: still a red card, as the third, but on another rule.
    state, decisions = feed([IncidentSeen(c.model_copy(update={"category": "verbal_abuse", "revision": 2}),
                                          amended=True)], state, policy=two, now=days(22))
    assert names(decisions) == ["rescinded", RED] and decisions[-1].rule == "ladder.third_or_later"
    assert state.card(first.decision_id).status == CardStatus.RESCINDED
    # The clinical lead's yes alone does not impose it: the security manager decides again.
    state, agreed = feed([Agree(decisions[-1].decision_id, "clinician")], state, policy=two, now=days(23))
    assert names(agreed) == ["red_card_endorsed"] and state.active_ban() is None


@pytest.mark.parametrize("policy", [POLICY, Policy(version="two-people", clinical_agreement_required=True)])
def test_a_proposal_left_waiting_until_its_incident_leaves_the_window_cannot_be_imposed_only_rejected(policy):
    weapon = record(0, category="weapon")
    state, decisions = feed([weapon], policy=policy)
    proposal = decisions[0].decision_id
    yes = Approve(proposal, "r") if policy is POLICY else Agree(proposal, "c")
    feed([yes], state, policy=policy, now=days(364))  # the day before, still a yes
    with pytest.raises(Conflict, match="sanction_id: its incident left the policy's window on 2027-03-01"):
        feed([yes], state, policy=policy, now=days(365))
    _, rejected = feed([Reject(proposal, "r")], state, policy=policy, now=days(400))
    assert names(rejected) == ["red_card_rejected"]


def test_a_late_report_of_earlier_conduct_is_evidence_for_the_ban_in_force_not_a_new_proposal():
    # A, B, C: yellow, yellow, red, and the ban on C is approved. Then X, from before A, is
    # reported: by the count B would now be the third, but the ban in force stands on what its
    # reviewers weighed, so nothing lifts it; X and A move up the ladder as they would anyway.
    a, b, c = record(10), record(20), record(30)
    state, decisions = feed([a, b, c])
    state, _ = feed([Approve(decisions[2].decision_id, "r")], state, now=days(31))
    state, decisions = feed([record(5, reported_at=days(40))], state, now=days(40))
    assert names(decisions) == ["rescinded", Y1, Y2]
    assert decisions[0].incident_id == a.incident_id and decisions[2].incident_id == a.incident_id
    assert card_level(state, POLICY, days(41)) == "red_active"
    # Before the ban was approved, the same report moves the proposal to B, as before.
    state, decisions = feed([a, b, c])
    state, decisions = feed([record(5, reported_at=days(30))], state, now=days(30))
    assert names(decisions) == ["rescinded", "rescinded", "rescinded", Y1, Y2, RED, "evidence_attached"]
    assert decisions[5].incident_id == b.incident_id


def test_a_ban_whose_own_count_falls_is_rescinded_even_with_evidence_reported_since():
    a, b, c = record(10), record(20), record(30)
    state, decisions = feed([a, b, c])
    state, _ = feed([Approve(decisions[2].decision_id, "r")], state, now=days(31))
    state, _ = feed([record(5, category="weapon", reported_at=days(40))], state, now=days(40))
    # Withdrawing A and B leaves C the second incident after the weapon: the ban on C goes,
    # and the weapon, whose ban it was evidence for, now proposes its own.
    state, decisions = feed([IncidentGone(a.incident_id), IncidentGone(b.incident_id)], state, now=days(50))
    assert "red_card_proposed" in names(decisions)
    assert [c.status for c in state.cards if c.kind == "red" and c.status != CardStatus.RESCINDED] == [
        CardStatus.PROPOSED]


def _undo(undo: str, incident, state):
    """The input that makes `incident` stop counting, and the reason a decision then gives."""
    if undo == "withdrawn":
        return [IncidentGone(incident.incident_id)], "incident_withdrawn"
    if undo == "appeal upheld":
        card = next(c for c in state.cards if c.incident_id == incident.incident_id and c.standing)
        return [LodgeAppeal(card.sanction_id, "officer"),
                DecideAppeal(card.sanction_id, AppealOutcome.UPHELD, "another officer")], "appeal_upheld"
    amended = incident.model_copy(update={"medical_factors": True, "revision": 2})
    return [IncidentSeen(amended, amended=True)], "incident_amended"


@pytest.mark.parametrize("undo", ["withdrawn", "appeal upheld", "amended to medical factors"])
def test_a_ban_whose_count_holds_when_an_incident_it_rested_on_goes_stands_on_its_new_basis(undo):
    # A, B, C: the ban on C is approved. L, between B and C, is reported since: evidence for
    # the ban. Then A stops counting: C is still the third (B, L, C), so the ban stands, as a
    # ban falls only when its count does; but it no longer rests on what its reviewers weighed,
    # and every decision must say which incidents it rests on.
    a, b, c = record(10), record(20), record(30)
    state, decisions = feed([a, b, c])
    state, _ = feed([Approve(decisions[2].decision_id, "r")], state, now=days(31))
    late = record(25, reported_at=days(40))
    state, decisions = feed([late], state, now=days(40))
    assert names(decisions) == ["evidence_attached"]
    inputs, reason = _undo(undo, a, state)
    after, decisions = feed(inputs, state, now=days(50))
    revised = [d for d in decisions if names([d]) == ["basis_revised"]]
    assert len(revised) == 1 and revised[0] is decisions[-1]
    ban = after.active_ban()
    assert ban is not None and revised[0].sanction_id == ban.sanction_id == state.active_ban().sanction_id
    assert revised[0].evidence_incident_ids == [b.incident_id, late.incident_id, c.incident_id] == list(ban.evidence)
    assert revised[0].no_longer_counted == [a.incident_id] and revised[0].reason == reason
    assert revised[0].rule == "basis.revised" and revised[0].incident_id == c.incident_id
    assert revised[0].basis_rule == "ladder.third_or_later" == ban.rule
    assert after.version() != state.version()  # a reviewer's earlier look is stale
    assert feed(inputs, state, now=days(50))[1] == decisions  # a replay gives the same decisions, ids too


def test_each_revision_of_a_card_s_basis_is_a_decision_of_its_own_even_for_the_same_incident_lost_again():
    a, b, c = record(10), record(20), record(30)
    l1, l2 = record(25, reported_at=days(40)), record(27, reported_at=days(41))
    state, decisions = feed([a, b, c])
    state, _ = feed([Approve(decisions[2].decision_id, "r"), l1, l2], state, now=days(41))
    unwell = [IncidentSeen(a.model_copy(update={"medical_factors": m, "revision": r}), amended=True)
              for r, m in ((2, True), (3, False), (4, True))]
    _, decisions = feed([unwell[0], unwell[1], IncidentGone(l1.incident_id), unwell[2]], state, now=days(50))
    revised = [d for d in decisions if names([d]) == ["basis_revised"]]
    assert [d.no_longer_counted for d in revised] == [[a.incident_id], [l1.incident_id], [a.incident_id]]
    assert [d.reason for d in revised] == ["incident_amended", "incident_withdrawn", "incident_amended"]
    assert revised[2].evidence_incident_ids == [b.incident_id, l2.incident_id, c.incident_id]
    assert len({d.decision_id for d in revised}) == 3  # the same id twice: the second would be dropped as a repeat


def test_a_card_kept_as_held_once_its_incident_left_the_window_is_not_given_a_new_basis():
    # No place in the count can be given again to an incident that left the window: the card
    # stays as it is held, and no revision publishes a basis its rule cannot stand on.
    a, b, c = record(10), record(20), record(30)
    state, _ = feed([a, b])
    state, decisions = feed([IncidentGone(a.incident_id)], state, now=days(390))
    assert "basis_revised" not in names(decisions)
    state, decisions = feed([a, b, c])
    state, _ = feed([Approve(decisions[2].decision_id, "r")], state, now=days(300))
    state, decisions = feed([IncidentGone(a.incident_id)], state, now=days(400))
    assert "basis_revised" not in names(decisions) and state.active_ban().rule == "ladder.third_or_later"


def test_an_extension_whose_ban_s_incident_went_stands_on_its_place_in_the_count_and_says_so():
    a, b, c, d = record(10), record(20), record(30), record(40)
    state, decisions = feed([a, b, c], policy=EXTENDING)
    state, _ = feed([Approve(decisions[2].decision_id, "r")], state, policy=EXTENDING, now=days(31))
    state, decisions = feed([d], state, policy=EXTENDING, now=days(41))
    assert decisions[-1].rule == "red.extension"
    extension = decisions[-1].decision_id
    state, _ = feed([Approve(extension, "r")], state, policy=EXTENDING, now=days(42))
    state, decisions = feed([IncidentGone(c.incident_id)], state, policy=EXTENDING, now=days(50))
    [revised] = [x for x in decisions if names([x]) == ["basis_revised"]]
    assert revised.sanction_id == extension and revised.no_longer_counted == [c.incident_id]
    # Its first incident is no longer the ban it extended: it is the third, and its rule says so.
    assert revised.evidence_incident_ids == [a.incident_id, b.incident_id, d.incident_id]
    assert revised.basis_rule == "ladder.third_or_later" == state.card(extension).rule
    assert state.active_ban().sanction_id == extension


def test_a_ban_brought_back_resting_on_an_incident_since_found_unwell_is_revised_for_that_reason():
    a, b, c, d, late = record(10), record(20), record(30), record(40), record(25, reported_at=days(45))
    state, decisions = feed([a, b, c], policy=EXTENDING)
    state, _ = feed([Approve(decisions[2].decision_id, "r")], state, policy=EXTENDING, now=days(31))
    state, decisions = feed([d], state, policy=EXTENDING, now=days(41))
    state, _ = feed([Approve(decisions[-1].decision_id, "r"), late], state, policy=EXTENDING, now=days(45))
    unwell = IncidentSeen(a.model_copy(update={"medical_factors": True, "revision": 2}), amended=True)
    state, _ = feed([unwell], state, policy=EXTENDING, now=days(50))
    state, decisions = feed([IncidentGone(d.incident_id)], state, policy=EXTENDING, now=days(55))
    assert names(decisions) == ["rescinded", "ban_imposed", "basis_revised"]
    assert decisions[1].rule == "ban.reinstated"
    # The withdrawal brought the ban back; the amendment is why it no longer rests on A.
    assert decisions[2].reason == "incident_amended" and decisions[2].no_longer_counted == [a.incident_id]
    assert decisions[2].evidence_incident_ids == [b.incident_id, late.incident_id, c.incident_id]


def test_a_ban_that_lost_no_incident_is_not_revised_when_evidence_is_added_or_its_count_falls():
    a, b, c = record(10), record(20), record(30)
    state, decisions = feed([a, b, c])
    state, _ = feed([Approve(decisions[2].decision_id, "r")], state, now=days(31))
    # Its own count falling rescinds it instead.
    _, decisions = feed([IncidentGone(a.incident_id)], state, now=days(50))
    assert "basis_revised" not in names(decisions) and "rescinded" in names(decisions)
    # More evidence takes nothing from what the reviewers weighed.
    state, decisions = feed([record(25, reported_at=days(40))], state, now=days(40))
    assert "basis_revised" not in names(decisions) and list(state.active_ban().evidence) == [
        a.incident_id, b.incident_id, c.incident_id]


@pytest.mark.parametrize(("case", "now", "expected"), [
    ("within the window: the warning becomes a ban proposal", 100, ["rescinded", RED]),
    ("after it left the window: it keeps its warning", 400, []),
])
def test_an_amendment_raises_a_card_only_while_the_incident_counts(case, now, expected):
    a = record(0, category="physical_assault", harm="low")
    state, _ = feed([a])
    amended = a.model_copy(update={"harm": "moderate", "revision": 2})
    assert names(feed([IncidentSeen(amended, amended=True)], state, now=days(now))[1]) == expected, case


def test_a_backfill_moves_no_incident_that_left_the_window_up_the_ladder():
    # A and B were warned; 500 days on, an incident from before A is backfilled: B would be the
    # third within a year of it, but B's conduct stopped counting long ago.
    state, _ = feed([record(0), record(10)])
    state, decisions = feed([record(-5, reported_at=days(500))], state, now=days(500))
    assert names(decisions) == []


def test_an_incident_in_a_ban_reported_after_it_left_the_window_is_evidence_not_an_extension():
    state, decisions = feed([record(30, reported_at=days(400))], _banned(), policy=EXTENDING, now=days(400))
    # The ban ran out on day 190: expired first, as the scheduler's round would have.
    assert names(decisions) == ["ban_expired", "evidence_attached"]


@pytest.mark.parametrize("scheduler_first", [True, False])
def test_an_incident_reported_as_a_ban_ends_does_the_same_whether_the_scheduler_ran_first_or_not(scheduler_first):
    # The ban runs to day 190; an incident on day 189 is reported on day 190, just after it ended.
    state, after = _banned(), T0 + timedelta(days=190, seconds=40)
    if scheduler_first:
        state, _ = feed([Tick()], state, policy=EXTENDING, now=after)
    _, decisions = feed([record(189, reported_at=after)], state, policy=EXTENDING, now=after)
    # Expired by the round, or first thing here: either way the incident is only evidence.
    assert names(decisions) == (["evidence_attached"] if scheduler_first else ["ban_expired", "evidence_attached"])


def test_a_ban_imposed_after_an_older_one_ran_out_expires_it_at_its_end_not_as_superseded():
    state = _banned(POLICY)
    state, decisions = feed([record(195, category="weapon")], state, now=T0 + timedelta(days=196))
    expired = [d for d in decisions if names([d]) == ["ban_expired"]]
    assert len(expired) == 1 and expired[0].rule == "ban.expired" and expired[0].ended_at == T0 + timedelta(days=190)


def test_appeal_upheld_rescinds_the_card_and_the_incident_stops_counting():
    a, b = record(0), record(1)
    state, decisions = feed([a, b])
    y1 = decisions[0].decision_id
    state, decisions = feed([LodgeAppeal(y1, "officer"), DecideAppeal(y1, AppealOutcome.UPHELD, "officer")], state)
    assert names(decisions) == ["appeal_lodged", "appeal_decided", "rescinded", "rescinded", Y1]
    assert decisions[2].reason == "appeal_upheld"


def _ended_while_appealed(which: str):
    """(state, sanction id, status) for a card appealed against that has since ended on its own."""
    if which == "lapsed warning":
        state, decisions = feed([record(0)])
        warning = decisions[0].decision_id
        state, _ = feed([LodgeAppeal(warning, "o"), Tick()], state, now=T0 + timedelta(days=400))
        return state, warning, CardStatus.LAPSED
    state, decisions = feed([record(0, category="weapon")])
    ban = decisions[0].decision_id
    state, _ = feed([Approve(ban, "r"), LodgeAppeal(ban, "o")], state)
    state, _ = feed([Tick()], state, now=state.active_ban().ends_at)
    return state, ban, CardStatus.EXPIRED


@pytest.mark.parametrize("which", ["lapsed warning", "expired ban"])
def test_an_appeal_upheld_after_the_card_ran_its_course_still_rescinds_it(which):
    state, sanction, ended = _ended_while_appealed(which)
    assert state.card(sanction).status == ended
    state, decisions = feed([DecideAppeal(sanction, AppealOutcome.UPHELD, "o")], state, now=T0 + timedelta(days=500))
    assert names(decisions) == ["appeal_decided", "rescinded"] and decisions[1].reason == "appeal_upheld"
    assert state.card(sanction).status == CardStatus.RESCINDED


@pytest.mark.parametrize("which", ["lapsed warning", "expired ban"])
def test_withdrawing_the_incident_of_a_card_that_ran_its_course_rescinds_it(which):
    state, sanction, _ = _ended_while_appealed(which)
    incident = state.card(sanction).incident_id
    state, decisions = feed([IncidentGone(incident)], state, now=T0 + timedelta(days=500))
    assert names(decisions) == ["rescinded"] and decisions[0].reason == "incident_withdrawn"
    assert state.card(sanction).status == CardStatus.RESCINDED


@pytest.mark.parametrize("which", ["lapsed warning", "expired ban"])
def test_an_appeal_dismissed_after_the_card_ran_its_course_leaves_it_as_it_ended(which):
    state, sanction, ended = _ended_while_appealed(which)
    state, decisions = feed([DecideAppeal(sanction, AppealOutcome.DISMISSED, "o")], state, now=T0 + timedelta(days=500))
    assert names(decisions) == ["appeal_decided"] and state.card(sanction).status == ended


def test_appeal_dismissed_leaves_the_card_and_appeals_happen_once():
    state, decisions = feed([record(0)])
    y1 = decisions[0].decision_id
    state, decisions = feed([LodgeAppeal(y1, "o"), DecideAppeal(y1, AppealOutcome.DISMISSED, "o")], state)
    assert names(decisions) == ["appeal_lodged", "appeal_decided"] and state.cards[0].status == CardStatus.ISSUED
    with pytest.raises(Conflict):
        feed([LodgeAppeal(y1, "o")], state)
    with pytest.raises(Conflict):
        feed([DecideAppeal(y1, AppealOutcome.UPHELD, "o")], state)


def test_out_of_order_and_unknown_incident_events_are_refused():
    a = record(0)
    state, _ = feed([a])
    with pytest.raises(Conflict, match="out of order"):
        feed([IncidentSeen(a, amended=True)], state)
    with pytest.raises(NotFound):
        feed([IncidentSeen(record(1, revision=2), amended=True)], state)
    with pytest.raises(NotFound):
        feed([IncidentGone(record().incident_id)], state)


def test_withdrawing_twice_changes_nothing_the_second_time():
    a = record(0)
    state, _ = feed([a, IncidentGone(a.incident_id)])
    assert feed([IncidentGone(a.incident_id)], state)[1] == []


def test_a_policy_file_cannot_let_bans_through_without_a_person_s_approval(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY.read_text().replace("approval_required = true", "approval_required = false"))
    with pytest.raises(ValueError, match="approval_required: a ban needs a person's approval"):
        load_policy(path)
    assert load_policy(DEFAULT_POLICY).approval_required


@pytest.mark.parametrize(("ban", "review", "refused"), [
    (14, 28, True),    # the reminder would go out on the first tick after approval
    (28, 28, True),    # ...and so would one due on the ban's first day
    (29, 28, False),   # due on the ban's second day
    (180, 28, False),  # the shipped policy
    (14, 0, False),    # on the ban's last day
])
def test_a_policy_file_whose_review_reminder_falls_outside_the_ban_is_refused(tmp_path, ban, review, refused):
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY.read_text().replace("red_card_days = 180", f"red_card_days = {ban}")
                    .replace("review_days_before_end = 28", f"review_days_before_end = {review}"))
    if not refused:
        assert load_policy(path).review_days_before_end == review
        return
    with pytest.raises(ValueError, match=re.escape(f"{path}: review_days_before_end, red_card_days: the review"
                                                   " reminder must fall within the ban")):
        load_policy(path)


@pytest.mark.parametrize("key", ["clinical_agreement_required", "extend_on_reoffence"])
def test_a_policy_file_must_state_the_settings_whose_default_would_drop_a_safeguard(tmp_path, key):
    # Left out, the model's default (off) would ban on one person's approval, or never extend.
    path = tmp_path / "policy.toml"
    path.write_text("\n".join(line for line in DEFAULT_POLICY.read_text().splitlines()
                              if not line.startswith(f"{key} =")))
    with pytest.raises(ValueError, match=f"{key}: missing; state true or false"):
        load_policy(path)


def test_a_bad_policy_file_stops_the_service_as_a_bad_setting_naming_the_file_and_key(tmp_path, monkeypatch):
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY.read_text().replace("window_days = 365", "window_days = 0"))
    monkeypatch.setenv("SANCTIONS_POLICY_FILE", str(path))
    with pytest.raises(ValidationError) as caught:
        SanctionsSettings()
    assert explain(caught.value) == [f"SANCTIONS_POLICY_FILE: {path}: window_days: Input should be greater than or"
                                     " equal to 1"]
    monkeypatch.setenv("SANCTIONS_POLICY_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(ValidationError, match="cannot be read as a TOML policy file"):
        SanctionsSettings()


@pytest.mark.parametrize("days", [366, 400])
def test_a_red_card_never_lasts_more_than_twelve_months(days):
    # 366 days from 1 March ends on 2 March the next year, with no 29 February between.
    with pytest.raises(ValidationError, match="at most 12 months"):
        Policy(version="x", red_card_days=days)
    assert Policy(version="x", red_card_days=365).red_card_days == 365


def test_same_inputs_give_the_same_decisions():
    incs = [record(0), record(1), record(2)]
    first = [(d.decision_id, d.event_type) for d in feed(incs)[1]]
    assert first == [(d.decision_id, d.event_type) for d in feed(incs)[1]]


def test_a_newer_approved_ban_supersedes_an_older_one():
    state, decisions = feed([record(0, category="weapon")])
    state, _ = feed([Approve(decisions[0].decision_id, "r")], state)
    ends = state.active_ban().ends_at
    # An incident after the old ban's end, before the scheduler has expired it.
    state, decisions = feed([record((ends - T0).days + 10, category="weapon")], state)
    assert names(decisions) == [RED]
    state, decisions = feed([Approve(decisions[0].decision_id, "r")], state)
    assert names(decisions) == ["ban_expired", "ban_imposed"] and decisions[0].rule == "ban.superseded"
    assert sum(c.status == CardStatus.ACTIVE for c in state.cards) == 1


EXTENDING = Policy(version="test-ext", extend_on_reoffence=True)


def _banned(policy=EXTENDING):
    """A weapon incident at T0, its red card approved on day 10: a ban running to day 190."""
    state, decisions = feed([record(0, category="weapon")], policy=policy)
    state, _ = feed([Approve(decisions[0].decision_id, "r")], state, policy=policy, now=T0 + timedelta(days=10))
    return state


def test_without_extension_an_incident_during_a_ban_is_only_evidence():
    _, decisions = feed([record(50)], _banned(POLICY))
    assert names(decisions) == ["evidence_attached"]


def test_an_incident_during_a_ban_proposes_an_extension_which_replaces_the_ban_when_approved():
    ban = _banned()
    state, decisions = feed([record(50)], ban, policy=EXTENDING)
    assert names(decisions) == [RED] and decisions[0].rule == "red.extension"
    assert decisions[0].evidence_incident_ids == [ban.cards[0].incident_id, decisions[0].incident_id]
    # While it waits for a reviewer, further incidents attach to it: never two proposals.
    state, attached = feed([record(60)], state, policy=EXTENDING)
    assert names(attached) == ["evidence_attached"] and attached[0].sanction_id == decisions[0].decision_id
    state, approved = feed([Approve(decisions[0].decision_id, "r")], state, policy=EXTENDING,
                           now=T0 + timedelta(days=70))
    assert names(approved) == ["ban_expired", "ban_imposed"] and approved[0].rule == "ban.superseded"
    assert state.active_ban().ends_at == T0 + timedelta(days=250)
    assert sum(c.status == CardStatus.ACTIVE for c in state.cards) == 1
    # Re-deriving the ladder leaves the extension standing; the replaced ban never expires twice.
    assert names(feed([record(80, kind="staff")], state, policy=EXTENDING)[1]) == []
    assert feed([Tick()], state, policy=EXTENDING, now=T0 + timedelta(days=195))[1] == []
    _, ended = feed([Tick()], state, policy=EXTENDING, now=T0 + timedelta(days=250))
    assert names(ended) == ["ban_review_due", "ban_expired"] and ended[-1].sanction_id == decisions[0].decision_id


def _extended(extension_day=50, approved_day=70):
    """`_banned`, then an incident on `extension_day` whose extension is approved on `approved_day`."""
    ban = _banned()
    d = record(extension_day)
    state, decisions = feed([d], ban, policy=EXTENDING, now=days(extension_day))
    state, _ = feed([Approve(decisions[0].decision_id, "r")], state, policy=EXTENDING, now=days(approved_day))
    return state, ban.cards[0], d, decisions[0].decision_id


@pytest.mark.parametrize("undo", ["withdrawn", "appeal upheld", "amended to medical factors"])
def test_when_an_extension_falls_the_ban_it_replaced_runs_on_to_its_own_end(undo):
    state, first, d, extension = _extended()
    if undo == "withdrawn":
        inputs = [IncidentGone(d.incident_id)]
    elif undo == "appeal upheld":
        inputs = [LodgeAppeal(extension, "o"), DecideAppeal(extension, AppealOutcome.UPHELD, "o")]
    else:
        inputs = [IncidentSeen(d.model_copy(update={"medical_factors": True, "revision": 2}), amended=True)]
    state, decisions = feed(inputs, state, policy=EXTENDING, now=days(100))
    [back] = [x for x in decisions if isinstance(x, BanImposed)]
    assert back.rule == "ban.reinstated" and back.incident_id == first.incident_id
    assert (back.starts_at, back.ends_at, back.reviewer) == (days(100), days(190), "r")
    assert card_level(state, EXTENDING, days(101)) == "red_active"
    assert state.active_ban().ends_at == days(190) and state.card(extension).status == CardStatus.RESCINDED
    _, ended = feed([Tick()], state, policy=EXTENDING, now=days(190))
    assert names(ended)[-1] == "ban_expired"


@pytest.mark.parametrize("undo", ["withdrawn", "appeal upheld"])
def test_when_two_extensions_in_turn_fall_the_first_ban_runs_on_to_its_own_end(undo):
    state, first, d, _ = _extended()  # the first ban to day 190, replaced on day 70 by one to day 250
    later = record(80)
    state, proposed = feed([later], state, policy=EXTENDING, now=days(80))
    state, _ = feed([Approve(proposed[0].decision_id, "r")], state, policy=EXTENDING, now=days(90))
    state, decisions = feed([IncidentGone(later.incident_id)], state, policy=EXTENDING, now=days(100))
    [back] = [x for x in decisions if isinstance(x, BanImposed)]
    assert (back.incident_id, back.ends_at) == (d.incident_id, days(250))
    if undo == "withdrawn":
        inputs = [IncidentGone(d.incident_id)]
    else:
        running = state.active_ban().sanction_id
        inputs = [LodgeAppeal(running, "o"), DecideAppeal(running, AppealOutcome.UPHELD, "o")]
    state, decisions = feed(inputs, state, policy=EXTENDING, now=days(110))
    [back] = [x for x in decisions if isinstance(x, BanImposed)]
    assert (back.rule, back.incident_id, back.starts_at, back.ends_at) == ("ban.reinstated", first.incident_id,
                                                                          days(110), days(190))
    assert card_level(state, EXTENDING, days(111)) == "red_active"
    # Neither extension stands, served or not: both were overturned.
    assert {c.status for c in state.cards if c.incident_id in (d.incident_id, later.incident_id)} == {
        CardStatus.RESCINDED}


@pytest.mark.parametrize("reported", [80, 105])
def test_conduct_in_a_ban_brought_back_when_its_extension_fell_still_extends_it(reported):
    # The ban ran from day 10; its extension fell on day 100 and it came back, in force from
    # then. An incident of day 80 was during it all along, whether known before or after.
    state, first, d, _ = _extended()
    during = record(80, reported_at=days(reported))
    if reported < 100:
        state, _ = feed([during], state, policy=EXTENDING, now=days(reported))
    state, decisions = feed([IncidentGone(d.incident_id)], state, policy=EXTENDING, now=days(100))
    if reported >= 100:
        state, decisions = feed([during], state, policy=EXTENDING, now=days(reported))
    [proposed] = [x for x in decisions if x.incident_id == during.incident_id and names([x]) == [RED]]
    assert proposed.rule == "red.extension" and proposed.evidence_incident_ids == [first.incident_id,
                                                                                   during.incident_id]
    assert state.active_ban().starts_at == days(100) and state.active_ban().in_force_since == days(10)
    # Whatever comes next, the ladder read again still has that conduct during the ban.
    state, next_ = feed([record(110)], state, policy=EXTENDING, now=days(110))
    assert names(next_) == ["evidence_attached"] and next_[0].sanction_id == proposed.decision_id
    # Conduct before the ban first began is still no extension of it.
    _, before = feed([record(5, reported_at=days(106))], state, policy=EXTENDING, now=days(106))
    assert RED not in names(before)


def test_a_ban_brought_back_before_bans_kept_their_first_start_still_has_it_read_from_the_ban_it_replaced():
    state, first, d, _ = _extended()
    state, _ = feed([IncidentGone(d.incident_id)], state, policy=EXTENDING, now=days(100))
    back = state.active_ban()
    # As stored by the release before: no in_force_since on the ban brought back.
    state = state.model_copy(update={"cards": tuple(c.model_copy(update={"in_force_since": None})
                                                    if c.sanction_id == back.sanction_id else c
                                                    for c in state.cards)})
    _, late = feed([record(80, reported_at=days(105))], state, policy=EXTENDING, now=days(105))
    assert names(late) == [RED] and late[0].rule == "red.extension"
    # The subject view reads it the same way: a letter about the ban quotes when it began.
    from services.sanctions.handlers import subject_view

    view = subject_view(state, EXTENDING, days(101))
    assert view["active_ban"]["in_force_since"] == days(10).isoformat().replace("+00:00", "Z")
    [shown] = [c for c in view["cards"] if c["sanction_id"] == str(back.sanction_id)]
    assert shown["in_force_since"] == view["active_ban"]["in_force_since"] and shown["starts_at"] != \
        shown["in_force_since"]


def test_a_ban_brought_back_before_bans_kept_their_first_start_and_again_after_keeps_the_first():
    state, first, d, _ = _extended()
    state, _ = feed([IncidentGone(d.incident_id)], state, policy=EXTENDING, now=days(100))
    back = state.active_ban()
    state = state.model_copy(update={"cards": tuple(c.model_copy(update={"in_force_since": None})
                                                    if c.sanction_id == back.sanction_id else c
                                                    for c in state.cards)})
    again = record(110)  # under this release: extended again, and that extension falls too
    state, proposed = feed([again], state, policy=EXTENDING, now=days(110))
    state, _ = feed([Approve(proposed[0].decision_id, "r")], state, policy=EXTENDING, now=days(115))
    state, _ = feed([IncidentGone(again.incident_id)], state, policy=EXTENDING, now=days(130))
    assert state.active_ban().in_force_since == days(10)


def test_a_ban_brought_back_twice_still_began_when_it_first_came_into_force():
    # Ban from day 10; extended on day 70, the extension falls on day 100 (back, from then); it
    # is extended again on day 115, and that extension falls on day 130.
    state, first, d, _ = _extended()
    state, _ = feed([IncidentGone(d.incident_id)], state, policy=EXTENDING, now=days(100))
    again = record(110)
    state, proposed = feed([again], state, policy=EXTENDING, now=days(110))
    state, _ = feed([Approve(proposed[0].decision_id, "r")], state, policy=EXTENDING, now=days(115))
    state, decisions = feed([IncidentGone(again.incident_id)], state, policy=EXTENDING, now=days(130))
    [back] = [x for x in decisions if isinstance(x, BanImposed)]
    assert (back.incident_id, back.starts_at) == (first.incident_id, days(130))
    assert state.active_ban().in_force_since == days(10)
    # Conduct of day 60, reported now, was during the ban as it first began.
    _, late = feed([record(60, reported_at=days(131))], state, policy=EXTENDING, now=days(131))
    assert names(late) == [RED] and late[0].rule == "red.extension"


def test_an_extension_falling_after_the_replaced_ban_would_have_ended_brings_nothing_back():
    state, _, d, _ = _extended()
    state, decisions = feed([IncidentGone(d.incident_id)], state, policy=EXTENDING, now=days(200))
    assert names(decisions) == ["rescinded"] and card_level(state, EXTENDING, days(201)) == "none"


def test_an_extension_extends_the_ban_it_follows_whatever_part_the_person_played_this_time():
    # Banned from non-emergency care as a patient, then abusive while visiting: the extension
    # keeps the care ban, rather than replacing it with a visiting one.
    state, decisions = feed([record(50, kind="visitor")], _banned(), policy=EXTENDING, now=days(50))
    assert names(decisions) == [RED] and decisions[0].rule == "red.extension"
    assert decisions[0].restriction == Restriction.NON_EMERGENCY_CARE
    # Outside a ban, a visitor's red card restricts visiting, as ever.
    _, alone = feed([record(0, kind="visitor", category="weapon")], policy=EXTENDING)
    assert alone[0].restriction == Restriction.VISITING


def test_a_late_report_of_an_incident_in_a_ban_now_over_is_evidence_not_a_new_ban():
    ban = _banned()
    over, _ = feed([Tick()], ban, policy=EXTENDING, now=T0 + timedelta(days=190))
    assert over.active_ban() is None
    _, decisions = feed([record(50)], over, policy=EXTENDING, now=T0 + timedelta(days=200))
    assert names(decisions) == ["evidence_attached"]


def test_an_extension_still_waiting_when_the_ban_runs_out_stays_proposed():
    state, decisions = feed([record(50)], _banned(), policy=EXTENDING)
    state, ended = feed([Tick()], state, policy=EXTENDING, now=T0 + timedelta(days=190))
    assert names(ended)[-1] == "ban_expired" and state.card(decisions[0].decision_id).status == CardStatus.PROPOSED
    # Anything that re-derives the ladder leaves the waiting proposal alone.
    assert names(feed([record(195, kind="staff")], state, policy=EXTENDING)[1]) == []


def test_an_incident_before_the_ban_was_approved_is_evidence_not_an_extension():
    state, decisions = feed([record(0, category="weapon"), record(5)], policy=EXTENDING)
    assert names(decisions) == [RED, "evidence_attached"]
    state, approved = feed([Approve(decisions[0].decision_id, "r")], state, policy=EXTENDING,
                           now=T0 + timedelta(days=10))
    assert names(approved) == ["ban_imposed"]


def test_after_an_extension_is_rejected_the_ban_runs_on_and_the_next_incident_proposes_again():
    state, decisions = feed([record(50)], _banned(), policy=EXTENDING)
    state, rejected = feed([Reject(decisions[0].decision_id, "r")], state, policy=EXTENDING)
    assert names(rejected) == ["red_card_rejected"] and state.active_ban() is not None
    _, again = feed([record(60)], state, policy=EXTENDING)
    assert names(again) == [RED] and again[0].rule == "red.extension"
    # An extension, of the ban in force: its restriction kept, however the person took part this time.
    state, visiting = feed([record(60, kind="visitor")], state, policy=EXTENDING)
    assert visiting[0].rule == "red.extension" and visiting[0].restriction == Restriction.NON_EMERGENCY_CARE
    assert visiting[0].evidence_incident_ids[0] == state.cards[0].incident_id
    state, _ = feed([Approve(visiting[0].decision_id, "r")], state, policy=EXTENDING, now=days(70))
    assert state.active_ban().restriction == Restriction.NON_EMERGENCY_CARE
    # The extension's own extension rejected, the next incident proposes one of it again.
    state, proposed = feed([record(80)], state, policy=EXTENDING, now=days(80))
    state, _ = feed([Reject(proposed[0].decision_id, "r")], state, policy=EXTENDING, now=days(80))
    _, third = feed([record(90, kind="relative")], state, policy=EXTENDING, now=days(90))
    assert names(third) == [RED] and third[0].rule == "red.extension"
    assert (third[0].restriction, third[0].evidence_incident_ids[0]) == (Restriction.NON_EMERGENCY_CARE,
                                                                         visiting[0].incident_id)


@pytest.mark.parametrize("order", ["ban withdrawn after the next proposal", "ban withdrawn before it"])
def test_once_the_ban_behind_a_rejected_extension_falls_the_ladder_counts_on_as_ever(order):
    a, b, c = record(0), record(10), record(20)
    state, decisions = feed([a, b, c], policy=EXTENDING, now=days(20))
    state, _ = feed([Approve(decisions[-1].decision_id, "r")], state, policy=EXTENDING, now=days(25))
    state, proposed = feed([record(50)], state, policy=EXTENDING, now=days(50))
    state, _ = feed([Reject(proposed[0].decision_id, "r")], state, policy=EXTENDING, now=days(51))
    e, gone = record(60), IncidentGone(c.incident_id)
    inputs = [e, gone] if order.endswith("next proposal") else [gone, e]
    state, _ = feed(inputs, state, policy=EXTENDING, now=days(65))
    # No ban to extend: e is the fourth in the count, a red card of its own, and f its evidence.
    [waiting] = [x for x in state.cards if x.status == CardStatus.PROPOSED]
    assert (waiting.incident_id, waiting.rule) == (e.incident_id, "ladder.third_or_later")
    state, decisions = feed([record(70)], state, policy=EXTENDING, now=days(70))
    assert names(decisions) == ["evidence_attached"] and card_level(state, EXTENDING, days(71)) == "red_proposed"


@pytest.mark.parametrize("order", ["extension first", "warning first"])
def test_a_ban_an_extension_replaced_falls_with_its_count_whatever_the_order(order):
    # c, the third, banned on day 25; d's extension of it approved on day 70.
    a, b, c = record(0), record(10), record(20)
    state, decisions = feed([a, b, c], policy=EXTENDING, now=days(20))
    state, _ = feed([Approve(decisions[-1].decision_id, "r")], state, policy=EXTENDING, now=days(25))
    d = record(50)
    state, proposed = feed([d], state, policy=EXTENDING, now=days(50))
    state, _ = feed([Approve(proposed[0].decision_id, "r")], state, policy=EXTENDING, now=days(70))
    gone = [IncidentGone(d.incident_id), IncidentGone(b.incident_id)]
    state, _ = feed(gone if order == "extension first" else gone[::-1], state, policy=EXTENDING, now=days(100))
    # c is now the second: a final warning, not a ban, in either order.
    assert card_level(state, EXTENDING, days(101)) == "yellow_2" and state.active_ban() is None


def _proposed(decisions):
    return [d for d in decisions if isinstance(d, RedCardProposed)][-1].decision_id


def test_an_extension_approved_after_the_ban_was_brought_back_stands_through_the_next_report():
    weapon = record(0, category="weapon")
    state, decisions = feed([weapon], policy=EXTENDING, now=days(0))
    state, _ = feed([Approve(_proposed(decisions), "r")], state, policy=EXTENDING, now=days(1))
    d, e = record(50), record(70)
    state, decisions = feed([d], state, policy=EXTENDING, now=days(50))
    state, _ = feed([Approve(_proposed(decisions), "r")], state, policy=EXTENDING, now=days(60))
    state, _ = feed([e], state, policy=EXTENDING, now=days(70))
    # d withdrawn: the first ban is back (from day 80), and e proposes its extension.
    state, decisions = feed([IncidentGone(d.incident_id)], state, policy=EXTENDING, now=days(80))
    state, approved = feed([Approve(_proposed(decisions), "r")], state, policy=EXTENDING, now=days(81))
    extension = state.active_ban()
    assert (extension.incident_id, extension.ends_at) == (e.incident_id, days(261))
    # The next report leaves the ban people imposed alone, and proposes to extend it in turn.
    state, decisions = feed([record(90)], state, policy=EXTENDING, now=days(90))
    assert names(decisions) == [RED] and decisions[0].evidence_incident_ids[0] == e.incident_id
    assert state.active_ban() == extension


def test_an_earlier_report_does_not_bring_a_rejected_proposal_back_over_a_ban_imposed_since():
    a, b, c, d = record(0), record(10), record(20), record(25)
    state, decisions = feed([a, b, c])
    rejected = decisions[-1].decision_id
    state, _ = feed([d], state, now=days(25))
    state, _ = feed([Reject(rejected, "r")], state, now=days(26))
    state, decisions = feed([IncidentGone(b.incident_id)], state, now=days(27))  # d is now the third
    state, _ = feed([Approve(_proposed(decisions), "r")], state, now=days(28))
    ban = state.active_ban()
    assert ban.incident_id == d.incident_id
    # Reported since, an earlier incident makes c the third again: the ban on d stands, c is its evidence.
    state, decisions = feed([record(5, reported_at=days(30))], state, now=days(30))
    assert state.active_ban() == ban and card_level(state, POLICY, days(31)) == "red_active"
    assert "rescinded" not in [n for n, x in zip(names(decisions), decisions, strict=True)
                               if x.incident_id == d.incident_id]


@pytest.mark.parametrize("extension", ["served", "overturned after the ban's own end"])
def test_a_ban_served_through_its_extension_stands_when_an_earlier_incident_goes(extension):
    a, b, c = record(0), record(10), record(20)
    state, decisions = feed([a, b, c], policy=EXTENDING, now=days(20))
    state, _ = feed([Approve(_proposed(decisions), "r")], state, policy=EXTENDING, now=days(25))
    d = record(50)
    state, decisions = feed([d], state, policy=EXTENDING, now=days(50))
    state, _ = feed([Approve(_proposed(decisions), "r")], state, policy=EXTENDING, now=days(60))
    state, _ = feed([Tick()], state, policy=EXTENDING, now=days(250))  # the extension ran its course
    if extension != "served":  # or, past the end c's own ban was set (day 205), it is overturned
        state, _ = feed([IncidentGone(d.incident_id)], state, policy=EXTENDING, now=days(255))
    _, decisions = feed([IncidentGone(a.incident_id)], state, policy=EXTENDING, now=days(260))
    # b's warning moves down; no final warning for c, whose ban was served through d's.
    assert names(decisions) == ["rescinded", "rescinded", Y1]
    assert {x.incident_id for x in decisions} == {a.incident_id, b.incident_id}


def test_an_extension_falls_with_the_ban_it_extended_whatever_red_card_comes_before_it():
    b, x = record(0, category="weapon"), record(10, category="weapon")
    state, decisions = feed([b], policy=EXTENDING, now=days(0))
    first = _proposed(decisions)
    state, _ = feed([x], state, policy=EXTENDING, now=days(10))  # evidence for b's proposal
    state, _ = feed([Approve(first, "r")], state, policy=EXTENDING, now=days(30))
    c = record(50)
    state, decisions = feed([c], state, policy=EXTENDING, now=days(50))
    state, _ = feed([Approve(_proposed(decisions), "r")], state, policy=EXTENDING, now=days(51))
    # b found clinical: its ban falls, x's weapon is a red card of its own, and c's extension of
    # b's ban falls with it, whatever a reviewer then does with x's.
    state, _ = feed([IncidentSeen(b.model_copy(update={"medical_factors": True, "revision": 2}), amended=True)],
                    state, policy=EXTENDING, now=days(70))
    assert state.active_ban() is None
    [waiting] = [card for card in state.cards if card.status == CardStatus.PROPOSED]
    assert waiting.incident_id == x.incident_id
    state, _ = feed([Reject(waiting.sanction_id, "r")], state, policy=EXTENDING, now=days(71))
    assert state.active_ban() is None and card_level(state, EXTENDING, days(72)) != "red_active"


def test_of_two_bans_whose_extensions_fell_the_latest_begun_runs_on():
    a = record(0, category="weapon")
    state, decisions = feed([a], policy=EXTENDING, now=days(0))
    state, _ = feed([Approve(_proposed(decisions), "r")], state, policy=EXTENDING, now=days(1))
    b, c, d = record(50), record(60), record(70)
    for incident, day in ((b, 50), (c, 60)):
        state, decisions = feed([incident], state, policy=EXTENDING, now=days(day))
        state, _ = feed([Approve(_proposed(decisions), "r")], state, policy=EXTENDING, now=days(day + 1))
    state, _ = feed([IncidentSeen(b.model_copy(update={"medical_factors": True, "revision": 2}), amended=True)],
                    state, policy=EXTENDING, now=days(65))
    state, decisions = feed([d], state, policy=EXTENDING, now=days(70))
    state, _ = feed([Approve(_proposed(decisions), "r")], state, policy=EXTENDING, now=days(71))
    state, _ = feed([IncidentGone(d.incident_id)], state, policy=EXTENDING, now=days(80))
    # c's ban (to day 241) runs on, not a's (to day 181), and nothing comes back after a gap.
    assert (state.active_ban().incident_id, state.active_ban().ends_at) == (c.incident_id, days(241))
    state, decisions = feed([Tick()], state, policy=EXTENDING, now=days(190))
    assert decisions == [] and state.active_ban().incident_id == c.incident_id


def test_a_proposal_given_more_evidence_stands_with_the_yes_it_has():
    two = Policy(version="two-people", clinical_agreement_required=True)
    a, c = record(10), record(30, category="weapon")
    state, decisions = feed([a, c], policy=two, now=days(30))
    proposal = decisions[-1].decision_id
    state, _ = feed([Approve(proposal, "security")], state, policy=two, now=days(31))
    # An earlier incident reported since: the weapon's proposal stands, its approval with it.
    state, decisions = feed([record(5, reported_at=days(32))], state, policy=two, now=days(32))
    assert names(decisions) == ["rescinded", Y1, Y2] and state.card(proposal).status == CardStatus.PROPOSED
    state, imposed = feed([Agree(proposal, "clinician")], state, policy=two, now=days(33))
    assert names(imposed) == ["ban_imposed"]


def test_without_approval_an_extension_replaces_the_ban_at_once():
    automatic = Policy(version="auto-ext", extend_on_reoffence=True, approval_required=False)
    state, decisions = feed([record(0, category="weapon"), record(50)], policy=automatic)
    assert names(decisions) == [RED, "ban_imposed", RED, "ban_expired", "ban_imposed"]
    assert sum(c.status == CardStatus.ACTIVE for c in state.cards) == 1


def test_the_shipped_policy_proposes_extensions():
    assert load_policy(DEFAULT_POLICY).extend_on_reoffence


def test_the_subject_view_shows_no_ban_once_its_end_has_passed_before_the_scheduler_marks_it():
    from services.sanctions.handlers import subject_view

    state = _banned(POLICY)  # a ban from day 10 to day 190
    running = subject_view(state, POLICY, days(189))
    assert running["card_level"] == "red_active" and running["active_ban"]["ends_at"] == "2026-09-07T09:30:00Z"
    over = subject_view(state, POLICY, days(190))
    assert (over["card_level"], over["active_ban"]) == ("none", None)
    assert state.active_ban() is not None  # not yet marked expired: the view does not wait for that


def _level_scenarios():
    """(name, state, days after T0 the level is read, level) for the subject view's card level."""
    y1, _ = feed([record(0)])
    y2, _ = feed([record(0), record(300)])
    proposed, decisions = feed([record(0), record(30), record(60)])
    banned, _ = feed([Approve(decisions[-1].decision_id, "r")], proposed, now=T0 + timedelta(days=61))
    expired, _ = feed([Tick()], banned, now=banned.active_ban().ends_at)
    rescinded, decisions = feed([record(0)])
    rescinded, _ = feed([IncidentGone(decisions[0].incident_id)], rescinded)
    return [
        ("no card", rescinded, 1, "none"),
        ("first warning", y1, 100, "yellow_1"),
        ("first warning, its incident a day short of a year old", y1, 364, "yellow_1"),
        ("first warning lapsed with its incident leaving the window", y1, 365, "none"),
        ("final warning", y2, 301, "yellow_2"),
        ("final warning outlives the first", y2, 400, "yellow_2"),
        ("both warnings lapsed", y2, 700, "none"),
        ("red card awaiting a reviewer, however long", proposed, 700, "red_proposed"),
        ("ban in force", banned, 100, "red_active"),
        ("ban past its end before the scheduler marks it", banned, 61 + 180, "yellow_2"),
        ("ban expired, warnings still in the window", expired, 300, "yellow_2"),
        ("ban expired, everything lapsed", expired, 500, "none"),
    ]


@pytest.mark.parametrize(("state", "day", "level"), [case[1:] for case in _level_scenarios()],
                         ids=[case[0] for case in _level_scenarios()])
def test_the_card_level_counts_only_cards_in_force(state, day, level):
    assert card_level(state, POLICY, T0 + timedelta(days=day)) == level


def test_a_warning_is_in_force_until_its_incident_leaves_the_window():
    state, decisions = feed([record(0)])
    [card] = state.cards
    assert in_force(card, state, POLICY, T0 + timedelta(days=364))
    assert not in_force(card, state, POLICY, T0 + timedelta(days=365))


def _lapse_scenarios():
    """(name, inputs, days after T0 of the tick, decisions of the tick, statuses after it)."""
    withdrawn = record(0)
    return [
        ("a day short of the window", [record(0)], 364, [], ["issued"]),
        ("on the day its incident leaves the window", [record(0)], 365, ["warning_lapsed"], ["lapsed"]),
        ("the first of two lapses, the final warning stands", [record(0), record(300)], 400,
         ["warning_lapsed"], ["lapsed", "issued"]),
        ("both lapse in one round, oldest first", [record(0), record(300)], 700,
         ["warning_lapsed", "warning_lapsed"], ["lapsed", "lapsed"]),
        ("a rescinded warning never lapses", [withdrawn, IncidentGone(withdrawn.incident_id)], 400, [],
         ["rescinded"]),
        ("a proposed red card does not lapse", [record(0, category="weapon")], 700, [], ["proposed"]),
    ]


@pytest.mark.parametrize(("inputs", "day", "expected", "statuses"), [c[1:] for c in _lapse_scenarios()],
                         ids=[c[0] for c in _lapse_scenarios()])
def test_the_scheduler_lapses_each_warning_once_when_its_incident_leaves_the_window(inputs, day, expected, statuses):
    state, _ = feed(inputs)
    now = T0 + timedelta(days=day)
    state, decisions = feed([Tick()], state, now=now)
    assert names(decisions) == expected and [c.status for c in state.cards] == statuses
    for d in decisions:
        incident = state.incident(d.incident_id)
        assert d.lapsed_at == incident.occurred_at + POLICY.window and d.rule == "warning.lapsed"
    assert feed([Tick()], state, now=now)[1] == []  # said once


def test_a_lapsed_warning_keeps_its_place_so_the_next_incident_starts_the_ladder_again():
    state, _ = feed([record(0)])
    state, _ = feed([Tick()], state, now=T0 + timedelta(days=400))
    state, decisions = feed([record(410)], state, now=T0 + timedelta(days=410))
    assert names(decisions) == ["yellow_card_issued:1"]
    assert [c.status for c in state.cards] == ["lapsed", "issued"]
    assert card_level(state, POLICY, T0 + timedelta(days=411)) == "yellow_1"


TWO_PEOPLE = Policy(version="two-people", clinical_agreement_required=True)


def _proposed_ban():
    state, decisions = feed([record(0, category="weapon")], policy=TWO_PEOPLE)
    return state, decisions[0].decision_id


@pytest.mark.parametrize(("steps", "decided", "reviewer", "clinical_lead"), [
    ([("approve", "sec-1"), ("agree", "doc-1")], ["red_card_endorsed", "ban_imposed"], "sec-1", "doc-1"),
    ([("agree", "doc-1"), ("approve", "sec-1")], ["red_card_endorsed", "ban_imposed"], "sec-1", "doc-1"),
    ([("approve", "sec-1")], ["red_card_endorsed"], None, None),
    ([("agree", "doc-1"), ("reject", "sec-2")], ["red_card_endorsed", "red_card_rejected"], None, None),
], ids=["approved then agreed", "agreed then approved", "approved only: no ban yet", "agreed, then rejected"])
def test_a_ban_needs_the_security_managers_approval_and_the_clinical_leads_agreement(steps, decided, reviewer,
                                                                                     clinical_lead):
    state, sanction = _proposed_ban()
    commands = {"approve": lambda who: Approve(sanction, who), "agree": lambda who: Agree(sanction, who),
                "reject": lambda who: Reject(sanction, who)}
    state, decisions = feed([commands[verb](who) for verb, who in steps], state, policy=TWO_PEOPLE)
    assert names(decisions) == decided
    bans = [d for d in decisions if isinstance(d, BanImposed)]
    assert [(b.reviewer, b.clinical_lead) for b in bans] == ([(reviewer, clinical_lead)] if reviewer else [])
    endorsed = decisions[0]
    assert endorsed.endorsed_by == steps[0][1] and endorsed.awaiting != endorsed.endorsement
    assert endorsed.rule == f"red.endorsed.{endorsed.endorsement}"


@pytest.mark.parametrize(("steps", "refusal"), [
    ([("approve", "sec-1"), ("approve", "sec-2")], "awaits the clinical lead"),
    ([("agree", "doc-1"), ("agree", "doc-2")], "awaits the security manager"),
    ([("approve", "sec-1"), ("agree", "sec-1")], "two people decide a ban"),
    ([("agree", "doc-1"), ("approve", "doc-1")], "two people decide a ban"),
], ids=["approved twice", "agreed twice", "one person both ways, approving first", "one person both ways, agreeing first"])
def test_one_person_cannot_give_both_yeses_or_the_same_one_twice(steps, refusal):
    state, sanction = _proposed_ban()
    (first, by), (second, again) = steps
    verbs = {"approve": Approve, "agree": Agree}
    state, _ = feed([verbs[first](sanction, by)], state, policy=TWO_PEOPLE)
    with pytest.raises(Conflict, match=refusal):
        feed([verbs[second](sanction, again)], state, policy=TWO_PEOPLE)


def test_agreement_is_refused_where_the_policy_does_not_ask_for_it():
    state, decisions = feed([record(0, category="weapon")])
    with pytest.raises(Conflict, match="does not ask"):
        feed([Agree(decisions[0].decision_id, "doc-1")], state)


def test_an_incident_while_a_ban_awaits_its_second_yes_is_evidence_for_it():
    state, sanction = _proposed_ban()
    state, _ = feed([Approve(sanction, "sec-1")], state, policy=TWO_PEOPLE)
    state, decisions = feed([record(5)], state, policy=TWO_PEOPLE)
    assert names(decisions) == ["evidence_attached"]
    state, decisions = feed([Agree(sanction, "doc-1")], state, policy=TWO_PEOPLE)
    assert names(decisions) == ["ban_imposed"] and state.active_ban().agreed_by == "doc-1"


def test_an_appeal_upheld_on_a_red_card_a_reviewer_rejected_leaves_it_rejected():
    state, decisions = feed([record(0, category="weapon")])
    red = decisions[0].decision_id
    state, decisions = feed([LodgeAppeal(red, "o"), Reject(red, "r"), DecideAppeal(red, AppealOutcome.UPHELD, "o")],
                            state)
    assert names(decisions) == ["appeal_lodged", "red_card_rejected", "appeal_decided"]
    assert state.card(red).status == CardStatus.REJECTED


def test_the_subject_s_version_moves_with_what_a_reviewer_sees_and_only_with_it():
    incs = [record(0, category="weapon")]
    state, decisions = feed(incs)
    red = decisions[-1].decision_id
    seen = state.version()
    assert feed([], state=state)[0].version() == seen  # nothing new: the same version
    later = record(2, category="weapon")
    with_evidence, _ = feed([later], state=state, now=T0 + timedelta(days=2))
    amended, _ = feed([IncidentSeen(incs[0].model_copy(update={"harm": "severe", "revision": 2}))], state=state)
    withdrawn, _ = feed([IncidentGone(incs[0].incident_id)], state=state)
    rejected, _ = feed([Reject(red, "lead-1")], state=state)
    versions = {seen, with_evidence.version(), amended.version(), withdrawn.version(), rejected.version()}
    assert len(versions) == 5
    # Where a ban needs two people, the first one's yes changes nothing but who has said yes.
    two = Policy(version="two-people", clinical_agreement_required=True)
    state, decisions = feed([record(0, category="weapon")], policy=two)
    endorsed, _ = feed([Approve(decisions[-1].decision_id, "sec-1")], state=state, policy=two)
    assert endorsed.card(decisions[-1].decision_id).status == CardStatus.PROPOSED
    assert endorsed.version() != state.version()


def test_an_incident_dated_minutes_ahead_and_weighed_with_the_proposal_stays_evidence_after_approval():
    # Reported at T0, dated T0 + 4 min (within the skew intake allows), while the red card waits.
    state, decisions = feed([record(0, category="weapon")], policy=EXTENDING)
    ahead = record(4 / (24 * 60), reported_at=T0)
    state, attached = feed([ahead], state, policy=EXTENDING, now=T0 + timedelta(minutes=1))
    state, _ = feed([Approve(decisions[0].decision_id, "r")], state, policy=EXTENDING, now=T0 + timedelta(minutes=2))
    # Any later event re-derives the ladder: the incident the reviewers weighed proposes nothing.
    _, later = feed([record(-30)], state, policy=EXTENDING, now=T0 + timedelta(minutes=10))
    assert names(attached) == ["evidence_attached"] and "red_card_proposed" not in names(later)


@pytest.mark.parametrize("who", ["sec-1", "doc-1"])
def test_whoever_approved_or_agreed_a_ban_cannot_decide_the_appeal_against_it(who):
    policy = POLICY.model_copy(update={"clinical_agreement_required": True})
    state, decisions = feed([record(0, category="weapon")], policy=policy)
    ban = decisions[0].decision_id
    state, _ = feed([Approve(ban, "sec-1"), Agree(ban, "doc-1"), LodgeAppeal(ban, "officer-1")], state, policy=policy)
    with pytest.raises(Conflict, match="cannot decide the appeal"):
        feed([DecideAppeal(ban, AppealOutcome.DISMISSED, who)], state, policy=policy)
    state, decisions = feed([DecideAppeal(ban, AppealOutcome.DISMISSED, "officer-2")], state, policy=policy)
    assert names(decisions) == ["appeal_decided"] and state.card(ban).appeal == AppealState.DISMISSED


def test_a_state_a_later_release_saved_with_fields_this_one_lacks_still_loads():
    state, _ = feed([record(0, category="weapon")])
    saved = state.model_dump(mode="json")
    saved["cards"][0]["from_a_later_release"] = "x"
    saved["incidents"][0]["also_later"] = 1
    saved["later_still"] = []
    assert SubjectState.model_validate(saved) == state
