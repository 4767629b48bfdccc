"""Load, wait-for-quiet and the end-state checks the fault suite applies after each fault."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from typing import Any

import asyncpg
import httpx
import orjson
from aiokafka.admin import AIOKafkaAdminClient

from schemas.events import decode
from schemas.incidents import IncidentReported
from services.sanctions.config import DEFAULT_POLICY, load_policy
from services.sanctions.domain import CardStatus, IncidentSeen, SubjectState, decide
from services.sanctions.handlers import incident_input
from vanda.dlq import read_all
from vanda.runtime.auth import sign

TOPICS = ("vanda.incidents.v1", "vanda.sanctions.v1")
GROUPS = ("vanda-sanctions", "vanda-reporting")


async def send_all(url: str, reports: list[dict[str, Any]], acked: set[str], *, api_key: str,
                   concurrency: int = 8, deadline_s: float = 300) -> Counter[int]:
    """POST every report until intake acknowledges it, retrying failures as an upstream system would."""
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for report in reports:
        queue.put_nowait(report)
    statuses: Counter[int] = Counter()
    stop_at = time.monotonic() + deadline_s

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            report = queue.get_nowait()
            for attempt in range(10_000):
                assert time.monotonic() < stop_at, "intake never came back"
                try:
                    response = await client.post("/v1/incidents", json=report)
                    statuses[response.status_code] += 1
                    if response.status_code == 202:
                        acked.add(report["source_ref"])
                        break
                    assert response.status_code >= 500, response.text  # a 4xx here is a bug, not a fault
                except httpx.TransportError:
                    statuses[0] += 1
                await asyncio.sleep(min(0.05 * 2 ** min(attempt, 6), 2))

    async with httpx.AsyncClient(base_url=url, timeout=10, headers={"X-API-Key": api_key}) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return statuses


async def quiesce(bootstrap: str, dsn: str, timeout: float = 240) -> None:
    """Wait until every outbox is empty and both consumer groups have no lag, twice in a row."""
    deadline, calm = time.monotonic() + timeout, 0
    while calm < 2:
        assert time.monotonic() < deadline, "pipeline did not settle"
        calm = calm + 1 if await _idle(bootstrap, dsn) else 0
        await asyncio.sleep(1)


async def _idle(bootstrap: str, dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn)
        try:
            pending = sum([await conn.fetchval(f"SELECT count(*) FROM {s}.outbox WHERE sent_at IS NULL")
                           for s in ("intake", "sanctions", "reporting")])
        finally:
            await conn.close()
        return pending == 0 and await _lag(bootstrap) == 0
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


async def _lag(bootstrap: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        await consumer.start()
        try:
            lag = 0
            for group in GROUPS:
                committed = await admin.list_consumer_group_offsets(group)
                wanted = [tp for tp in committed if tp.topic in TOPICS]
                ends = await consumer.end_offsets(wanted) if wanted else {}
                lag += sum(max(0, ends[tp] - committed[tp].offset) for tp in wanted)
                if not wanted:
                    lag += 1  # the group has committed nothing yet
            return lag
        finally:
            await consumer.stop()
    finally:
        await admin.close()


async def stored_refs(dsn: str, source_system: str) -> set[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT source_ref FROM intake.incidents WHERE source_system = $1", source_system)
        return {r["source_ref"] for r in rows}
    finally:
        await conn.close()


async def cards_match_an_undisturbed_run(dsn: str, source_system: str) -> bool:
    """The cards in force equal those the pure policy gives over the same stored incidents."""
    conn = await asyncpg.connect(dsn)
    try:
        subjects = [r["subject_id"] for r in await conn.fetch(
            "SELECT DISTINCT subject_id FROM intake.incidents WHERE source_system = $1 AND subject_id IS NOT NULL",
            source_system)]
        events = await conn.fetch("SELECT event FROM intake.incidents WHERE subject_id = ANY($1::text[])", subjects)
        actual = {(r["subject_id"], r["kind"], str(r["incident_id"])) for r in await conn.fetch(
            "SELECT subject_id, kind, incident_id FROM sanctions.cards WHERE subject_id = ANY($1::text[])"
            " AND status = ANY($2::text[])", subjects, [CardStatus.ISSUED.value, CardStatus.PROPOSED.value])}
    finally:
        await conn.close()
    return actual == _expected_cards([IncidentReported.model_validate_json(e["event"]) for e in events])


def _expected_cards(incidents: list[IncidentReported]) -> set[tuple[str, str, str]]:
    policy, states = load_policy(DEFAULT_POLICY), {}
    for incident in sorted(incidents, key=lambda i: i.reported_at):
        subject, command = incident_input(incident)
        if subject is None or not isinstance(command, IncidentSeen):
            continue
        state = states.get(subject, SubjectState(subject_id=subject))
        states[subject], _ = decide(state, command, policy, incident.reported_at)
    return {(s, c.kind.value, str(c.incident_id)) for s, state in states.items() for c in state.cards
            if c.status in (CardStatus.ISSUED, CardStatus.PROPOSED)}


async def duplicate_ids(bootstrap: str) -> tuple[int, int]:
    """(ids seen more than once with identical content, ids seen with different content) across topics."""
    same, different = 0, 0
    for topic in TOPICS:
        seen: dict[str, set[bytes]] = defaultdict(set)
        counts: Counter[str] = Counter()
        for record in await read_all(bootstrap, topic):
            event_id = orjson.loads(record.value)["id"]
            seen[event_id].add(record.value)
            counts[event_id] += 1
        same += sum(1 for i, n in counts.items() if n > 1 and len(seen[i]) == 1)
        different += sum(1 for contents in seen.values() if len(contents) > 1)
    return same, different


async def board_matches_topics(bootstrap: str, reporting_url: str, organisation: str, months: int,
                               jwt_secret: str) -> bool:
    """Reporting's live incident counts for one organisation equal a recount from the topic."""
    from datetime import UTC, datetime

    latest: dict[str, str] = {}
    for record in await read_all(bootstrap, "vanda.incidents.v1"):
        event = decode(record.value)
        if isinstance(event.data, IncidentReported) and event.data.organisation == organisation:
            latest[str(event.data.incident_id)] = event.data.category.value
    expected = Counter(latest.values())
    now = datetime.now(UTC)
    total = now.year * 12 + now.month - 1 - months
    start = f"{total // 12:04d}-{total % 12 + 1:02d}"
    # Raw counts (operations role): a recount must compare numbers, not suppressed cells.
    token = sign(jwt_secret, "fault-suite", ["operations"])
    async with httpx.AsyncClient(base_url=reporting_url, timeout=30,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        live = (await client.get("/v1/metrics/board", params={
            "from": start, "to": now.strftime("%Y-%m"), "organisation": organisation, "raw": "true"})).json()["totals"]
    return live["incidents"] == len(latest) and live["breakdowns"]["incidents_by_category"] == dict(expected)
