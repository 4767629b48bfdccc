"""Bulk intake on real servers: NDJSON over HTTP and IncidentReport JSON on the submissions topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from tests.conftest import source_key
from tests.factories import RECENT, report
from tests.integration.kafka_reader import poll, read_until

pytestmark = pytest.mark.integration

# Test-range NHS numbers with valid check digits, used only here.
BATCH_NHS, KAFKA_NHS = "9990000301", "9990000328"
SUBMISSIONS = "vanda.intake.submissions.v1"


def ndjson(*bodies: dict | bytes) -> bytes:
    return b"\n".join(b if isinstance(b, bytes) else orjson.dumps(b) for b in bodies) + b"\n"


async def post_batch(pipeline, body: bytes, headers: dict | None = None) -> httpx.Response:
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30,
                                 headers=(headers if headers is not None else source_key(pipeline))) as client:
        return await client.post("/v1/incidents:batch", content=body,
                                 headers={"Content-Type": "application/x-ndjson"})


def patient(nhs: str) -> dict:
    return {"kind": "patient", "nhs_number": nhs, "medical_factors": False, "age_band": "18_to_64"}


async def test_each_line_of_a_batch_is_judged_alone_and_a_retry_is_a_replay(pipeline):
    refs = [f"batch-{uuid.uuid4().hex[:10]}-{n}" for n in range(3)]
    good = [report(source_ref=ref, perpetrator=patient(BATCH_NHS), occurred_at=(RECENT - timedelta(days=30 * (2 - n))).isoformat())
            for n, ref in enumerate(refs)]
    missing_category = {k: v for k, v in report(source_ref=f"bad-{uuid.uuid4().hex}").items() if k != "category"}
    # A blank line, a byte order mark and a line ending "\r\n" as some Windows tools write,
    # and a bare "\r" as JSON allows between a report's fields: each result still names its
    # report's line in the body.
    spaced = orjson.dumps(good[1]).replace(b',"', b',\r"', 1)
    body = b"\xef\xbb\xbf" + ndjson(good[0], missing_category, b"", spaced, b"{not json",
                                   orjson.dumps(good[2]) + b"\r", good[0])

    response = await post_batch(pipeline, body)

    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["accepted"], result["replayed"], result["rejected"]) == (3, 1, 2)
    lines = result["results"]
    assert [r["status"] for r in lines] == ["accepted", "rejected", "accepted", "rejected", "accepted", "replayed"]
    assert lines[1]["errors"] == [{"field": "category", "reason": "Field required"}]
    assert lines[3]["errors"][0]["field"] == "(line)" and "JSON" in lines[3]["errors"][0]["reason"]
    assert [r["line"] for r in lines] == [1, 2, 4, 5, 6, 7]
    assert lines[5]["incident_id"] == lines[0]["incident_id"]
    subjects = {lines[i]["subject_id"] for i in (0, 2, 4)}
    assert len(subjects) == 1 and subjects.pop().startswith("sub_")
    assert BATCH_NHS.encode() not in response.content

    again = (await post_batch(pipeline, ndjson(*good))).json()
    assert [r["status"] for r in again["results"]] == ["replayed"] * 3
    assert [r["incident_id"] for r in again["results"]] == [lines[i]["incident_id"] for i in (0, 2, 4)]

    subject = lines[0]["subject_id"]
    records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.sanctions.v1",
                               lambda r: r.key == subject.encode(), 3)
    assert [json.loads(r.value)["type"].split(".")[-2] for r in records] == [
        "yellow_card_issued", "yellow_card_issued", "red_card_proposed"]


async def test_a_changed_report_under_a_used_ref_is_rejected_and_foreign_sources_are_forbidden(pipeline):
    ref = f"batch-conflict-{uuid.uuid4().hex}"
    first = (await post_batch(pipeline, ndjson(report(source_ref=ref, harm="none")))).json()
    assert first["accepted"] == 1
    changed = (await post_batch(pipeline, ndjson(report(source_ref=ref, harm="severe")))).json()
    assert changed["results"][0]["status"] == "rejected"
    assert changed["results"][0]["errors"][0]["field"] == "source_ref"
    assert changed["results"][0]["incident_id"] == first["results"][0]["incident_id"]

    unauthenticated = await post_batch(pipeline, ndjson(report()), headers={})
    assert unauthenticated.status_code == 401


async def test_a_batch_over_the_line_limit_is_refused_whole(pipeline):
    too_many = ndjson(*[report(source_ref=f"many-{n}") for n in range(5001)])
    response = await post_batch(pipeline, too_many)
    assert response.status_code == 413
    assert response.json()["errors"][0]["field"] == "(body)"


async def test_two_batches_of_the_same_reports_in_opposite_orders_store_each_once(pipeline):
    # Each batch inserts in one statement. Taken in the order sent, each would wait on a ref the
    # other inserted first, and PostgreSQL would abort one as a deadlock. A lock held here
    # holds both inserts back until both are waiting, so that they surely run together.
    reports = [report(source_ref=f"both-ways-{uuid.uuid4().hex}", perpetrator={"kind": "unknown"}) for _ in range(500)]
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE intake.incidents IN SHARE MODE")
            both = asyncio.gather(post_batch(pipeline, ndjson(*reports)),
                                  post_batch(pipeline, ndjson(*reversed(reports))))
            await poll(lambda: _waiting_on_incidents(conn), lambda waiting: waiting == 2, timeout=30)
        forwards, backwards = await both
    finally:
        await conn.close()

    assert (forwards.status_code, backwards.status_code) == (200, 200), (forwards.text, backwards.text)
    one, other = forwards.json()["results"], list(reversed(backwards.json()["results"]))
    assert [a["incident_id"] for a in one] == [b["incident_id"] for b in other]
    assert {a["status"] for a in one} | {b["status"] for b in other} == {"accepted", "replayed"}
    assert all({a["status"], b["status"]} == {"accepted", "replayed"} for a, b in zip(one, other, strict=True))


async def _waiting_on_incidents(conn: asyncpg.Connection) -> int:
    return await conn.fetchval("SELECT count(*) FROM pg_locks WHERE relation = 'intake.incidents'::regclass"
                               " AND NOT granted")


async def test_kafka_submissions_are_accepted_once_and_invalid_ones_dead_lettered(pipeline):
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    ref = f"kafka-{uuid.uuid4().hex}"
    good = report(source_ref=ref, perpetrator=patient(KAFKA_NHS))
    bad_ref = f"kafka-bad-{uuid.uuid4().hex}"
    bad = report(source_ref=bad_ref, harm="catastrophic")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for body in (good, bad, good):  # the second copy of `good` is a redelivery: applied once
            await producer.send_and_wait(SUBMISSIONS, orjson.dumps(body), key=ref.encode())
    finally:
        await producer.stop()

    dead = await read_until(bootstrap, f"{SUBMISSIONS}.dlq", lambda r: bad_ref.encode() in (r.value or b""), 1)
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["vanda-dlq-reason"] == b"invalid"
    assert headers["vanda-dlq-error"].startswith(b"harm: ")

    # Read where intake stores it: a report sent over HTTP here would create the incident itself.
    async def stored() -> list:
        conn = await asyncpg.connect(pipeline["DATABASE_URL"])
        try:
            return await conn.fetch("SELECT subject_id FROM intake.incidents WHERE source_system = $1"
                                    " AND source_ref = $2", good["source_system"], ref)
        finally:
            await conn.close()

    [row] = await poll(stored, lambda rows: len(rows) >= 1)
    subject = row["subject_id"]
    decisions = await read_until(bootstrap, "vanda.sanctions.v1", lambda r: r.key == subject.encode(), 2, timeout=5)
    assert [json.loads(r.value)["type"].split(".")[-2] for r in decisions] == ["yellow_card_issued"]
