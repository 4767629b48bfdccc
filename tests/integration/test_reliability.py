"""Retries, dead letters and their replay, on the running pipeline."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer

from schemas.events import encode, envelope
from tests.conftest import ROOT, source_key
from tests.factories import incident, report
from tests.integration.kafka_reader import read_until

pytestmark = pytest.mark.integration


async def post(pipeline, body: dict, **headers) -> httpx.Response:
    headers |= source_key(pipeline)
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30) as client:
        return await client.post("/v1/incidents", json=body, headers=headers)


async def test_idempotency_key_retry_gets_the_original_answer(pipeline):
    body = report(perpetrator={"kind": "unknown"})
    first = await post(pipeline, body, **{"Idempotency-Key": "retry-key-1"})
    again = await post(pipeline, body, **{"Idempotency-Key": "retry-key-1"})
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    reused = await post(pipeline, report(perpetrator={"kind": "unknown"}), **{"Idempotency-Key": "retry-key-1"})
    assert reused.status_code == 422 and reused.json()["errors"][0]["field"] == "Idempotency-Key"
    # A ref used before, changed, under a key never used: the ref is in conflict, not the key.
    changed = await post(pipeline, body | {"harm": "severe"}, **{"Idempotency-Key": f"new-{uuid.uuid4().hex}"})
    assert changed.status_code == 409 and changed.json()["errors"][0]["field"] == "source_ref", changed.text


def vanda_cli(pipeline, *args: str) -> str:
    env = dict(os.environ) | {"KAFKA_BOOTSTRAP_SERVERS": pipeline["KAFKA_BOOTSTRAP_SERVERS"], "COLUMNS": "250"}
    result = subprocess.run([sys.executable, "-m", "vanda", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def test_dead_letters_are_listed_and_replayed_after_a_fix(pipeline):
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    # A valid event that an earlier, since-fixed version dead-lettered: replay must apply it.
    fixed = envelope(incident(subject="sub_" + "d" * 40), source="/test", subject="sub_" + "d" * 40)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("vanda.incidents.v1.dlq", encode(fixed), key=b"sub_" + b"d" * 40, headers=[
            ("vanda-dlq-reason", b"rejected"), ("vanda-dlq-error", b"harm: a bug since fixed"),
            ("vanda-dlq-source-topic", b"vanda.incidents.v1"), ("vanda-dlq-source-partition", b"0"),
            ("vanda-dlq-source-offset", b"0")])
    finally:
        await producer.stop()
    listing = vanda_cli(pipeline, "dlq", "list", "--topic", "vanda.incidents.v1.dlq")
    assert "a bug since fixed" in listing and "rejected" in listing
    assert "replayed" in vanda_cli(pipeline, "dlq", "replay", "vanda.incidents.v1.dlq")
    cards = await read_until(bootstrap, "vanda.sanctions.v1", lambda r: r.key == b"sub_" + b"d" * 40, 1)
    assert json.loads(cards[0].value)["data"]["incident_id"] == str(fixed.data.incident_id)
