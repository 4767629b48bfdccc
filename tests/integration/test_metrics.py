"""Every catalogued metric moves on the service that owns it when traffic flows, on real servers.

The test scrapes /metrics of each running service, drives traffic meant to move every
metric in the catalogue (tests/unit/test_observability.py), and scrapes again until each
counter and histogram has grown on its owner and each gauge has a sample, or a deadline
passes. A metric added to the catalogue must be given an owner here, or an exemption
with the reason it cannot move in this run.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import bearer, source_key
from tests.factories import report
from tests.unit.test_observability import EXPOSED

pytestmark = pytest.mark.integration

# Test-range NHS numbers (999...) with valid check digits, used by no other test.
PENDING_NHS, BANNED_NHS, WITHDRAWN_NHS, SUBMITTED_NHS = "9990000905", "9990000913", "9990000921", "9990000948"
SUBMISSIONS = "vanda.intake.submissions.v1"
ALL = {"intake", "sanctions", "reporting"}  # every one consumes: intake reads its submissions topic

# Which services must show each metric move (counters, histograms) or carry a sample (gauges).
OWNERS: dict[str, set[str]] = {
    "vanda_intake_reports_total": {"intake"},
    "vanda_intake_corrections_total": {"intake"},
    "vanda_intake_incidents_total": {"intake"},
    "vanda_events_consumed_total": ALL,
    "vanda_dead_letters_total": ALL,
    "vanda_consumer_batch_seconds": ALL,
    "vanda_sanction_decisions_total": {"sanctions"},
    "vanda_incident_to_decision_seconds": {"sanctions"},
    "vanda_outbox_published_total": ALL,  # reporting's: the police referrals the weapon incidents need
    "vanda_scheduler_runs_total": {"sanctions"},
    "faststream_received_messages_total": ALL,
    "faststream_received_messages_size_bytes": ALL,
    "faststream_received_processed_messages_total": ALL,
    "faststream_received_processed_messages_duration_seconds": ALL,
    # gauges
    "vanda_outbox_pending": ALL,
    # counted at start: each service writes a dead-letter topic
    "vanda_dead_letters_waiting": ALL,
    "vanda_dead_letters_oldest_waiting_seconds": ALL,
    "vanda_dead_letters_deleted_in_seconds": ALL,
    "vanda_dead_letters_uncounted_topics": ALL,
    "vanda_outbox_oldest_age_seconds": ALL,
    "vanda_ready": ALL,
    "vanda_consumer_lag": ALL,
    "vanda_pending_approvals": {"sanctions"},
    "vanda_oldest_pending_approval_age_seconds": {"sanctions"},
    "vanda_active_bans": {"sanctions"},
    "vanda_reporting_current_month": {"reporting"},
    "vanda_reporting_current_month_updated_timestamp_seconds": {"reporting"},
    "vanda_footage_delete_due": {"reporting"},
    "vanda_footage_oldest_delete_due_age_seconds": {"reporting"},
    "vanda_reporting_publishing_backlog": {"reporting"},  # set by the publishing round the service runs at start
    "faststream_received_messages_in_process": ALL,
}
# Catalogued metrics that cannot move in a healthy run, and why.
EXEMPT = {
    "vanda_transient_retries_total": "moves only while PostgreSQL or Kafka is unreachable (the fault "
                                     "suite's outages), never in a healthy run",
    "faststream_received_processed_messages_exceptions_total": "the handler retries outages and dead-letters "
                                                               "bad records itself, so only an unexpected "
                                                               "bug raises out of it",
    **dict.fromkeys(("faststream_published_messages_total", "faststream_published_messages_duration_seconds",
                     "faststream_published_messages_exceptions_total"),
                    "events leave through the outbox relay's own producer, never the FastStream broker"),
}
SERVICES = {"intake": "INTAKE_URL", "sanctions": "SANCTIONS_URL", "reporting": "REPORTING_URL"}


@dataclass
class Family:
    kind: str
    total: float  # counters: the sum of their series; histograms: observations; gauges: unused
    samples: int


def parse(text: str) -> dict[str, Family]:
    """Catalogue name -> what one scrape shows of it."""
    found = {}
    for family in text_string_to_metric_families(text):
        name = family.name + ("_total" if family.type == "counter" else "")
        suffix = {"counter": "_total", "histogram": "_count"}.get(family.type)
        total = sum(s.value for s in family.samples if suffix and s.name.endswith(suffix))
        found[name] = Family(family.type, total, len(family.samples))
    return found


async def scrape(pipeline) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=30) as client:
        return {name: (await client.get(f"{pipeline[key]}/metrics")).text for name, key in SERVICES.items()}


def not_yet_moved(before: dict[str, dict[str, Family]], after: dict[str, dict[str, Family]]) -> list[str]:
    """'metric on service' for every owner that does not show its metric moving yet."""
    missing = []
    for name, owners in OWNERS.items():
        kind = EXPOSED[name][0]
        for service in sorted(owners):
            now, then = after[service].get(name), before[service].get(name)
            if now is None or now.samples == 0:
                missing.append(f"{name} on {service}: no sample")
            elif kind != "gauge" and now.total <= (then.total if then else 0):
                missing.append(f"{name} on {service}: did not increase")
    return missing


def patient(nhs: str) -> dict:
    return {"kind": "patient", "nhs_number": nhs, "medical_factors": False, "age_band": "18_to_64"}


async def drive_traffic(pipeline) -> None:
    """Reports valid and invalid over HTTP and Kafka, a withdrawal, a red card left pending and one
    approved, a poison event, a scheduler run."""
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30, headers=source_key(pipeline)) as intake:
        # A weapon proposes a red card at once and meets the police referral criteria.
        receipts = {}
        for nhs in (PENDING_NHS, BANNED_NHS):
            response = await intake.post("/v1/incidents", json=report(category="weapon", perpetrator=patient(nhs)))
            assert response.status_code == 202, response.text
            receipts[nhs] = response.json()
        withdrawn = await intake.post("/v1/incidents", json=report(perpetrator=patient(WITHDRAWN_NHS)))
        assert withdrawn.status_code == 202, withdrawn.text
        refused = await intake.post("/v1/incidents", json=report(harm="catastrophic"))
        assert refused.status_code == 422
        correction = await intake.post(f"/v1/incidents/{withdrawn.json()['incident_id']}/withdraw",
                                       json={"reason": "entered_in_error"})
        assert correction.status_code == 202, correction.text

    producer = AIOKafkaProducer(bootstrap_servers=pipeline["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:  # Both consumers of the topic dead-letter it as unparseable.
        await producer.send_and_wait("vanda.incidents.v1", b"{not an event", key=b"metrics-poison")
        submitted = report(perpetrator=patient(SUBMITTED_NHS))
        await producer.send_and_wait(SUBMISSIONS, orjson.dumps(submitted), key=submitted["source_ref"].encode())
        await producer.send_and_wait(SUBMISSIONS, b'{"harm": "catastrophic"}', key=b"metrics-invalid")
    finally:
        await producer.stop()

    async with httpx.AsyncClient(base_url=pipeline["SANCTIONS_URL"], timeout=30) as sanctions:
        red = await pending_card(sanctions, receipts[BANNED_NHS]["subject_id"], bearer(pipeline, "sanction_approver"))
        approved = await sanctions.post(f"/v1/sanctions/{red}/approve", json={"reason": "metrics test"},
                                        headers=bearer(pipeline, "sanction_approver", "approver-metrics"))
        agreed = await sanctions.post(f"/v1/sanctions/{red}/agree", json={"reason": "metrics test"},
                                      headers=bearer(pipeline, "clinical_lead", "clinician-metrics"))
        assert approved.status_code == agreed.status_code == 200, approved.text + agreed.text
        run = await sanctions.post("/v1/scheduler/run", json={}, headers=bearer(pipeline, "operations"))
        assert run.status_code == 200, run.text


async def pending_card(sanctions: httpx.AsyncClient, subject_id: str, headers: dict[str, str],
                       timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = await sanctions.get(f"/v1/subjects/{subject_id}", headers=headers)
        if view.status_code == 200 and view.json()["pending_approvals"]:
            return view.json()["pending_approvals"][0]["sanction_id"]
        await asyncio.sleep(0.3)
    raise AssertionError(f"no red card proposed for the weapon incident within {timeout} s")


def test_every_catalogued_metric_has_an_owner_or_a_reason():
    assert set(OWNERS) | set(EXEMPT) == set(EXPOSED)
    assert not set(OWNERS) & set(EXEMPT)


async def test_every_catalogued_metric_moves_on_the_service_that_owns_it(pipeline):
    before = {name: parse(text) for name, text in (await scrape(pipeline)).items()}
    await drive_traffic(pipeline)

    # The scheduler's counter counts its own timer's rounds (the alert on it watches the
    # timer), so the deadline leaves room for one round at the default 60 s interval.
    deadline = time.monotonic() + 150
    while True:
        texts = await scrape(pipeline)
        after = {name: parse(text) for name, text in texts.items()}
        missing = not_yet_moved(before, after)
        if not missing or time.monotonic() > deadline:
            break
        await asyncio.sleep(1)
    assert missing == [], missing

    # One red card is left waiting and one ban runs, whatever other tests left behind. The
    # waiting cards count from the day after they were proposed: this run's do not yet.
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    day = "SELECT date_trunc('day', now(), 'UTC')"
    try:
        while True:  # the scrape and the count on the same UTC day (a run may cross midnight)
            began, shown = await conn.fetchval(day), _value((await scrape(pipeline))["sanctions"],
                                                            "vanda_pending_approvals")
            today, before = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE d.decided_at >= date_trunc('day', now(), 'UTC')),"
                "       count(*) FILTER (WHERE d.decided_at < date_trunc('day', now(), 'UTC'))"
                "  FROM sanctions.cards c JOIN sanctions.decisions d ON d.decision_id = c.sanction_id"
                " WHERE c.status = 'proposed'")
            if await conn.fetchval(day) == began:
                break
    finally:
        await conn.close()
    assert today >= 1 and shown == before
    assert _value(texts["sanctions"], "vanda_active_bans") >= 1
    for service in ("sanctions", "reporting"):
        assert 'reason="unparseable",topic="vanda.incidents.v1"' in texts[service], service
    assert f'reason="invalid",topic="{SUBMISSIONS}"' in texts["intake"]
    for text in texts.values():
        assert not any(nhs in text for nhs in (PENDING_NHS, BANNED_NHS, WITHDRAWN_NHS, SUBMITTED_NHS))


def _value(text: str, name: str) -> float:
    (family,) = [f for f in text_string_to_metric_families(text) if f.name == name]
    return family.samples[0].value
