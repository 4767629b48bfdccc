"""Amending and withdrawing an incident over HTTP publishes the correction, on real servers."""

from __future__ import annotations

import json
import uuid

import asyncpg
import httpx
import pytest

from tests.conftest import source_key
from tests.factories import report
from tests.integration.kafka_reader import read_until

pytestmark = pytest.mark.integration

# Test-range NHS numbers (999...) with valid check digits, apart from test_pipeline's.
AMEND_NHS, POLICE_NHS, WITHDRAW_NHS, INVALID_NHS = "9990000107", "9990000115", "9990000123", "9990000131"
LOCAL_NHS, SHARED_NHS = "9990005001", "9990005028"
ALL_NHS = (AMEND_NHS, POLICE_NHS, WITHDRAW_NHS, INVALID_NHS, LOCAL_NHS, SHARED_NHS)
NARRATIVE = "Confidential narrative about the ward"


def patient(nhs: str) -> dict:
    return {"kind": "patient", "nhs_number": nhs, "medical_factors": False, "age_band": "18_to_64"}


async def call(pipeline, method: str, path: str, body: dict | None = None, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30, headers=source_key(pipeline)) as client:
        return await client.request(method, path, json=body, headers={k.replace("_", "-"): v for k, v in headers.items()})


async def submit(pipeline, **overrides) -> dict:
    body = report(narrative=NARRATIVE, **overrides)
    response = await call(pipeline, "POST", "/v1/incidents", body)
    assert response.status_code == 202, response.text
    return response.json()


async def published(pipeline, incident_id: str, count: int, timeout: float = 60) -> list[tuple[bytes, dict]]:
    """(key, event) of every incidents-topic record about one incident, once `count` have arrived."""
    records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.incidents.v1",
                               lambda r: incident_id.encode() in (r.value or b""), count, timeout=timeout)
    for record in records:
        assert NARRATIVE.encode() not in record.value and b"nhs_number" not in record.value
        assert not any(nhs.encode() in record.value for nhs in ALL_NHS)
    return [(r.key, json.loads(r.value)) for r in records]


def kind(event: dict) -> str:
    return event["type"].split(".")[-2]


async def test_amendment_publishes_the_corrected_incident_under_the_same_key(pipeline):
    receipt = await submit(pipeline, perpetrator=patient(AMEND_NHS))
    incident_id, path = receipt["incident_id"], f"/v1/incidents/{receipt['incident_id']}"

    first = await call(pipeline, "PATCH", path, {"harm": "severe"})
    assert first.status_code == 200 and first.json() == {
        "incident_id": incident_id, "revision": 2, "changed_fields": ["harm"], "status": "amended"}
    again = await call(pipeline, "PATCH", path, {"harm": "severe", "category": "verbal_abuse"})
    assert again.status_code == 200 and again.json() == {
        "incident_id": incident_id, "revision": 2, "changed_fields": [], "status": "unchanged"}
    later = await call(pipeline, "PATCH", path, {"perpetrator": {"medical_factors": True}})
    assert later.json()["revision"] == 3 and later.json()["changed_fields"] == ["perpetrator.medical_factors"]

    # Same key, so in order on one partition: the unchanged PATCH would show up between the two.
    events = await published(pipeline, incident_id, 3)
    assert [(kind(e), e["data"].get("revision")) for _, e in events] == [
        ("reported", None), ("amended", 2), ("amended", 3)]
    assert {key for key, _ in events} == {receipt["subject_id"].encode()}
    amended = events[2][1]
    assert amended["subject"] == receipt["subject_id"] and amended["source"] == "/vanda/intake"
    # Each amendment carries the whole incident, earlier corrections included.
    assert amended["data"]["harm"] == "severe" and amended["data"]["perpetrator"]["medical_factors"] is True
    assert amended["data"]["site"] == events[0][1]["data"]["site"]


