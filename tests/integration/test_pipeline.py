"""An HTTP report travels through intake, Kafka, sanctions and reporting, on real servers."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import bearer, source_key
from tests.factories import report
from tests.integration.kafka_reader import poll, read_until

pytestmark = pytest.mark.integration

# Test-range NHS numbers (999...) with valid check digits, one per scenario.
LADDER_NHS, GUARD_NHS, POISON_NHS = "9990000018", "9990000026", "9990000034"
SUPPRESSED = {"suppressed": True}


def subject_of(subject_id: str):
    return lambda r: r.key == subject_id.encode()


async def post(pipeline, body: dict) -> httpx.Response:
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30, headers=source_key(pipeline)) as client:
        return await client.post("/v1/incidents", json=body)


async def get_json(url: str, path: str, headers: dict[str, str] | None = None, **params) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as client:
        return await client.get(path, params=params)


def patient(nhs: str, **extra) -> dict:
    return {"kind": "patient", "nhs_number": nhs, "medical_factors": False, "age_band": "18_to_64"} | extra


def tenth_of(back: int) -> datetime:
    """10:00 on the 10th of the month `back` months before this one."""
    now = datetime.now(UTC)
    months = now.year * 12 + now.month - 1 - back
    return datetime(months // 12, months % 12 + 1, 10, 10, tzinfo=UTC)


async def test_three_incidents_for_one_patient_give_yellow_yellow_red(pipeline):
    site = f"Ladder site {uuid.uuid4().hex[:8]}"
    receipts = []
    for back in (5, 4, 3):  # three months in a row, well within the year the ladder counts
        response = await post(pipeline, report(
            site=site, occurred_at=tenth_of(back).isoformat(), perpetrator=patient(LADDER_NHS)))
        assert response.status_code == 202, response.text
        receipts.append(response.json())
    subject = receipts[0]["subject_id"]
    assert {r["subject_id"] for r in receipts} == {subject} and subject.startswith("sub_")
    assert all(r["status"] == "accepted" for r in receipts)

    records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.sanctions.v1", subject_of(subject), 3)
    events = [json.loads(r.value) for r in records]
    assert [(e["type"].split(".")[-2], e["data"].get("level")) for e in events] == [
        ("yellow_card_issued", 1), ("yellow_card_issued", 2), ("red_card_proposed", None)]
    assert events[2]["data"]["evidence_incident_ids"] == [r["incident_id"] for r in receipts]
    assert all(e["specversion"] == "1.0" and e["subject"] == subject for e in events)

    view = (await get_json(pipeline["SANCTIONS_URL"], f"/v1/subjects/{subject}",
                           bearer(pipeline, "sanction_approver"))).json()
    assert view["card_level"] == "red_proposed" and view["active_ban"] is None
    assert len(view["history"]) == 3 and "never" in view["emergency_care"]

    def counted(r):
        body = r.json()
        return (body["totals"]["breakdowns"].get("sanctions", {}).get("red_card_proposed") == SUPPRESSED
                and all(m["incidents"] == SUPPRESSED for m in body["months"][:3]))

    # Incidents count in the month they happened, cards in the month they were decided (now).
    # One to four is below the disclosure threshold: the board shows such a count as suppressed
    # (zero is shown), so this checks where the counts landed; exact figures are in test_reporting_*.
    this_month = datetime.now(UTC).strftime("%Y-%m")
    board = await poll(lambda: get_json(pipeline["REPORTING_URL"], "/v1/metrics/board",
                                        bearer(pipeline, "board_viewer"),
                                        **{"from": tenth_of(5).strftime("%Y-%m"), "to": this_month, "site": site}), counted)
    body = board.json()
    assert [m["incidents"] for m in body["months"][:4]] == [SUPPRESSED, SUPPRESSED, SUPPRESSED, 0]
    assert body["totals"]["breakdowns"]["sanctions"] == {
        "yellow_card_1": SUPPRESSED, "yellow_card_2": SUPPRESSED, "red_card_proposed": SUPPRESSED}
    assert body["totals"]["breakdowns"]["incidents_by_category"] == {"verbal_abuse": SUPPRESSED}


async def test_published_incident_carries_no_identifier_or_narrative(pipeline):
    body = report(perpetrator=patient(LADDER_NHS), narrative="Secret narrative text")
    receipt = (await post(pipeline, body)).json()
    records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.incidents.v1",
                               lambda r: receipt["incident_id"].encode() in (r.value or b""), 1)
    assert len(records) == 1
    raw = records[0].value
    assert LADDER_NHS.encode() not in raw and b"Secret narrative" not in raw
    assert records[0].key == receipt["subject_id"].encode()
    assert dict(records[0].headers)["content-type"] == b"application/cloudevents+json"


async def test_same_source_ref_twice_is_one_incident(pipeline):
    body = report(perpetrator=patient(LADDER_NHS))
    first, second = await post(pipeline, body), await post(pipeline, body)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json() and second.headers["Idempotent-Replayed"] == "true"
    # The same moment written with another offset is the same report; another moment is not.
    when = datetime.fromisoformat(body["occurred_at"])
    moved = body | {"occurred_at": when.astimezone(timezone(timedelta(hours=1))).isoformat()}
    assert moved["occurred_at"] != body["occurred_at"]
    third = await post(pipeline, moved)
    assert third.status_code == 202 and third.json() == first.json()
    later = (when + timedelta(minutes=1)).isoformat()
    assert (await post(pipeline, body | {"occurred_at": later})).status_code == 409
    changed = await post(pipeline, body | {"harm": "severe"})
    assert changed.status_code == 409 and changed.json()["incident_id"] == first.json()["incident_id"]
    records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.incidents.v1",
                               lambda r: first.json()["incident_id"].encode() in (r.value or b""), 2, timeout=8)
    assert len(records) == 1


async def test_invalid_report_is_422_and_nothing_is_published(pipeline):
    ref = f"bad-{uuid.uuid4()}"
    response = await post(pipeline, report(source_ref=ref, category="shouting"))
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "category"
    records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.incidents.v1",
                               lambda r: ref.encode() in (r.value or b""), 1, timeout=5)
    assert records == []


async def test_guards_request_clinical_review_and_safeguarding_not_cards(pipeline):
    medical = await post(pipeline, report(perpetrator=patient(GUARD_NHS, medical_factors=True)))
    child = await post(pipeline, report(perpetrator=patient(GUARD_NHS, age_band="under_18")))
    subject = medical.json()["subject_id"]
    assert child.json()["subject_id"] == subject
    records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.sanctions.v1", subject_of(subject), 2)
    types = sorted(json.loads(r.value)["type"].split(".")[-2] for r in records)
    assert types == ["clinical_review_requested", "safeguarding_referral_requested"]


async def test_poison_message_goes_to_dlq_and_the_partition_moves_on(pipeline):
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    first = (await post(pipeline, report(perpetrator=patient(POISON_NHS)))).json()
    subject = first["subject_id"]
    await read_until(bootstrap, "vanda.sanctions.v1", subject_of(subject), 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        # Same key as the subject, so it lands on the same partition as its incidents.
        await producer.send_and_wait("vanda.incidents.v1", b'{"type": "garbage"', key=subject.encode())
    finally:
        await producer.stop()
    await post(pipeline, report(perpetrator=patient(POISON_NHS)))
    cards = await read_until(bootstrap, "vanda.sanctions.v1", subject_of(subject), 2)
    assert [json.loads(r.value)["data"]["level"] for r in cards] == [1, 2]
    dead = await read_until(bootstrap, "vanda.incidents.v1.dlq", subject_of(subject), 2)
    headers = [dict(r.headers) for r in dead]
    # Both sanctions and reporting read the topic, and each dead-letters it once.
    assert len(dead) == 2 and all(h["vanda-dlq-source-topic"] == b"vanda.incidents.v1" for h in headers)
    assert all(h["vanda-dlq-reason"] == b"unparseable" and h["vanda-dlq-error"] for h in headers)


async def test_each_service_is_ready_and_exposes_prometheus_metrics(pipeline):
    for name in ("INTAKE_URL", "SANCTIONS_URL", "REPORTING_URL"):
        ready = await get_json(pipeline[name], "/readyz")
        assert ready.status_code == 200 and all(ready.json()["checks"].values())
        assert (await get_json(pipeline[name], "/healthz")).json() == {"status": "ok"}
        text = (await get_json(pipeline[name], "/metrics")).text
        assert "vanda_outbox_published_total" in text and "vanda_ready 1.0" in text
    text = (await get_json(pipeline["INTAKE_URL"], "/metrics")).text
    assert 'vanda_intake_reports_total{outcome="accepted"}' in text
    assert 'vanda_outbox_oldest_age_seconds{schema="intake"}' in text
    sanctions = (await get_json(pipeline["SANCTIONS_URL"], "/metrics")).text
    assert 'vanda_consumer_lag{group="vanda-sanctions",partition=' in sanctions
    assert "vanda_pending_approvals " in sanctions and 'vanda_scheduler_runs_total{outcome="ok"}' in sanctions
    assert LADDER_NHS not in text


def test_demo_feed_flows_through_and_the_board_counts_it(pipeline):
    from io import StringIO

    from rich.console import Console

    from vanda import demo
    from vanda.runtime.auth import sign

    out = StringIO()
    token = sign(pipeline["AUTH_JWT_SECRET"], "demo-test", ["board_viewer"])
    demo.run(pipeline, 120, 2, Console(file=out, width=160), token)
    text = out.getvalue()
    assert "intake answered: {202: 120}" in text
    assert "Board metrics by month" in text and "/v1/subjects/sub_" in text
