"""The naive peer: the same card rule as a plain FastStream subscriber, one transaction per message.

No batching: per message an inbox insert, a lock and load of the subject's state row, the
pure `decide`, then the state and decisions saved. Offsets are committed the way a plain
subscriber does by default (FastStream's ACK_FIRST: Kafka's periodic auto-commit), not
one commit per message: the peer is given that advantage, so the ratio is not flattered. It reads
IncidentReported events produced raw to its own topic, with its own consumer group, and
keeps its tables in the `bench` schema.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from schemas.events import decode
from services.sanctions.config import SanctionsSettings, load_policy
from services.sanctions.domain import Policy, SubjectState, decide
from services.sanctions.handlers import incident_input
from vanda.bench.limit import create_topic, delete_topic, produce
from vanda.bench.stats import rate

NAIVE_TOPIC = "vanda.bench.naive.v1"
NAIVE_GROUP = "vanda-bench-naive"
TABLES = (
    "CREATE TABLE bench.naive_inbox (event_id text PRIMARY KEY, processed_at timestamptz NOT NULL DEFAULT now())",
    "CREATE TABLE bench.naive_subjects (subject_id text PRIMARY KEY, state json NOT NULL)",
    "CREATE TABLE bench.naive_decisions (decision_id uuid PRIMARY KEY, subject_id text NOT NULL,"
    " incident_id uuid NOT NULL, event_type text NOT NULL, payload jsonb NOT NULL)",
)


async def prepare(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        for name in ("naive_inbox", "naive_subjects", "naive_decisions"):
            await conn.execute(f"DROP TABLE IF EXISTS bench.{name}")
        for ddl in TABLES:
            await conn.execute(ddl)


async def apply_one(pool: asyncpg.Pool, value: bytes, policy: Policy) -> bool:
    """One message, one transaction; False if the event was seen before."""
    event = decode(value)
    async with pool.acquire() as conn, conn.transaction():
        claimed = await conn.fetchval("INSERT INTO bench.naive_inbox (event_id) VALUES ($1)"
                                      " ON CONFLICT DO NOTHING RETURNING true", event.id)
        if not claimed:
            return False
        subject_id, command = incident_input(event.data)
        if subject_id is None or command is None:
            return True
        raw = await conn.fetchval("SELECT state FROM bench.naive_subjects WHERE subject_id = $1 FOR UPDATE",
                                  subject_id)
        state = SubjectState.model_validate(raw) if raw else SubjectState(subject_id=subject_id)
        state, decisions = decide(state, command, policy, datetime.now(UTC))
        await conn.execute("INSERT INTO bench.naive_subjects (subject_id, state) VALUES ($1, $2)"
                           " ON CONFLICT (subject_id) DO UPDATE SET state = EXCLUDED.state",
                           subject_id, state.model_dump(mode="json"))
        await conn.executemany(
            "INSERT INTO bench.naive_decisions (decision_id, subject_id, incident_id, event_type, payload)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            [(d.decision_id, d.subject_id, d.incident_id, d.event_type, d.model_dump(mode="json"))
             for d in decisions])
    return True


async def consume(bootstrap: str, pool: asyncpg.Pool, expected: int, policy: Policy,
                  progress: Callable[[int], None] = lambda n: None, stall_s: float = 120) -> tuple[int, float]:
    """Run the subscriber until `expected` messages are applied; return (applied, seconds from first)."""
    broker = KafkaBroker(bootstrap, client_id="vanda-bench-naive", logger=None)  # no log line per message
    done = asyncio.Event()
    applied = 0
    first: float | None = None

    @broker.subscriber(NAIVE_TOPIC, group_id=NAIVE_GROUP, auto_offset_reset="earliest",
                       ack_policy=AckPolicy.ACK_FIRST)
    async def on_incident(msg: KafkaMessage) -> None:
        nonlocal applied, first
        first = first or time.perf_counter()
        await apply_one(pool, msg.body, policy)
        applied += 1
        progress(1)
        if applied >= expected:
            done.set()

    await broker.start()
    try:
        last, seen = time.perf_counter(), 0
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), timeout=1)
            except TimeoutError:
                if applied > seen:
                    last, seen = time.perf_counter(), applied
                elif time.perf_counter() - last > stall_s:
                    raise RuntimeError(f"naive peer stalled at {applied} of {expected}") from None
        return applied, time.perf_counter() - (first or time.perf_counter())
    finally:
        await broker.stop()


async def run(bootstrap: str, pool: asyncpg.Pool, messages: list[tuple[bytes, bytes]],
              progress: Callable[[str, int | None], Callable[[int], None]]) -> dict[str, Any]:
    """Produce the capped subset to the naive topic, then time the subscriber over all of it."""
    policy = load_policy(SanctionsSettings().policy_file)
    await prepare(pool)
    await create_topic(bootstrap, NAIVE_TOPIC)
    try:
        await produce(bootstrap, NAIVE_TOPIC, messages)
        applied, seconds = await consume(bootstrap, pool, len(messages), policy,
                                         progress("naive peer", len(messages)))
    finally:
        await delete_topic(bootstrap, NAIVE_TOPIC)
    async with pool.acquire() as conn:
        inbox = await conn.fetchval("SELECT count(*) FROM bench.naive_inbox")
        decisions = await conn.fetchval("SELECT count(*) FROM bench.naive_decisions")
        for name in ("naive_inbox", "naive_subjects", "naive_decisions"):
            await conn.execute(f"DROP TABLE bench.{name}")
    if inbox != len(messages):
        raise RuntimeError(f"naive peer applied {inbox} of {len(messages)} events")
    return {"naive_incidents": applied, "naive_per_s": rate(applied, seconds), "naive_decisions": decisions}
