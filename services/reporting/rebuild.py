"""Replay both topics from the beginning into a fresh copy of the fact tables, compare, promote.

The copy lives in its own schema beside the live one (`reporting_rebuild`), built with
the same projection code, so it can be compared row by row with what the live consumer
built while the service keeps running. Nothing is published: a replay must not prompt the
police again or re-send board figures. Once reporting is stopped, the copy can replace the
live tables (after a fix to the projection, say), and the replaced ones are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from schemas.reporting import ReferralCriterion
from schemas.topics import INCIDENTS, SANCTIONS
from services.reporting import adapters, handlers
from services.reporting.domain import police
from services.reporting.domain.police import DEFAULT_CRITERIA
from vanda.runtime import heap, inbox
from vanda.runtime.consumer import claim_and_apply, decode_all
from vanda.runtime.db import ROUND_LOCKS, create_pool, is_transient
from vanda.runtime.transport import kafka_client_options

LIVE_SCHEMA = "reporting"
REBUILD_SCHEMA = "reporting_rebuild"
REPLACED_SCHEMA = "reporting_replaced"
TABLES = ("incidents", "decisions", "police_referrals", "inbox")
# Bookkeeping columns (when a row was written) differ by nature; everything else must match.
# The time of report is copied from the event, never worked out, and rows kept before it was
# have none: compared, every one of them would differ until the first promotion.
COMPARED = {"incidents": adapters.COLUMNS_BUT_REPORTED_AT, "decisions": "*",
            "police_referrals": "incident_id, criteria, meets"}


@dataclass
class Replay:
    total: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    ends: dict[TopicPartition, int] = field(default_factory=dict)  # the offsets replayed up to


async def fresh_schema(pool: asyncpg.Pool, schema: str = REBUILD_SCHEMA) -> None:
    """Drop and recreate the rebuild schema with tables shaped exactly like the live ones."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.execute(f"CREATE SCHEMA {schema}")
        for table in TABLES:
            await conn.execute(f"CREATE TABLE {schema}.{table} (LIKE reporting.{table} INCLUDING ALL)")


# Lanes replay side by side, each in its own process: a replay is CPU-bound in Python
# (decoding and projecting), and in one process it kept one core busy while PostgreSQL,
# waiting its turn, used a third of the other. One lane per core; there are never more
# lanes than partitions.
LANES = max(2, os.cpu_count() or 2)


async def replay(database_url: str, bootstrap: str, p: handlers.Projection,
                 progress: Callable[[int, int], None] = lambda done, total: None, lanes: int = LANES,
                 topics: tuple[str, ...] = (INCIDENTS, SANCTIONS), owner: int | None = None) -> Replay:
    """Apply every event up to the end offsets seen at the start; report (done, total) as it goes.
    `owner`: the backend of the rebuild's lock (`one_at_a_time`); a lane replays only while it holds it.

    Each lane replays the partitions with one remainder of the partition number, of both
    topics. Both topics are keyed by subject and have the same partitions, so one person's
    incidents and decisions stay in one lane, in order, and no two lanes write the same row.
    """
    ends, starts = await _offsets(bootstrap, topics)
    if cut := history_cut(starts):
        raise HistoryDeleted(cut)
    result = Replay(total=sum(ends[tp] - starts[tp] for tp in ends), ends=ends)
    split = lanes_of(sorted(ends), lanes)
    context = multiprocessing.get_context("spawn")  # never fork a process with a running event loop
    done = context.Value("q", 0)
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(len(split), mp_context=context, initializer=_share, initargs=(done,)) as executor:
        finished = asyncio.gather(*(loop.run_in_executor(executor, _run_lane, database_url, bootstrap, p,
                                                         {tp: ends[tp] for tp in lane}, owner) for lane in split))
        while not finished.done():
            progress(done.value, result.total)
            await asyncio.wait([finished], timeout=0.5)
        for outcomes in finished.result():
            result.outcomes.update(outcomes)
    progress(done.value, result.total)
    return result


