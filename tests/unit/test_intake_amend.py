"""Amending a stored incident: only given fields change, the contract rules still hold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from schemas.incidents import IncidentAmendment, IncidentReport, IncidentReported, WithdrawalReason
from services.intake.domain import InvalidAmendment, amend, as_reported, withdrawn
from services.intake.entrypoints import expected_revision
from tests.factories import T0, TEST_NHS_NUMBER, incident, report

NOW = T0 + timedelta(days=3)
STAFF = {"staff_group": "nursing_midwifery", "ethnic_group": "asian", "injured": False, "wishes_police_action": False}


def current(**overrides) -> IncidentReported:
    """A stored incident: verbal abuse, no harm, police informed without a crime reference."""
    base = incident(category="verbal_abuse", harm="none").model_dump()
    police = {"informed": True, "crime_reference": None}
    return IncidentReported.model_validate(base | {"police": police} | overrides)


def amended(body: dict, *, stored: IncidentReported | None = None, revision: int = 1):
    return amend(stored or current(), IncidentAmendment.model_validate(body), revision=revision, now=NOW)


@pytest.mark.parametrize(("body", "changed", "check"), [
    ({"harm": "severe"}, ["harm"], lambda e: e.harm == "severe"),
    ({"category": "physical_assault"}, ["category"], lambda e: e.category == "physical_assault"),
    ({"category": "sexual_misconduct", "sexual_assault": True}, ["category", "sexual_assault"],
     lambda e: e.sexual_assault is True),
    ({"perpetrator": {"medical_factors": True}}, ["perpetrator.medical_factors"],
     lambda e: e.perpetrator.medical_factors is True and e.perpetrator.age_band == "18_to_64"),
    ({"perpetrator": {"age_band": "under_18"}}, ["perpetrator.age_band"],
     lambda e: e.perpetrator.age_band == "under_18" and e.perpetrator.medical_factors is False),
    ({"police": {"informed": True, "crime_reference": "CR/123/26"}}, ["police.crime_reference"],
     lambda e: e.police.crime_reference == "CR/123/26"),
    ({"police": {"informed": False}}, ["police.informed"], lambda e: e.police.informed is False),
    ({"hate_aggravation": ["race", "religion"]}, ["hate_aggravation"],
     lambda e: e.hate_aggravation == ["race", "religion"]),
    # RIDDOR's over-7-day incapacity is known a week on: the staff list is replaced whole.
    ({"staff_affected": [STAFF | {"injured": True, "over_7_day_incapacity": True}]}, ["staff_affected"],
     lambda e: e.staff_affected[0].over_7_day_incapacity and e.staff_affected[0].ethnic_group == "asian"),
    ({"staff_affected": [STAFF, STAFF | {"staff_group": "ambulance"}]}, ["staff_affected"],
     lambda e: [s.staff_group for s in e.staff_affected] == ["nursing_midwifery", "ambulance"]),
    ({"harm": "low", "perpetrator": {"medical_factors": True, "age_band": "65_and_over"}},
     ["harm", "perpetrator.medical_factors", "perpetrator.age_band"], lambda e: e.harm == "low"),
    # Reported to HSE under RIDDOR, once the trust has done so.
    ({"riddor_reported_at": (T0 + timedelta(days=9)).isoformat()}, ["riddor_reported_at"],
     lambda e: e.riddor_reported_at == T0 + timedelta(days=9)),
    # Unchanged fields given alongside a change are not reported as changed.
    ({"harm": "moderate", "category": "verbal_abuse"}, ["harm"], lambda e: e.category == "verbal_abuse"),
])
def test_each_amendable_field_changes_alone_and_is_named_exactly(body, changed, check):
    event = amended(body)
    assert event is not None and event.changed_fields == changed and check(event)


def test_police_details_appear_where_there_were_none():
    stored = current(police=None)
    event = amended({"police": {"informed": True, "crime_reference": "CR1"}}, stored=stored)
    assert event.changed_fields == ["police"] and event.police.crime_reference == "CR1"


@pytest.mark.parametrize("body", [
    {}, {"harm": "none"}, {"category": "verbal_abuse", "sexual_assault": False},
    {"perpetrator": {}}, {"perpetrator": {"medical_factors": False, "age_band": "18_to_64"}},
    {"police": {"informed": True}}, {"hate_aggravation": []}, {"staff_affected": [STAFF]},
    {"harm": None, "perpetrator": None},  # null means "not given", never "blank it"
])
def test_an_amendment_that_changes_nothing_is_none(body):
    assert amended(body) is None


@pytest.mark.parametrize(("stored", "body", "fields"), [
    (current(), {"sexual_assault": True}, ["sexual_assault"]),
    (current(), {"category": "physical_assault", "sexual_assault": True}, ["category", "sexual_assault"]),
    # The rule broken from the other side: the category moves away from the assault flag.
    (current(category="sexual_misconduct", sexual_assault=True), {"category": "verbal_abuse"}, ["category"]),
])
def test_cross_field_rule_is_rerun_and_names_the_amended_fields(stored, body, fields):
    with pytest.raises(InvalidAmendment) as err:
        amended(body, stored=stored)
    assert [field for field, _ in err.value.errors] == fields
    assert all("sexual_misconduct" in reason for _, reason in err.value.errors)


def test_identity_site_and_time_stay_as_reported_and_revision_counts_up():
    stored = current()
    event = amended({"harm": "severe"}, stored=stored, revision=4)
    kept = ("incident_id", "subject_id", "site", "organisation", "occurred_at", "reported_at",
            "source_system", "staff_affected", "location_type", "body_worn_camera_used")
    assert all(getattr(event, name) == getattr(stored, name) for name in kept)
    assert event.perpetrator.kind == stored.perpetrator.kind and event.perpetrator.identified
    assert event.revision == 5 and event.amended_at == NOW


@pytest.mark.parametrize("field", ["site", "organisation", "occurred_at", "subject_id", "narrative"])
def test_fixed_fields_cannot_be_amended(field):
    with pytest.raises(ValueError, match="Extra inputs"):
        IncidentAmendment.model_validate({field: "x"})


def test_perpetrator_identity_cannot_be_amended():
    with pytest.raises(ValueError, match="Extra inputs"):
        IncidentAmendment.model_validate({"perpetrator": {"nhs_number": TEST_NHS_NUMBER}})


def test_stored_version_is_the_amended_incident_without_the_bookkeeping():
    event = amended({"harm": "severe"})
    stored = as_reported(event)
    assert isinstance(stored, IncidentReported) and stored.harm == "severe"
    assert {"revision", "changed_fields", "amended_at"}.isdisjoint(stored.model_dump())
    # A second amendment builds on the stored version.
    again = amend(stored, IncidentAmendment(harm="severe", hate_aggravation=["race"]), revision=2, now=NOW)
    assert again.changed_fields == ["hate_aggravation"] and again.revision == 3


def test_withdrawal_carries_only_ids_and_the_reason():
    stored = current()
    event = withdrawn(stored, WithdrawalReason.DUPLICATE, now=NOW)
    assert event.model_dump() == {"schema_version": 1, "incident_id": stored.incident_id,
                                  "subject_id": stored.subject_id, "reason": "duplicate", "withdrawn_at": NOW}


@pytest.mark.parametrize(("body", "loc"), [
    ({"staff_affected": [STAFF | {"over_7_day_incapacity": True}]}, ("staff_affected", 0, "over_7_day_incapacity")),
    ({"staff_affected": []}, ("staff_affected",)),
])
def test_a_staff_amendment_that_breaks_a_rule_is_refused_naming_the_field(body, loc):
    with pytest.raises(ValidationError) as err:
        IncidentAmendment.model_validate(body)
    assert [e["loc"] for e in err.value.errors()] == [loc]


@pytest.mark.parametrize(("header", "revision"), [
    (None, None), ("*", None), (' * ', None), ('"3"', 3), ("3", 3), (' "12" ', 12),
])
def test_if_match_names_the_revision_an_amendment_was_made_against(header, revision):
    assert expected_revision(header) == revision


@pytest.mark.parametrize("header", ['W/"3"', '"abc"', '"3", "4"', "", '"-1"'])
def test_an_if_match_that_names_no_single_revision_is_refused_naming_the_header(header):
    with pytest.raises(RequestValidationError) as err:
        expected_revision(header)
    assert [e["loc"] for e in err.value.errors()] == [("header", "If-Match")]


def test_a_riddor_report_dated_before_the_incident_is_refused_naming_the_field():
    with pytest.raises(InvalidAmendment) as err:
        amended({"riddor_reported_at": (T0 - timedelta(days=1)).isoformat()})
    assert err.value.errors == [("riddor_reported_at", "Value error, must not be before occurred_at")]
    with pytest.raises(ValidationError) as refused:
        IncidentReport(**report(occurred_at=T0.isoformat(), riddor_reported_at=(T0 - timedelta(days=1)).isoformat()))
    assert [e["loc"] for e in refused.value.errors()] == [("riddor_reported_at",)]


@pytest.mark.parametrize(("when", "reason"), [
    (T0 - timedelta(days=1), "must not be before occurred_at"),
    (datetime.now(UTC) + timedelta(days=2), "must not be in the future"),
])
def test_a_police_referral_dated_before_the_incident_or_in_the_future_is_refused(when, reason):
    with pytest.raises(InvalidAmendment) as err:
        amended({"police": {"informed": True, "referred_at": when.isoformat()}})
    assert err.value.errors == [("police.referred_at", reason)]
    body = report(occurred_at=T0.isoformat(), police={"informed": True, "referred_at": when.isoformat()})
    with pytest.raises(ValidationError, match=reason) as refused:
        IncidentReport(**body)
    # Named as the amendment names it: the date, not the whole police object.
    assert [e["loc"] for e in refused.value.errors()] == [("police", "referred_at")]
    next_day = (T0 + timedelta(days=1)).isoformat()
    fine = report(occurred_at=T0.isoformat(), police={"informed": True, "referred_at": next_day})
    assert IncidentReport(**fine).police.referred_at == T0 + timedelta(days=1)


def test_a_police_amendment_changes_only_the_fields_it_gives():
    stored = current(police={"informed": True, "crime_reference": "CAD/123", "referred_at": (T0 + timedelta(hours=2))})
    event = amended({"police": {"outcome": "charged"}}, stored=stored)
    assert event.changed_fields == ["police.outcome"]
    assert (event.police.crime_reference, event.police.referred_at) == ("CAD/123", T0 + timedelta(hours=2))
    # A field given as null, or a blank reference, is cleared; nothing else is.
    for cleared in ({"crime_reference": None}, {"crime_reference": " "}):
        event = amended({"police": cleared}, stored=stored)
        assert event.changed_fields == ["police.crime_reference"] and event.police.crime_reference is None
        assert event.police.informed is True and event.police.referred_at == T0 + timedelta(hours=2)


def test_police_details_given_for_the_first_time_must_say_whether_the_police_were_informed():
    with pytest.raises(InvalidAmendment) as err:
        amended({"police": {"outcome": "charged"}}, stored=current(police=None))
    assert [field for field, _ in err.value.errors] == ["police.informed"]


@pytest.mark.parametrize("body", [
    {"hate_aggravation": ["religion", "race"]},
    {"hate_aggravation": ["race", "religion", "race"]},
    {"perpetrator": {"vulnerabilities": ["homelessness", "care_leaver"]}},
])
def test_the_same_set_of_flags_in_another_order_changes_nothing(body):
    base = current().model_dump(mode="json")
    stored = current(hate_aggravation=["race", "religion"],
                     perpetrator=base["perpetrator"] | {"vulnerabilities": ["care_leaver", "homelessness"]})
    assert amended(body, stored=stored) is None
