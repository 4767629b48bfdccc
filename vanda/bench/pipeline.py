"""The pipeline: incidents in through both intake entry points, timed until both consumers applied all.

Half go to intake's Kafka ingestion topic (one report JSON per record), half to the bulk
HTTP endpoint (NDJSON, at most 5000 lines a request), from different source systems so
their refs never collide. The clock runs from the first submission until sanctions and
reporting have each applied every incident (polled in PostgreSQL).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaProducer

from schemas.topics import SUBMISSIONS
from vanda.bench import counts
from vanda.bench.stats import rate
from vanda.bench.workload import chunks, ndjson, submission_key

BATCH_PATH = "/v1/incidents:batch"
MAX_LINES = 5000
Progress = Callable[[int], None]


@dataclass
class Outcome:
    """What intake answered to the HTTP batches."""

    accepted: int = 0
    replayed: int = 0
    rejected: int = 0
    incident_ids: list[str] = field(default_factory=list)
    errors: list[Any] = field(default_factory=list)


async def submit_kafka(bootstrap: str, reports: list[dict[str, Any]], progress: Progress = lambda n: None) -> int:
    """Produce every report to the ingestion topic and wait for the broker's acknowledgements."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5,
                                max_batch_size=256 * 1024)
    await producer.start()
    try:
        for part in chunks(reports, 5000):
            futures = [await producer.send(SUBMISSIONS, value=orjson.dumps(r), key=submission_key(r)) for r in part]
            await asyncio.gather(*futures)
            progress(len(part))
        return len(reports)
    finally:
        await producer.stop()


async def post_batch(client: httpx.AsyncClient, lines: list[dict[str, Any]], outcome: Outcome,
                     attempts: int = 30) -> None:
    """POST one NDJSON batch; retry outages (503, transport errors); halve it if the body is too large."""
    for attempt in range(attempts):
        try:
            response = await client.post(BATCH_PATH, content=ndjson(lines),
                                         headers={"Content-Type": "application/x-ndjson"})
        except httpx.TransportError:
            await asyncio.sleep(min(0.2 * 2 ** attempt, 3))
            continue
        if response.status_code == 413 and len(lines) > 1:
            half = len(lines) // 2
            await post_batch(client, lines[:half], outcome)
            await post_batch(client, lines[half:], outcome)
            return
        if response.status_code in (429, 503):
            await asyncio.sleep(float(response.headers.get("Retry-After", 1)))
            continue
        if response.status_code != 200:
            raise RuntimeError(f"{BATCH_PATH} answered {response.status_code}: {response.text[:300]}")
        body = response.json()
        outcome.accepted += body["accepted"]
        outcome.replayed += body["replayed"]
        outcome.rejected += body["rejected"]
        outcome.incident_ids += [r["incident_id"] for r in body["results"] if r["status"] == "accepted"]
        outcome.errors += [r for r in body["results"] if r["status"] == "rejected"][:5]
        return
    raise RuntimeError(f"{BATCH_PATH} did not answer after {attempts} attempts")


async def submit_http(url: str, api_key: str, reports: list[dict[str, Any]], *, concurrency: int = 2,
                      lines: int = MAX_LINES, progress: Progress = lambda n: None) -> Outcome:
    outcome = Outcome()
    queue = list(chunks(reports, lines))
    async with httpx.AsyncClient(base_url=url, timeout=300, headers={"X-API-Key": api_key}) as client:
        async def worker() -> None:
            while queue:
                part = queue.pop(0)
                await post_batch(client, part, outcome)
                progress(len(part))
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcome


async def wait_applied(pool: asyncpg.Pool, target: counts.Applied,
                       seen: Callable[[counts.Applied], None] = lambda now: None,
                       stall_s: float = 120, deadline_s: float = 3600) -> counts.Applied:
    """Poll until intake, sanctions and reporting reach `target`; raise if nothing moves for `stall_s`
    or the whole wait exceeds `deadline_s` (a crawl is a failure too, not an endless run)."""
    started, first = time.monotonic(), await counts.applied(pool)
    last_change, last, now = started, first, first
    deadline = started + deadline_s
    while True:
        seen(now)
        if now.intake >= target.intake and now.sanctions >= target.sanctions and now.reporting >= target.reporting:
            return now
        if now != last:
            last_change, last = time.monotonic(), now
        elif time.monotonic() - last_change > stall_s:
            raise RuntimeError(f"pipeline stalled: {now} applied, waiting for {target}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"pipeline not done after {deadline_s:.0f}s: {now} applied, waiting for {target}")
        await asyncio.sleep(next_poll(first, now, time.monotonic() - started, target))
        now = await counts.applied(pool)


def next_poll(first: counts.Applied, now: counts.Applied, elapsed: float, target: counts.Applied,
              shortest: float = 0.2, longest: float = 1.0) -> float:
    """Seconds to the next poll: a quarter of the time the nearest unfinished stage needs at its
    average rate so far, within [shortest, longest].

    Each poll counts whole tables, which costs the database CPU the pipeline is being timed on
    (at a fixed 0.2 s, a fifth of PostgreSQL's CPU in the pipeline phase); polls are needed
    often only near a stage's finish, where its time is read. A stage that has not moved yet
    waits `longest`.
    """
    soonest = longest * 4
    for name in ("intake", "sanctions", "reporting"):
        left, moved = getattr(target, name) - getattr(now, name), getattr(now, name) - getattr(first, name)
        if left > 0 and moved > 0:
            soonest = min(soonest, left * elapsed / moved)
    return min(longest, max(shortest, soonest / 4))


def progress_from(base: counts.Applied, advance: Progress) -> Callable[[counts.Applied], None]:
    """Turn polled counts into progress-bar advances: incidents both consumers applied since `base`."""
    shown = 0

    def seen(now: counts.Applied) -> None:
        nonlocal shown
        done = (now - base).downstream
        if done > shown:
            advance(done - shown)
            shown = done

    return seen


class Once:
    """Call `action` the first time only."""

    def __init__(self, action: Callable[[], None]) -> None:
        self.action, self.done = action, False

    def __call__(self) -> None:
        if not self.done:
            self.done = True
            self.action()


class StageClock:
    """When intake, sanctions and reporting each reached the target (seconds from the start): where time goes."""

    def __init__(self, target: counts.Applied, started: float) -> None:
        self.target, self.started = target, started
        self.done: dict[str, float] = {}

    def seen(self, now: counts.Applied) -> None:
        for name in ("intake", "sanctions", "reporting"):
            if name not in self.done and getattr(now, name) >= getattr(self.target, name):
                self.done[name] = time.perf_counter() - self.started


async def run(bootstrap: str, url: str, api_key: str, pool: asyncpg.Pool, via_kafka: list[dict[str, Any]],
              via_http: list[dict[str, Any]], progress: Callable[[str, int | None], Progress],
              deadline_s: float = 3600, halfway: Callable[[], None] = lambda: None) -> dict[str, Any]:
    total = len(via_kafka) + len(via_http)
    before = await counts.applied(pool)
    sent = progress("pipeline: submitted", total)
    applied = progress("pipeline: applied by sanctions and reporting", total)
    started = time.perf_counter()
    kafka_sent, outcome = await asyncio.gather(submit_kafka(bootstrap, via_kafka, sent),
                                               submit_http(url, api_key, via_http, progress=sent))
    submitted_s = time.perf_counter() - started
    new = kafka_sent + outcome.accepted
    target = counts.Applied(before.intake + new, before.sanctions + new, before.reporting + new)
    stages = StageClock(target, started)
    show = progress_from(before, applied)
    half = Once(halfway)

    def seen(now: counts.Applied) -> None:
        show(now)
        stages.seen(now)
        if (now - before).downstream >= new // 2:
            half()

    await wait_applied(pool, target, seen, deadline_s=deadline_s)
    seconds = time.perf_counter() - started
    return {
        "figures": {"pipeline_incidents": new, "pipeline_seconds": seconds, "pipeline_per_s": rate(new, seconds),
                    "pipeline_submit_seconds": submitted_s,
                    **{f"pipeline_{name}_done_seconds": s for name, s in stages.done.items()},
                    "pipeline_kafka_sent": kafka_sent,
                    "pipeline_http_accepted": outcome.accepted, "pipeline_http_replayed": outcome.replayed,
                    "pipeline_http_rejected": outcome.rejected},
        "refused": outcome.rejected + outcome.replayed,
        "refused_examples": outcome.errors[:5],
    }