async def test_a_crime_reference_can_arrive_later(pipeline):
    receipt = await submit(pipeline, perpetrator=patient(POLICE_NHS))
    path = f"/v1/incidents/{receipt['incident_id']}"
    informed = await call(pipeline, "PATCH", path, {"police": {"informed": True}})
    assert informed.json()["changed_fields"] == ["police"]
    reference = await call(pipeline, "PATCH", path,
                           {"police": {"informed": True, "crime_reference": "CR/0042/26"}})
    assert reference.json() == {"incident_id": receipt["incident_id"], "revision": 3,
                                "changed_fields": ["police.crime_reference"], "status": "amended"}
    # The perpetrator's NHS number in it, by mistake, would leave intake with it: refused.
    spaced = f"{POLICE_NHS[:3]} {POLICE_NHS[3:6]} {POLICE_NHS[6:]}"
    leaked = await call(pipeline, "PATCH", path, {"police": {"crime_reference": f"NHS {spaced}"}})
    assert leaked.status_code == 422 and POLICE_NHS[3:] not in leaked.text
    [error] = leaked.json()["errors"]
    assert error == {"field": "police.crime_reference",
                     "reason": "holds the perpetrator's NHS number, which never leaves intake"}
    events = await published(pipeline, receipt["incident_id"], 4, timeout=8)
    assert len(events) == 3
    assert events[2][1]["data"]["police"] == {"informed": True, "crime_reference": "CR/0042/26",
                                              "referred_at": None, "outcome": None}


async def test_a_source_s_local_id_given_beside_the_nhs_number_is_refused_in_its_amended_crime_reference(pipeline):
    # The sealed identity holds the NHS number that keys the person; each local id given with
    # it (one per trust, say) is kept as a keyed digest only, which still tells it in free text.
    first, second = (f"{p}{uuid.uuid4().int % 10**6:06d}" for p in ("RX", "RY"))
    receipt = await submit(pipeline, perpetrator=patient(LOCAL_NHS) | {"local_id": first})
    # Another trust's system's id in a batch whose later line for the same person gives none: both kept.
    batch = "\n".join(json.dumps(report(organisation="RYJ", source_system="ryj-datix",
                                        perpetrator=patient(LOCAL_NHS) | extra))
                      for extra in ({"local_id": second}, {}))
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30, headers=source_key(pipeline)) as client:
        lines = await client.post("/v1/incidents:batch", content=batch.encode(),
                                  headers={"Content-Type": "application/x-ndjson"})
    assert [r["status"] for r in lines.json()["results"]] == ["accepted", "accepted"], lines.text
    mine = f"/v1/incidents/{receipt['incident_id']}"
    theirs = f"/v1/incidents/{lines.json()['results'][0]['incident_id']}"
    for path, local in ((mine, first), (theirs, second)):
        leaked = await call(pipeline, "PATCH", path,
                            {"police": {"informed": True, "crime_reference": f"MRN {local[:4].lower()}-{local[4:]}"}})
        assert leaked.status_code == 422 and local[2:] not in leaked.text
        assert leaked.json()["errors"] == [{"field": "police.crime_reference",
                                            "reason": "holds the perpetrator's local id, which never leaves intake"}]
    # Another source's id is not this one's to learn of: refused, it would say the text held
    # it, and a few thousand guesses would find it. It is taken as any other text. (A source
    # is bound to the caller's API key; the organisation a report names is not.)
    other = await call(pipeline, "PATCH", mine, {"police": {"informed": True, "crime_reference": f"MRN {second}"}})
    assert other.status_code == 200, other.text
    fine = await call(pipeline, "PATCH", mine, {"police": {"informed": True, "crime_reference": "CR/0043/26"}})
    assert fine.status_code == 200, fine.text
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        rows = await conn.fetch("SELECT digest, length, source_system FROM intake.local_ids WHERE subject_id = $1",
                                receipt["subject_id"])
    finally:
        await conn.close()
    assert sorted((r["length"], r["source_system"]) for r in rows) == [(8, "datix"), (8, "ryj-datix")]
    assert not any(first in r["digest"] for r in rows)


