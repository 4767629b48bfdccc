"""Event contracts: envelope round trip, strict decoding, checked-in JSON Schemas."""

from __future__ import annotations

import json

import jsonschema
import pytest
from pydantic import ValidationError

from schemas.events import EVENT_TYPES, decode, encode, envelope
from schemas.export import JSON_DIR, generated, stale
from schemas.incidents import StaffAffected
from tests.factories import incident


def test_checked_in_json_schemas_match_the_models():
    assert stale() == [], "run `vanda schemas export` and commit schemas/json"


def test_event_round_trips_through_structured_cloudevents_json():
    event = envelope(incident(), source="/vanda/intake", subject="s")
    decoded = decode(encode(event))
    assert decoded == event and decoded.specversion == "1.0"
    assert decoded.dataschema.endswith("incident.reported.v1.schema.json")


def test_new_ids_are_unique_and_ordered_by_creation():
    # Stores keyed by these ids rely on the order to insert at one end of their index.
    import uuid

    from schemas.envelope import new_event_id, new_id

    ids = [new_id() for _ in range(10_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert {i.version for i in ids} == {7}
    event_ids = [new_event_id() for _ in range(1_000)]
    assert event_ids == sorted(event_ids) and all(uuid.UUID(e).version == 7 for e in event_ids)


def test_encoding_with_the_payload_already_written_gives_the_same_bytes():
    import uuid

    from schemas.envelope import utcnow
    from schemas.incidents import IncidentReport
    from services.intake.domain import accept
    from vanda.synthetic import incidents

    now = utcnow()
    for raw in incidents(300, seed=5):
        data = accept(IncidentReport.model_validate(raw), incident_id=uuid.uuid4(), subject_id="s", now=now).event
        event = envelope(data, source="/vanda/intake", subject="s")
        assert encode(event, data.model_dump_json()) == encode(event)


def test_encoded_payload_validates_against_its_published_schema():
    event = envelope(incident(), source="/vanda/intake", subject="s")
    schema = json.loads((JSON_DIR / "incident.reported.v1.schema.json").read_text())
    jsonschema.validate(json.loads(encode(event))["data"], schema)


def test_riddor_flag_is_left_out_of_events_until_set_and_then_meets_the_published_schema():
    schema = json.loads((JSON_DIR / "incident.reported.v1.schema.json").read_text())
    plain = json.loads(encode(envelope(incident(), source="/vanda/intake", subject="s")))["data"]
    # Events without it are byte-for-byte what subscribers of the earlier schema accept.
    assert all("over_7_day_incapacity" not in s for s in plain["staff_affected"])
    off = {"staff_group": "ambulance", "ethnic_group": "white", "injured": True, "over_7_day_incapacity": True}
    flagged = incident().model_copy(update={"staff_affected": [StaffAffected.model_validate(off)]})
    raw = encode(envelope(flagged, source="/vanda/intake", subject="s"))
    data = json.loads(raw)["data"]
    assert data["staff_affected"] == [off | {"wishes_police_action": False}]
    jsonschema.validate(data, schema)
    assert decode(raw).data.staff_affected[0].over_7_day_incapacity is True


@pytest.mark.parametrize(("raw", "message"), [
    (b"not json", "not valid JSON"),
    (b"[1]", "not a JSON object"),
    (b'{"type": "uk.nhs.vanda.incident.misspelt.v1"}', "unknown event type 'uk.nhs.vanda.incident.misspelt.v1'"),
    # Not an event type's shape: the sender's own text, never repeated into a dead-letter header.
    (b'{"type": "nope"}', r"unknown event type \(not an event type's name\)$"),
    (b'{"type": "Jane Smith 9434765919"}', r"unknown event type \(not an event type's name\)$"),
    (b'{"type": "uk.nhs.9434765919.v1"}', r"unknown event type \(not an event type's name\)$"),
    (b'{"type": {"a": 1}}', "unknown event type of JSON type object"),
    # Nested past what writing it out as text can recurse through: refused like any other.
    (b'{"type": ' + b"[" * 1000 + b"]" * 1000 + b"}", "unknown event type of JSON type array"),
])
def test_decode_rejects_bad_messages_with_a_reason(raw, message):
    with pytest.raises(ValueError, match=message):
        decode(raw)


def test_decode_names_the_bad_field():
    body = json.loads(encode(envelope(incident(), source="/x", subject="s")))
    body["data"]["category"] = "shouting"
    with pytest.raises(ValueError, match="category"):
        decode(json.dumps(body))


def test_every_event_type_has_a_schema_file():
    # One per event payload, plus the envelope and intake's report.
    assert len(generated()) == len(EVENT_TYPES) + 2


def test_openapi_examples_are_valid_requests_with_only_fake_data():
    from schemas import incidents

    cases = [(incidents.IncidentReport, incidents.REPORT_EXAMPLE),
             (incidents.IncidentAmendment, incidents.AMENDMENT_EXAMPLE),
             (incidents.IncidentWithdrawal, incidents.WITHDRAWAL_EXAMPLE)]
    for model, example in cases:
        assert model.model_json_schema()["examples"] == [example]
        model.model_validate(example)
    # The 999 range is the NHS's test range: no real patient has such a number.
    assert incidents.REPORT_EXAMPLE["perpetrator"]["nhs_number"].startswith("999")


def test_staff_characteristics_are_left_out_of_events_until_stated_and_then_meet_the_published_schema():
    schema = json.loads((JSON_DIR / "incident.reported.v1.schema.json").read_text())
    stated = {"staff_group": "ambulance", "ethnic_group": "white", "disability": "disabled", "sex": "male",
              "gender_identity": "same_as_registered_at_birth", "sexual_orientation": "gay_or_lesbian",
              "religion": "no_religion"}
    unstated = {"staff_group": "ambulance", "ethnic_group": "white", "disability": "not_stated", "sex": "not_stated"}
    event = incident().model_copy(update={"staff_affected": [StaffAffected.model_validate(s) for s in (stated, unstated)]})
    raw = encode(envelope(event, source="/vanda/intake", subject="s"))
    data = json.loads(raw)["data"]
    base = {"injured": False, "wishes_police_action": False}
    assert data["staff_affected"] == [stated | base, {"staff_group": "ambulance", "ethnic_group": "white"} | base]
    jsonschema.validate(data, schema)
    assert decode(raw).data.staff_affected[0].sexual_orientation == "gay_or_lesbian"
    with pytest.raises(ValidationError, match="religion"):
        StaffAffected.model_validate(stated | {"religion": "pastafarian"})


def test_every_event_type_has_the_shape_an_unknown_one_is_named_by():
    from schemas.events import EVENT_TYPE_LIKE

    assert all(EVENT_TYPE_LIKE.fullmatch(kind) for kind in EVENT_TYPES)


def test_an_event_time_without_an_offset_is_refused_naming_the_field():
    # A naive time could be compared with no aware one: refused at decoding, named, not a
    # TypeError deep in the card policy that dead-letters the event with no field.
    body = json.loads(encode(envelope(incident(), source="/x", subject="s")))
    body["data"]["reported_at"] = "2025-03-10T12:00:00"
    with pytest.raises(ValueError, match="reported_at") as refused:
        decode(json.dumps(body))
    assert "timezone" in str(refused.value)
    body = json.loads(encode(envelope(incident(), source="/x", subject="s")))
    body["time"] = "2025-03-10T12:00:00"
    with pytest.raises(ValueError, match="time"):
        decode(json.dumps(body))
