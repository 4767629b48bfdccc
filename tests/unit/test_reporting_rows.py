"""Fact rows read back for a board: the same facts, sharing the values they repeat."""

from __future__ import annotations

import copy
import uuid
from datetime import timedelta

from schemas.incidents import IncidentReported
from schemas.sanctions import BanImposed, YellowCardIssued
from services.reporting.adapters import (
    DECISION_COLUMNS,
    INCIDENT_COLUMNS,
    _incident_row,
    decision_of,
    incident_of,
)
from services.reporting.domain.facts import decision_fact, incident_fact
from tests.factories import T0, incident


def fresh(value):
    """A copy made of new objects, as each row read from the database is."""
    if isinstance(value, str):
        return "".join(list(value))
    return copy.deepcopy(value)


def incident_row(fact) -> dict:
    return {c: fresh(v) for c, v in zip(INCIDENT_COLUMNS, _incident_row(fact), strict=True)}


def staffed(**overrides):
    body = incident(**overrides).model_dump(exclude={"schema_version"})
    body["staff_affected"] = [{"staff_group": "nursing_midwifery", "ethnic_group": "black", "injured": True}]
    body["hate_aggravation"] = ["race"]
    return IncidentReported(**body)


def test_an_incident_read_back_is_the_fact_written():
    fact = incident_fact(staffed(category="physical_assault"))
    assert incident_of(incident_row(fact)) == fact


def test_incidents_read_back_share_their_repeated_values():
    first, second = (incident_of(incident_row(incident_fact(staffed()))) for _ in range(2))
    assert first.incident_id != second.incident_id
    for name in ("subject_id", "organisation", "site", "category", "harm", "perpetrator_kind", "staff",
                 "hate_aggravation", "vulnerabilities"):
        assert getattr(first, name) is getattr(second, name), name
    assert first.staff[0] is second.staff[0] and first.staff[0].ethnic_group == "black"


def yellow() -> YellowCardIssued:
    return YellowCardIssued(decision_id=uuid.uuid4(), subject_id="sub_" + "b" * 40, perpetrator_kind="patient",
                            incident_id=uuid.uuid4(), evidence_incident_ids=[], rule="r", policy_version="p",
                            organisation="RZA", site="Riverside Hospital", occurred_at=T0, decided_at=T0, level=1)


def decision_row(fact) -> dict:
    return {c: fresh(getattr(fact, c)) for c in DECISION_COLUMNS}


def test_decisions_read_back_are_the_facts_written_and_share_their_values():
    card = decision_fact(yellow())
    ban = decision_fact(BanImposed(**yellow().model_dump(exclude={"level", "schema_version"}) | {
        "sanction_id": card.sanction_id, "reviewer": "r1", "restriction": "visiting",
        "starts_at": T0, "ends_at": T0 + timedelta(days=180)}))
    card_read, ban_read = decision_of(decision_row(card)), decision_of(decision_row(ban))
    assert (card_read, ban_read) == (card, ban)
    assert card_read.site is ban_read.site and card_read.subject_id is ban_read.subject_id
    assert card_read.sanction_id is card_read.decision_id  # a card's own decision holds one id
    assert ban_read.sanction_id == card.sanction_id != ban_read.decision_id