class HistoryDeleted(RuntimeError):
    """The topics no longer begin at their first event: a replay would rebuild part of history."""

    def __init__(self, cut: dict[TopicPartition, int]) -> None:
        where = ", ".join(f"{tp.topic} partition {tp.partition} begins at offset {n}" for tp, n in sorted(cut.items()))
        super().__init__(f"events were deleted from the topics ({where}), by retention or by hand, so a replay"
                         " cannot rebuild the projection: keep the event topics with retention.ms=-1")
        self.cut = cut


def history_cut(starts: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Partitions whose first offset is past 0: their earliest events are gone."""
    return {tp: n for tp, n in starts.items() if n > 0}


def lanes_of(parts: list[TopicPartition], lanes: int) -> list[list[TopicPartition]]:
    """Partitions by lane: the same partition number of every topic in one lane, no lane empty."""
    split = [[tp for tp in parts if tp.partition % lanes == lane] for lane in range(lanes)]
    return [lane for lane in split if lane]


_done: Any = None  # a lane process's share of the progress counter


def _share(done: Any) -> None:
    global _done
    _done = done


def _run_lane(database_url: str, bootstrap: str, p: handlers.Projection,
              ends: dict[TopicPartition, int], owner: int | None = None) -> Counter[str]:
    """A lane process: replay its partitions up to `ends`; the outcomes."""
    heap.tune()  # a replay is one long batch job: the services' collector settings fit it too
    return asyncio.run(_lane(database_url, bootstrap, p, ends, owner))


class RebuildGone(RuntimeError):
    """The rebuild that started a lane no longer holds its lock: the lane replays nothing."""


async def _lane(database_url: str, bootstrap: str, p: handlers.Projection,
                ends: dict[TopicPartition, int], owner: int | None = None) -> Counter[str]:
    result = Replay()
    pool = await create_pool(database_url, max_size=2)  # one connection holds the lane's lock
    consumer = _consumer(bootstrap)
    try:
        async with pool.acquire() as holder:
            await holder.execute("SELECT pg_advisory_lock_shared($1, hashtext($2))", ROUND_LOCKS, LANES_LOCK)
            # A lane that took its lock only after its rebuild died (it was still starting) could
            # follow a new rebuild's check that no lane runs: so it asks that its rebuild still holds.
            if owner is not None and not await _holds_rebuild_lock(holder, owner):
                raise RebuildGone(f"the rebuild that started this lane (backend {owner}) has gone")
            return await _replay_lane(pool, consumer, p, ends, result)
    finally:
        await consumer.stop()
        await pool.close()


async def _replay_lane(pool: asyncpg.Pool, consumer: AIOKafkaConsumer, p: handlers.Projection,
                       ends: dict[TopicPartition, int], result: Replay) -> Counter[str]:
    await consumer.start()
    consumer.assign(list(ends))
    await consumer.seek_to_beginning(*ends)
    while await _behind(consumer, ends):
        batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
        records = [r for tp, rs in batches.items() for r in rs if r.offset < ends[tp]]
        await _apply(pool, records, p, result)
        with _done.get_lock():
            _done.value += len(records)
    return result.outcomes


def _consumer(bootstrap: str) -> AIOKafkaConsumer:
    # Large fetches: a replay reads everything, so fewer, fuller round trips feed the batches.
    return AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                            auto_offset_reset="earliest", max_partition_fetch_bytes=8 * 1024 * 1024,
                            fetch_max_bytes=64 * 1024 * 1024, **kafka_client_options())


async def _offsets(bootstrap: str, topics: tuple[str, ...]) -> tuple[dict[TopicPartition, int],
                                                                     dict[TopicPartition, int]]:
    """End and beginning offsets of every partition of the topics, now: what the replay covers."""
    parts = await _partitions(bootstrap, topics)
    consumer = _consumer(bootstrap)
    await consumer.start()
    try:
        return await consumer.end_offsets(parts), await consumer.beginning_offsets(parts)
    finally:
        await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return True
    return False


async def _partitions(bootstrap: str, topics: tuple[str, ...]) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="vanda-reporting-rebuild",
                                **kafka_client_options())
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [TopicPartition(t["topic"], p["partition"]) for t in described for p in t["partitions"]]


async def _apply(pool: asyncpg.Pool, records: list[ConsumerRecord], p: handlers.Projection, result: Replay) -> None:
    """The live consumer's semantics: dedupe by event id, skip what it would dead-letter."""
    decoded, unparseable = decode_all(records)
    result.outcomes["unparseable"] += len(unparseable)
    try:
        # The live consumer's fast path first: the whole batch in a few statements.
        async with pool.acquire() as conn, conn.transaction():
            together = await claim_and_apply(conn, p.schema, decoded, lambda c, events: handlers.on_events(c, events, p))
        result.outcomes["applied"] += sum(together.applied.values())
        result.outcomes["duplicate"] += sum(together.duplicates.values())
    except Exception as exc:  # noqa: BLE001 - as the live consumer: an outage propagates, else an event's fault
        if is_transient(exc):
            raise
        await _apply_one_by_one(pool, decoded, p, result)


async def _apply_one_by_one(pool: asyncpg.Pool, decoded: list[tuple[ConsumerRecord, Any]], p: handlers.Projection,
                            result: Replay) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for record, event in decoded:
            try:
                async with conn.transaction():
                    if not await inbox.claim(conn, p.schema, event.id, record.topic):
                        result.outcomes["duplicate"] += 1
                        continue
                    await handlers.on_event(conn, event, p)
                    result.outcomes["applied"] += 1
            except Exception as exc:  # noqa: BLE001 - what the live consumer dead-letters, the replay skips
                if is_transient(exc):
                    raise
                result.outcomes["rejected"] += 1


async def differences(pool: asyncpg.Pool, organisation: str | None = None,
                      schema: str = REBUILD_SCHEMA) -> dict[str, int]:
    """Rows in one of live and rebuilt but not the other, per table (zero everywhere when identical)."""
    out = {}
    for table, columns in COMPARED.items():
        scope = "" if organisation is None else (
            " WHERE organisation = $1" if table != "police_referrals"
            else " WHERE incident_id IN (SELECT incident_id FROM {s}.incidents WHERE organisation = $1)")
        live = f"SELECT {columns} FROM reporting.{table}" + scope.format(s="reporting")
        rebuilt = f"SELECT {columns} FROM {schema}.{table}" + scope.format(s=schema)
        args = [] if organisation is None else [organisation]
        query = f"SELECT (SELECT count(*) FROM ({live} EXCEPT ALL {rebuilt}) a) + (SELECT count(*) FROM ({rebuilt} EXCEPT ALL {live}) b)"
        out[table] = await pool.fetchval(query, *args)
    return out


@contextlib.asynccontextmanager
async def _admin(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="vanda-reporting-rebuild",
                                **kafka_client_options())
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def group_members(bootstrap: str, group: str) -> int:
    """How many consumers the group has now: a promotion needs reporting stopped, so none."""
    async with _admin(bootstrap) as admin:
        [response] = await admin.describe_consumer_groups([group])
    [(error, _group, _state, _protocol_type, _protocol, members, *_)] = response.groups
    if error:  # not allowed to look, say: never take that for "stopped"
        raise RuntimeError(f"could not describe consumer group {group}: Kafka error code {error}")
    return len(members)


REBUILD_LOCK = "reporting-rebuild"
# Held shared by each lane for its life. A rebuild killed outright leaves its lane processes
# replaying on to their ends, into tables a new rebuild would have just made afresh, out of
# order with its own lanes: no new rebuild starts until they are gone.
LANES_LOCK = "reporting-rebuild-lanes"


@contextlib.asynccontextmanager
async def one_at_a_time(pool: asyncpg.Pool) -> AsyncIterator[int | None]:
    """Whether this rebuild has the rebuild schema to itself until the block ends: the backend
    holding its lock, for `replay`'s lanes to check (None: another is under way, or the lanes of
    one killed still run). Two would share it: one's fresh start
    would empty the tables the other is about to promote. A session lock, on a connection of its
    own, goes with a process that dies."""
    async with pool.acquire() as holder:
        mine = await holder.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", ROUND_LOCKS, REBUILD_LOCK)
        if mine and not await _no_lanes_running(holder):
            await holder.execute("SELECT pg_advisory_unlock($1, hashtext($2))", ROUND_LOCKS, REBUILD_LOCK)
            mine = False
        try:
            # The server's own pid, as pg_locks names it: the one a pooler such as PgBouncer
            # gives the client at connection is its own invention.
            yield await holder.fetchval("SELECT pg_backend_pid()") if mine else None
        finally:
            if mine:
                await holder.execute("SELECT pg_advisory_unlock($1, hashtext($2))", ROUND_LOCKS, REBUILD_LOCK)


async def _holds_rebuild_lock(conn: asyncpg.Connection, backend: int) -> bool:
    """Whether PostgreSQL backend `backend` holds the rebuild's lock (a two-key advisory lock:
    the keys are in classid and objid, as oids)."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND objsubid = 2 AND granted"
        " AND classid = $1::int4::oid AND objid = hashtext($2)::oid AND pid = $3)", ROUND_LOCKS, REBUILD_LOCK, backend))


async def _no_lanes_running(conn: asyncpg.Connection) -> bool:
    """Whether no lane holds its lock; taken and given back at once (this rebuild's own lanes,
    started later, take it shared)."""
    free = await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", ROUND_LOCKS, LANES_LOCK)
    if free:
        await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", ROUND_LOCKS, LANES_LOCK)
    return bool(free)


def settings_differ(recorded: dict[str, str], ours: dict[str, str]) -> list[str]:
    """Each setting reporting recorded building the live projection under that this run has
    otherwise, as a line naming it: a replay under other criteria, zone or group is not a copy."""
    return [f"{name}: reporting runs with {recorded[name]}, this run has {value}"
            for name, value in ours.items() if name in recorded and recorded[name] != value]


async def foreign_owner(pool: asyncpg.Pool | asyncpg.Connection, live: str = LIVE_SCHEMA) -> str | None:
    """The role owning the live tables, if it is not the one running the rebuild: promoted tables
    belong to whoever built them, and reporting could not read ones another role owns."""
    owners = await pool.fetch("SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = $1"
                              " AND tablename = ANY($2::text[]) AND tableowner <> current_user", live, list(TABLES))
    return owners[0]["tableowner"] if owners else None


async def grant_needed(pool: asyncpg.Pool | asyncpg.Connection) -> str | None:
    """What an administrator must run for this role to make the rebuild's schemas, if anything: a
    service's own role owns its schema and nothing more, and the rebuild makes two beside it,
    dropping any left by an earlier rebuild (one run as another user, before a move to a user
    per service, left them that user's)."""
    row = await pool.fetchrow("SELECT current_user AS who, current_database() AS db,"
                              " has_database_privilege(current_database(), 'CREATE') AS may")
    if not row["may"]:
        return f'GRANT CREATE ON DATABASE "{row["db"]}" TO "{row["who"]}"'
    # Whether this role may drop it: its owner's, or a member of the owning role. (Compared by
    # oid: current_user cast to regrole reads the name unquoted, and fails on "Vanda" or a dot.)
    others = await pool.fetch("SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])"
                              " AND NOT pg_has_role(nspowner, 'USAGE') ORDER BY nspname",
                              [REBUILD_SCHEMA, REPLACED_SCHEMA])
    return "; ".join(f'ALTER SCHEMA {r["nspname"]} OWNER TO "{row["who"]}"' for r in others) or None


async def has_committed(bootstrap: str, group: str) -> bool:
    """Whether the group has committed any offset here: a reporting that ever consumed has. None
    means the group or the Kafka is not reporting's, and that its members say nothing of it."""
    async with _admin(bootstrap) as admin:
        return bool(await admin.list_consumer_group_offsets(group))


async def promote(pool: asyncpg.Pool, live: str = LIVE_SCHEMA, rebuilt: str = REBUILD_SCHEMA,
                  replaced: str = REPLACED_SCHEMA, criteria: frozenset[ReferralCriterion] = DEFAULT_CRITERIA) -> None:
    """Make the rebuilt tables the live ones, in one transaction; the live ones move to `replaced`.

    The inbox moves with the facts, so when reporting starts again from its committed
    offsets (never past the replay's end: `consumed_past` is checked first) it skips what
    the replay applied. Indexes take the live tables' names, which later migrations may use.
    Referral claims are kept once made, and the referral topic is brought to what the
    rebuilt record calls for: a prompt for a claim only the rebuild made (the criteria, or
    the projection, changed), a retraction where a prompt stands that the record no longer
    calls for. The replay sends neither, and the live consumer, finding the claim, never would.
    """
    async with pool.acquire() as conn, conn.transaction():
        await _carry_referrals(conn, live, rebuilt, criteria)
        await conn.execute(f"DROP SCHEMA IF EXISTS {replaced} CASCADE")
        await conn.execute(f"CREATE SCHEMA {replaced}")
        for table in TABLES:
            names = await _index_names(conn, live, table)
            await conn.execute(f"ALTER TABLE {live}.{table} SET SCHEMA {replaced}")
            await conn.execute(f"ALTER TABLE {rebuilt}.{table} SET SCHEMA {live}")
            for shape, name in (await _index_names(conn, live, table)).items():
                if shape in names and names[shape] != name:
                    await conn.execute(f'ALTER INDEX {live}."{name}" RENAME TO "{names[shape]}"')
        await conn.execute(f"DROP SCHEMA {rebuilt}")


async def _carry_referrals(conn: asyncpg.Connection, live: str, rebuilt: str,
                           criteria: frozenset[ReferralCriterion]) -> None:
    """Keep every claim the live side made, and what its topic last said of each; then send,
    through the live outbox with the promotion, what the rebuilt record calls for and the
    topic has not said: a prompt the replay claimed (it sends none), or a retraction."""
    await conn.execute(f"INSERT INTO {rebuilt}.police_referrals SELECT l.* FROM {live}.police_referrals l"
                       f" WHERE NOT EXISTS (SELECT 1 FROM {rebuilt}.police_referrals r"
                       "  WHERE r.incident_id = l.incident_id)")
    # The replay marked its claims as prompted, as if it had sent them: only the live side did.
    await conn.execute(f"UPDATE {rebuilt}.police_referrals r SET prompted = false, round = 0, prompted_under = NULL"
                       f" WHERE NOT EXISTS (SELECT 1 FROM {live}.police_referrals l"
                       "  WHERE l.incident_id = r.incident_id)")
    await conn.execute(f"UPDATE {rebuilt}.police_referrals r SET prompted = l.prompted, round = l.round,"
                       f" prompted_under = l.prompted_under FROM {live}.police_referrals l"
                       " WHERE l.incident_id = r.incident_id")
    await _judged_as_prompted(conn, rebuilt, criteria)
    await handlers.settle_claims(conn, rebuilt, live)


async def _judged_as_prompted(conn: asyncpg.Connection, rebuilt: str, criteria: frozenset[ReferralCriterion]) -> None:
    """The replay judged every record by today's criteria alone; a prompt the live side sent
    stands on those it was sent under too (police.in_force), so where the record still meets
    one of them it is not retracted."""
    claims = await adapters.unsettled_claims(conn, rebuilt)
    facts = await adapters.load_incidents(conn, list(claims), rebuilt)
    kept = {}
    for incident_id, claim in claims.items():
        if claim.prompted and incident_id in facts and (met := police.met_now(facts[incident_id], criteria, claim)):
            kept[incident_id] = police.next_claim(claim, met)
    await adapters.save_claims(conn, kept, rebuilt)


async def consumed_past(bootstrap: str, group: str, ends: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
    """Partitions where the group's committed offset passed the replay's end: reporting ran
    (and stopped again) during the replay, so what it applied then is in the tables a
    promotion replaces, and it would resume after it: lost."""
    async with _admin(bootstrap) as admin:
        committed = await admin.list_consumer_group_offsets(group)
    return {tp: meta.offset for tp, meta in committed.items() if tp in ends and meta.offset > ends[tp]}


async def _index_names(conn: asyncpg.Connection, schema: str, table: str) -> dict[str, str]:
    """A table's indexes by shape (unique or not, method, columns), whatever their names."""
    rows = await conn.fetch(
        "SELECT c.relname AS name, regexp_replace(pg_get_indexdef(x.indexrelid), ' INDEX \\S+ ON \\S+ ', ' ')"
        " AS shape FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
        " WHERE x.indrelid = format('%I.%I', $1::text, $2::text)::regclass", schema, table)
    return {r["shape"]: r["name"] for r in rows}