async def test_a_local_id_two_sources_gave_is_refused_for_both(pipeline):
    """Each knows it already: a refusal tells neither anything. Given one after the other, and
    in one batch beside the first source's again (one statement may not write a row twice)."""
    shared, together = (f"{p}{uuid.uuid4().int % 10**6:06d}" for p in ("RS", "RT"))
    paths = []
    for source in ("datix", "rza-ed"):
        receipt = await submit(pipeline, source_system=source, perpetrator=patient(SHARED_NHS) | {"local_id": shared})
        paths.append((f"/v1/incidents/{receipt['incident_id']}", shared))
    await submit(pipeline, source_system="datix", perpetrator=patient(SHARED_NHS) | {"local_id": together})
    batch = "\n".join(json.dumps(report(source_system=source,
                                        perpetrator=patient(SHARED_NHS) | {"local_id": together}))
                      for source in ("datix", "ryj-datix"))
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30, headers=source_key(pipeline)) as client:
        lines = (await client.post("/v1/incidents:batch", content=batch.encode(),
                                   headers={"Content-Type": "application/x-ndjson"})).json()["results"]
    paths += [(f"/v1/incidents/{line['incident_id']}", together) for line in lines]
    for path, local in paths:
        leaked = await call(pipeline, "PATCH", path, {"police": {"informed": True, "crime_reference": f"X{local}"}})
        assert leaked.status_code == 422, leaked.text


async def test_withdrawal_is_published_once_and_stops_amendments(pipeline):
    receipt = await submit(pipeline, perpetrator=patient(WITHDRAW_NHS))
    incident_id, path = receipt["incident_id"], f"/v1/incidents/{receipt['incident_id']}"

    first = await call(pipeline, "POST", f"{path}/withdraw")
    assert first.status_code == 202 and first.json() == {"incident_id": incident_id, "status": "withdrawn"}
    second = await call(pipeline, "POST", f"{path}/withdraw", {"reason": "duplicate"})
    assert second.status_code == 200 and second.json() == first.json()
    refused = await call(pipeline, "PATCH", path, {"harm": "low"})
    assert refused.status_code == 409 and refused.json()["error"] == "withdrawn"

    # A later incident for the same subject shares the partition, so once it is published
    # anything the second withdrawal or the refused amendment had queued would be too.
    sentinel = await submit(pipeline, perpetrator=patient(WITHDRAW_NHS))
    await published(pipeline, sentinel["incident_id"], 1)
    events = await published(pipeline, incident_id, 3, timeout=5)
    assert [kind(e) for _, e in events] == ["reported", "withdrawn"]
    key, withdrawn = events[1]
    assert key == receipt["subject_id"].encode() and withdrawn["subject"] == receipt["subject_id"]
    assert withdrawn["data"]["reason"] == "entered_in_error" and withdrawn["data"]["withdrawn_at"]


async def test_unidentified_incident_is_corrected_under_its_incident_id(pipeline):
    receipt = await submit(pipeline, perpetrator={"kind": "unknown"})
    incident_id = receipt["incident_id"]
    assert receipt["subject_id"] is None
    amended = await call(pipeline, "PATCH", f"/v1/incidents/{incident_id}", {"harm": "low"})
    withdrawn = await call(pipeline, "POST", f"/v1/incidents/{incident_id}/withdraw",
                           {"reason": "not_an_incident"})
    assert amended.status_code == 200 and withdrawn.status_code == 202
    events = await published(pipeline, incident_id, 3)
    assert [kind(e) for _, e in events] == ["reported", "amended", "withdrawn"]
    assert {key for key, _ in events} == {incident_id.encode()}
    assert events[2][1]["data"]["reason"] == "not_an_incident"


async def test_a_withdrawn_incident_retracts_its_police_referral(pipeline):
    receipt = await submit(pipeline, perpetrator={"kind": "unknown"}, category="weapon")
    incident_id = receipt["incident_id"]

    async def said(count: int, timeout: float = 60) -> list[dict]:
        records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.police-referrals.v1",
                                   lambda r: r.key == incident_id.encode(), count, timeout=timeout)
        return [json.loads(r.value) for r in records]

    [prompt] = await said(1)
    assert kind(prompt) == "police_referral_required" and prompt["data"]["criteria"] == ["weapon"]
    withdrawn = await call(pipeline, "POST", f"/v1/incidents/{incident_id}/withdraw", {"reason": "duplicate"})
    assert withdrawn.status_code == 202
    events = await said(2)
    assert [kind(e) for e in events] == ["police_referral_required", "police_referral_retracted"]
    assert events[1]["data"]["reason"] == "withdrawn" and events[1]["data"]["already_referred"] is False
    assert NARRATIVE not in json.dumps(events)


