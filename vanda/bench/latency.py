"""Decision latency at a steady rate: intake accepting a report to its sanction decision on the topic.

Reports are submitted at a paced rate (HTTP batch every tick, or single POSTs) while a
fresh consumer reads `vanda.sanctions.v1` from its end. For each accepted incident that
got a decision, latency = the first decision record's broker timestamp minus the
`reported_at` intake stamped on the incident (its acceptance time). Incidents that get no
decision (staff, unknown perpetrators) have no latency.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka import AIOKafkaConsumer

from schemas.topics import SANCTIONS
from vanda.bench import counts
from vanda.bench.http import post_single
from vanda.bench.limit import topic_partitions
from vanda.bench.pipeline import Outcome, post_batch, wait_applied
from vanda.bench.stats import percentile, rate

BASIS = "sanctions record timestamp (broker) minus IncidentReported.reported_at"
TICK_S = 0.1


class DecisionWatcher:
    """Reads the sanctions topic from its current end; keeps the first decision time per incident."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        self.first_ms: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        parts = await topic_partitions(self.consumer, SANCTIONS)
        self.consumer.assign(parts)
        await self.consumer.seek_to_end(*parts)
        for tp in parts:
            await self.consumer.position(tp)  # fix the start now, before anything is submitted
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=5000)
            for records in batches.values():
                for record in records:
                    incident = orjson.loads(record.value or b"{}").get("data", {}).get("incident_id")
                    if incident and (incident not in self.first_ms or record.timestamp < self.first_ms[incident]):
                        self.first_ms[incident] = record.timestamp

    async def caught_up(self, timeout: float = 60) -> None:
        """Wait until every record on the topic now has been read."""
        parts = list(self.consumer.assignment())
        ends = await self.consumer.end_offsets(parts)
        deadline = time.monotonic() + timeout
        while [tp for tp in parts if await self.consumer.position(tp) < ends[tp]]:
            if time.monotonic() > deadline:
                raise TimeoutError("latency: the sanctions topic was not read to its end in time")
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.consumer.stop()


async def submit_paced(url: str, api_key: str, reports: list[dict[str, Any]], per_s: float, via: str,
                       progress: Callable[[int], None]) -> tuple[Outcome, float]:
    """Send `per_s * TICK_S` reports every tick; return what intake accepted and the seconds it took."""
    outcome = Outcome()
    per_tick = max(1, round(per_s * TICK_S))
    ticks = [reports[i:i + per_tick] for i in range(0, len(reports), per_tick)]
    in_flight: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"X-API-Key": api_key},
                                 limits=httpx.Limits(max_connections=64)) as client:
        async def send(part: list[dict[str, Any]]) -> None:
            if via == "batch":
                await post_batch(client, part, outcome)
            else:
                responses = await asyncio.gather(*(post_single(client, r) for r in part))
                for response in responses:
                    if response.status_code == 202:
                        outcome.accepted += 1
                        outcome.incident_ids.append(response.json()["incident_id"])
                    else:
                        outcome.rejected += 1
            progress(len(part))

        started = time.perf_counter()
        for n, part in enumerate(ticks):
            await asyncio.sleep(max(0.0, started + n * TICK_S - time.perf_counter()))
            task = asyncio.create_task(send(part))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
        return outcome, time.perf_counter() - started


async def reported_at(pool: asyncpg.Pool, incident_ids: list[str]) -> dict[str, datetime]:
    rows = await pool.fetch("SELECT incident_id::text AS id, event->>'reported_at' AS at FROM intake.incidents"
                            " WHERE incident_id = ANY($1::uuid[])", [uuid.UUID(i) for i in incident_ids])
    return {r["id"]: datetime.fromisoformat(r["at"]) for r in rows}


def latencies_ms(first_ms: dict[str, int], accepted_at: dict[str, datetime]) -> list[float]:
    """Milliseconds from acceptance to first decision, for incidents that have both."""
    return [first_ms[i] - accepted_at[i].timestamp() * 1000 for i in accepted_at if i in first_ms]


async def run(bootstrap: str, url: str, api_key: str, pool: asyncpg.Pool, reports: list[dict[str, Any]],
              per_s: float, via: str, progress: Callable[[str, int | None], Callable[[int], None]]) -> dict[str, Any]:
    before = await counts.applied(pool)
    watcher = DecisionWatcher(bootstrap)
    await watcher.start()
    try:
        outcome, seconds = await submit_paced(url, api_key, reports, per_s, via,
                                              progress(f"latency: {per_s:,.0f}/s via {via}", len(reports)))
        new = outcome.accepted
        await wait_applied(pool, counts.Applied(before.intake + new, before.sanctions + new, before.reporting + new))
        await _outbox_drained(pool)
        await watcher.caught_up()
    finally:
        await watcher.stop()
    values = latencies_ms(watcher.first_ms, await reported_at(pool, outcome.incident_ids))
    return {
        "figures": {"latency_incidents": outcome.accepted, "latency_rate_per_s": rate(outcome.accepted, seconds),
                    "latency_target_rate_per_s": per_s, "latency_via": via, "latency_samples": len(values),
                    "latency_p50_ms": percentile(values, 50), "latency_p99_ms": percentile(values, 99),
                    "latency_max_ms": max(values, default=None), "latency_basis": BASIS},
        "accepted": outcome.accepted,
        "refused": outcome.rejected + outcome.replayed,
    }


async def _outbox_drained(pool: asyncpg.Pool, timeout: float = 60) -> None:
    """Wait until sanctions' relay has published every decision it stored."""
    deadline = time.monotonic() + timeout
    while await pool.fetchval("SELECT count(*) FROM sanctions.outbox WHERE sent_at IS NULL"):
        if time.monotonic() > deadline:
            raise TimeoutError("latency: sanctions' outbox was not drained in time")
        await asyncio.sleep(0.1)
