"""Facts from events: amendments replace, withdrawals exclude, no identifier ever reaches a fact."""

from __future__ import annotations

import uuid
from dataclasses import astuple, fields
from datetime import timedelta

import pytest

from schemas.incidents import IncidentAmended, IncidentWithdrawn, StaffAffected
from schemas.reporting import ReferralCriterion as C
from schemas.sanctions import BanImposed, EvidenceAttached, YellowCardIssued
from services.reporting import adapters
from services.reporting.domain.facts import NeverSeen, Staff, decision_fact, incident_fact, next_fact
from services.reporting.domain.police import criteria_met, status
from tests.factories import T0, incident

SUBJECT = "sub_" + "a" * 40


def amended(inc, revision=2, **changes):
    body = inc.model_dump() | changes | {"revision": revision, "changed_fields": list(changes), "amended_at": T0}
    body.pop("schema_version", None)
    return IncidentAmended(**body)


def withdrawn(inc):
    return IncidentWithdrawn(incident_id=inc.incident_id, subject_id=inc.subject_id, reason="duplicate",
                             withdrawn_at=T0)


def test_incident_fact_keeps_categories_and_the_pseudonym_only():
    fact = incident_fact(incident())
    assert fact.category == "verbal_abuse" and fact.subject_id == SUBJECT and fact.revision == 1
    assert fact.staff[0].ethnic_group == "asian" and not fact.withdrawn
    # No field of a fact can hold a name, an NHS number or narrative: the event has none.
    names = " ".join(f.name for f in fields(fact))
    assert "nhs" not in names and "narrative" not in names


def test_amendment_replaces_the_fact():
    inc = incident()
    first = next_fact(None, inc)
    second = next_fact(first, amended(inc, category="weapon", police={"informed": True, "crime_reference": "CR1"}))
    assert second.category == "weapon" and second.revision == 2 and second.crime_reference == "CR1"
    # The time of report is the report's, kept through amendments: footage's period runs from it.
    assert first.reported_at == second.reported_at == inc.reported_at is not None


def test_older_revision_arriving_late_does_not_overwrite():
    inc = incident()
    third = next_fact(None, amended(inc, revision=3, harm="severe"))
    assert next_fact(third, amended(inc, revision=2, harm="low")).harm == "severe"
    assert next_fact(third, inc) == third


def test_withdrawal_is_final():
    inc = incident()
    gone = next_fact(next_fact(None, inc), withdrawn(inc))
    assert gone.withdrawn
    assert next_fact(gone, amended(inc, revision=5, harm="low")) == gone


def test_withdrawing_an_incident_reporting_never_saw_is_refused():
    with pytest.raises(NeverSeen, match="never reported"):
        next_fact(None, withdrawn(incident()))


def test_projection_is_idempotent():
    inc = incident()
    once = next_fact(None, inc)
    assert next_fact(once, inc) == once


def test_decision_facts_name_their_card():
    yellow = YellowCardIssued(decision_id=uuid.uuid4(), subject_id=SUBJECT, perpetrator_kind="patient",
                              incident_id=uuid.uuid4(), evidence_incident_ids=[], rule="r", policy_version="p",
                              organisation="RZA", site="S", occurred_at=T0, decided_at=T0, level=2)
    fact = decision_fact(yellow)
    assert fact.kind == "yellow_card_2" and fact.sanction_id == yellow.decision_id
    card = uuid.uuid4()
    ban = BanImposed(**yellow.model_dump(exclude={"level", "schema_version"}) | {
        "decision_id": uuid.uuid4(), "sanction_id": card, "reviewer": "r1", "restriction": "visiting",
        "starts_at": T0, "ends_at": T0 + timedelta(days=180)})
    fact = decision_fact(ban)
    assert (fact.kind, fact.sanction_id, fact.ends_at) == ("ban_imposed", card, T0 + timedelta(days=180))
    # Evidence attached names the red card's incident; the fact names the incident attached,
    # whose footage then rests on the card.
    attached = uuid.uuid4()
    evidence = EvidenceAttached(**yellow.model_dump(exclude={"level", "schema_version"}) | {
        "decision_id": uuid.uuid4(), "sanction_id": card, "evidence_incident_ids": [attached]})
    fact = decision_fact(evidence)
    assert (fact.kind, fact.sanction_id, fact.incident_id) == ("evidence_attached", card, attached)


@pytest.mark.parametrize(("category", "aggravation", "wishes", "expected"), [
    ("physical_assault", [], False, [C.PHYSICAL_ASSAULT]),
    ("sexual_misconduct", [], False, [C.SEXUAL_MISCONDUCT]),
    ("weapon", [], False, [C.WEAPON]),
    ("verbal_abuse", ["race"], False, [C.HATE_AGGRAVATION]),
    ("hate_incident", [], False, [C.HATE_AGGRAVATION]),
    ("verbal_abuse", [], True, [C.STAFF_WISH_POLICE_ACTION]),
    ("verbal_abuse", [], False, []),
    ("physical_assault", ["religion"], True, [C.HATE_AGGRAVATION, C.PHYSICAL_ASSAULT, C.STAFF_WISH_POLICE_ACTION]),
])
def test_default_police_referral_criteria(category, aggravation, wishes, expected):
    inc = incident(category=category)
    body = inc.model_dump(exclude={"schema_version"}) | {"hate_aggravation": aggravation, "staff_affected": [
        {"staff_group": "ambulance", "ethnic_group": "white", "wishes_police_action": wishes}]}
    assert criteria_met(incident_fact(type(inc)(**body))) == sorted(expected)


def test_criteria_are_configurable():
    fact = incident_fact(incident(category="physical_assault"))
    assert criteria_met(fact, {C.WEAPON}) == []


def test_referral_status_moves_pending_referred_closed():
    inc = incident(category="weapon")
    fact = next_fact(None, inc)
    assert status(fact) == "pending"
    fact = next_fact(fact, amended(inc, police={"informed": True, "referred_at": T0.isoformat()}))
    assert status(fact) == "referred"
    fact = next_fact(fact, amended(inc, revision=3, police={"informed": True, "outcome": "charged"}))
    assert status(fact) == "closed" and astuple(fact)


def test_staff_characteristics_reach_the_fact_and_are_stored_only_when_stated():
    stated = {"staff_group": "ambulance", "ethnic_group": "black", "disability": "disabled", "religion": "muslim"}
    event = incident().model_copy(update={"staff_affected": [StaffAffected.model_validate(stated),
                                                             StaffAffected(staff_group="ambulance", ethnic_group="white")]})
    fact = incident_fact(event)
    assert (fact.staff[0].disability, fact.staff[0].religion, fact.staff[0].sex) == ("disabled", "muslim", "not_stated")
    row = dict(zip(adapters.INCIDENT_COLUMNS, adapters._incident_row(fact), strict=True))
    # A member of staff with nothing stated is stored exactly as before the characteristics existed.
    assert row["staff"][1] == {"staff_group": "ambulance", "ethnic_group": "white", "injured": False,
                               "wishes_police_action": False, "over_7_day_incapacity": False}
    assert row["staff"][0]["disability"] == "disabled" and "sex" not in row["staff"][0]
    assert adapters.incident_of(row) == fact  # and read back, unstated ones as not stated
    older = row | {"staff": [{"staff_group": "ambulance", "ethnic_group": "white", "injured": True,
                              "wishes_police_action": False}]}
    assert adapters.incident_of(older).staff[0] == Staff("ambulance", "white", True, False)