async def test_unknown_incident_is_404(pipeline):
    path = f"/v1/incidents/{uuid.uuid4()}"
    for method, url, body in (("PATCH", path, {"harm": "low"}), ("POST", f"{path}/withdraw", None)):
        response = await call(pipeline, method, url, body)
        assert response.status_code == 404 and response.json()["error"] == "not_found"


async def test_invalid_amendment_is_422_naming_the_field_and_publishes_nothing(pipeline):
    receipt = await submit(pipeline, perpetrator=patient(INVALID_NHS))
    path = f"/v1/incidents/{receipt['incident_id']}"
    assault = await call(pipeline, "PATCH", path, {"sexual_assault": True})
    assert assault.status_code == 422 and assault.json()["error"] == "validation_failed"
    assert [e["field"] for e in assault.json()["errors"]] == ["sexual_assault"]
    fixed = await call(pipeline, "PATCH", path, {"site": "Elsewhere", "harm": "mild"})
    assert fixed.status_code == 422 and {e["field"] for e in fixed.json()["errors"]} == {"site", "harm"}

    both = {"category": "sexual_misconduct", "sexual_assault": True}
    valid = await call(pipeline, "PATCH", path, both)
    assert valid.json()["revision"] == 2
    events = await published(pipeline, receipt["incident_id"], 2)
    assert [kind(e) for _, e in events] == ["reported", "amended"]
    assert events[1][1]["data"]["changed_fields"] == ["category", "sexual_assault"]


async def test_the_reporting_system_reads_an_incident_back_and_amends_the_revision_it_read(pipeline):
    receipt = await submit(pipeline, perpetrator=patient(AMEND_NHS), source_ref=f"read-{uuid.uuid4()}")
    path = f"/v1/incidents/{receipt['incident_id']}"
    read = await call(pipeline, "GET", path)
    assert read.status_code == 200 and read.headers["ETag"] == '"1"', read.text
    body = read.json()
    assert (body["revision"], body["status"], body["incident"]["subject_id"]) == (1, "active", receipt["subject_id"])
    assert body["source_ref"].startswith("read-") and body["incident"]["staff_affected"][0]["ethnic_group"] == "black"
    assert NARRATIVE not in read.text and AMEND_NHS not in read.text and "nhs_number" not in read.text

    # Two editors read revision 1 and each replace the staff list: the second is told, not silently lost.
    staff = body["incident"]["staff_affected"] + [{"staff_group": "ambulance", "ethnic_group": "white"}]
    first = await call(pipeline, "PATCH", path, {"staff_affected": staff}, If_Match=read.headers["ETag"])
    assert first.status_code == 200 and first.headers["ETag"] == '"2"', first.text
    stale = await call(pipeline, "PATCH", path, {"staff_affected": staff[:1]}, If_Match='"1"')
    assert stale.status_code == 412 and stale.headers["ETag"] == '"2"' and stale.json()["revision"] == 2
    assert [e["field"] for e in stale.json()["errors"]] == ["If-Match"]
    bad = await call(pipeline, "PATCH", path, {"harm": "low"}, If_Match="yesterday")
    assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["If-Match"], bad.text
    again = (await call(pipeline, "GET", path)).json()
    assert again["revision"] == 2 and len(again["incident"]["staff_affected"]) == 2 and again["incident"]["harm"] == "none"
    anyone = await call(pipeline, "PATCH", path, {"harm": "low"}, If_Match="*")
    assert anyone.status_code == 200 and anyone.json()["revision"] == 3

    assert (await call(pipeline, "POST", f"{path}/withdraw", {"reason": "duplicate"})).status_code == 202
    gone = (await call(pipeline, "GET", path)).json()
    assert (gone["status"], gone["withdrawal_reason"], gone["revision"]) == ("withdrawn", "duplicate", 3)
    missing = await call(pipeline, "GET", f"/v1/incidents/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
