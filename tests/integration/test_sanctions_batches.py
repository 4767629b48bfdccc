"""Sanctions decides a batch a chunk of subjects at a time: on the real database the result is
the same, state for state and event for event, whatever the chunk size."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from datetime import timedelta

import pytest

from schemas.envelope import CloudEvent
from schemas.events import envelope
from services.sanctions import adapters, handlers
from services.sanctions.domain import Policy
from tests.factories import T0, incident
from vanda.runtime.db import create_pool

pytestmark = pytest.mark.integration

POLICY = Policy(version="chunks-1", approval_required=False)


def events(subjects: list[str]) -> list[CloudEvent]:
    """Three to five incidents per subject, interleaved across subjects, some serious."""
    out = []
    for n in range(5):
        for i, subject in enumerate(subjects):
            if n < 3 + i % 3:
                harm = "moderate" if (n + i) % 7 == 0 else "none"
                category = "physical_assault" if harm != "none" else "verbal_abuse"
                out.append(envelope(incident(subject, days=n * 20 + i, category=category, harm=harm),
                                    source="/test", subject=subject))
    return out


async def decide_in_chunks(pool, batch: list[CloudEvent], subjects: list[str], chunk: int, monkeypatch):
    """States and events after applying the batch with `chunk` subjects at a time, then rolled back."""
    monkeypatch.setattr(handlers, "SUBJECTS_PER_CHUNK", chunk)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            out = await handlers.on_incidents(conn, batch, POLICY, lambda: T0)
            states = await adapters.load_many(conn, subjects)
        finally:
            await tx.rollback()
    by_subject = defaultdict(list)
    for o in out:
        by_subject[o.key].append(o.payload)  # per subject, in the order they would be published
    return states, dict(by_subject)


async def test_chunked_batches_decide_exactly_as_one_chunk(pipeline, monkeypatch) -> None:
    subjects = [f"sub_chunks_{uuid.uuid4().hex}" for _ in range(7)]
    batch = events(subjects)
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=1)
    try:
        whole = await decide_in_chunks(pool, batch, subjects, 10_000, monkeypatch)
        chunked = await decide_in_chunks(pool, batch, subjects, 2, monkeypatch)
    finally:
        await pool.close()
    assert chunked == whole
    states, published = whole
    assert all(len(states[s].incidents) >= 3 for s in subjects)
    assert sum(len(p) for p in published.values()) >= 2 * len(subjects)  # yellow cards at least


async def test_a_batch_that_waited_for_a_subject_is_decided_at_the_time_it_got_it(pipeline) -> None:
    """A reviewer's decision (or another batch) holding the subject commits first: the batch's
    decisions must not be stamped before it, or a ban approved meanwhile would seem to start
    after the incident it already answered."""
    subject = f"sub_waited_{uuid.uuid4().hex}"
    later = T0 + timedelta(minutes=5)
    now = [T0]
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=2)
    try:
        async with pool.acquire() as holder, pool.acquire() as conn:
            held = holder.transaction()
            await held.start()
            await adapters.lock_subject(holder, subject)
            tx = conn.transaction()
            await tx.start()
            try:
                batch = asyncio.create_task(handlers.on_incidents(conn, events([subject])[:1], POLICY,
                                                                  lambda: now[0]))
                await _until_waiting(holder, conn)
                now[0] = later  # the holder's decision is taken and committed at this time
                await held.rollback()
                out = await batch
            finally:
                await tx.rollback()
    finally:
        await pool.close()
    assert out and {o.event.data.decided_at for o in out} == {later}


async def _until_waiting(observer, conn) -> None:
    pid = conn.get_server_pid()
    for _ in range(200):
        if await observer.fetchval("SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the batch never waited for the subject's lock")
