"""`vanda reporting rebuild` replays both topics into fresh tables identical to the live projection,
and refuses topics that no longer hold their whole history."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete

from schemas.events import decode
from services.reporting import adapters, handlers, rebuild as replay
from services.reporting.adapters import claim_of
from services.reporting.domain.facts import DecisionFact
from services.reporting.domain.police import Claim
from services.reporting.config import ReportingSettings, projection_settings
from services.reporting.handlers import Projection
from schemas.reporting import ReferralCriterion
from vanda.runtime.db import ROUND_LOCKS
from tests.conftest import ROOT
from vanda.runtime.db import create_pool
from tests.integration.test_reporting_board import intake_headers
from vanda import synthetic

pytestmark = pytest.mark.integration
COUNT = 1200


def rebuild(pipeline, organisation: str) -> subprocess.CompletedProcess[str]:
    return rebuild_command(pipeline, "--organisation", organisation)


def rebuild_command(pipeline, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ) | {"COLUMNS": "200", "DATABASE_URL": pipeline["DATABASE_URL"],
                              "KAFKA_BOOTSTRAP_SERVERS": pipeline["KAFKA_BOOTSTRAP_SERVERS"]} | extra
    return subprocess.run([sys.executable, "-m", "vanda", "reporting", "rebuild", *args,
                           "--home", pipeline["HOME_DIR"]], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def _decision() -> DecisionFact:
    d, at = uuid.uuid4(), datetime(2026, 3, 2, tzinfo=UTC)
    return DecisionFact(decision_id=d, kind="yellow_card_1", sanction_id=d, incident_id=uuid.uuid4(),
                        subject_id="sub_promote", organisation="RPROM", site="North", occurred_at=at, decided_at=at)


async def send(pipeline, reports: list[dict], concurrency: int = 8) -> list[int]:
    """POST every report, a few at a time; the status of each."""
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=60, headers=intake_headers(pipeline)) as client:
        async def one(chunk: list[dict]) -> list[int]:
            return [(await client.post("/v1/incidents", json=r)).status_code for r in chunk]
        chunks = await asyncio.gather(*(one(reports[i::concurrency]) for i in range(concurrency)))
    return [status for chunk in chunks for status in chunk]


async def live_count(pipeline, organisation: str) -> int:
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        return await conn.fetchval("SELECT count(*) FROM reporting.incidents WHERE organisation = $1", organisation)
    finally:
        await conn.close()


async def test_rebuild_equals_live_projection_after_a_synthetic_stream(pipeline):
    organisation = "R" + uuid.uuid4().hex[:5].upper()
    reports = [r | {"organisation": organisation, "source_system": f"rebuild-{organisation}"}
               for r in synthetic.incidents(COUNT, seed=int(time.time()), months=3)]
    assert await send(pipeline, reports) == [202] * COUNT
    deadline = time.monotonic() + 180
    while await live_count(pipeline, organisation) < COUNT and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert await live_count(pipeline, organisation) == COUNT

    # Sanction decisions keep arriving for a moment after the incidents: retry until the
    # rebuild (which reads up to the offsets at its start) has seen them all.
    deadline = time.monotonic() + 180
    while (result := rebuild(pipeline, organisation)).returncode != 0 and time.monotonic() < deadline:
        await asyncio.sleep(2)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "identical to the live projection" in result.stdout and "replayed" in result.stdout
    # The comparison leaves out the time of report (rows kept before it was have none): the
    # replay still fills it in, from the same reports.
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        same = await conn.fetchval(
            "SELECT count(*) FROM reporting.incidents l JOIN reporting_rebuild.incidents r USING (incident_id)"
            " WHERE l.organisation = $1 AND r.reported_at IS NOT NULL AND r.reported_at = l.reported_at", organisation)
    finally:
        await conn.close()
    assert same == COUNT


async def test_a_replay_refuses_topics_whose_first_events_were_deleted(pipeline) -> None:
    bootstrap, topic = pipeline["KAFKA_BOOTSTRAP_SERVERS"], f"cut-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await admin.start()
    await producer.start()
    try:
        await admin.create_topics([NewTopic(topic, 2, 1)])
        for n in range(6):
            await producer.send_and_wait(topic, b"{}", partition=n % 2)
        # What retention does to an old segment: the partition now begins past its first events.
        await admin.delete_records({TopicPartition(topic, 1): RecordsToDelete(2)})
        projection = Projection(ZoneInfo("Europe/London"), frozenset(), schema=replay.REBUILD_SCHEMA, emit=False)
        with pytest.raises(replay.HistoryDeleted) as refused:
            await replay.replay(pipeline["DATABASE_URL"], bootstrap, projection, topics=(topic,))
    finally:
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()
    assert refused.value.cut == {TopicPartition(topic, 1): 2}
    assert f"{topic} partition 1 begins at offset 2" in str(refused.value)


async def test_promotion_puts_the_rebuilt_tables_live_under_the_live_index_names(pipeline) -> None:
    suffix = uuid.uuid4().hex[:8]
    live, rebuilt, replaced = f"live_{suffix}", f"rebuilt_{suffix}", f"replaced_{suffix}"
    old, new = _decision(), _decision()
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=1)
    try:
        async with pool.acquire() as conn:
            wanted = {t: set((await replay._index_names(conn, "reporting", t)).values()) for t in replay.TABLES}
            for schema in (live, rebuilt):
                await conn.execute(f"CREATE SCHEMA {schema}")
                for table in replay.TABLES:
                    await conn.execute(f"CREATE TABLE {schema}.{table} (LIKE reporting.{table} INCLUDING ALL)")
            for table in replay.TABLES:  # the live copy's indexes get the names the migrations gave them
                named = await replay._index_names(conn, "reporting", table)
                for shape, name in (await replay._index_names(conn, live, table)).items():
                    if name != named[shape]:
                        await conn.execute(f'ALTER INDEX {live}."{name}" RENAME TO "{named[shape]}"')
            await adapters.save_decisions(conn, [old], live)
            await adapters.save_decisions(conn, [new], rebuilt)

        await replay.promote(pool, live, rebuilt, replaced)

        async with pool.acquire() as conn:
            assert await conn.fetchval(f"SELECT array_agg(decision_id) FROM {live}.decisions") == [new.decision_id]
            assert await conn.fetchval(f"SELECT array_agg(decision_id) FROM {replaced}.decisions") == [old.decision_id]
            assert not await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname = $1", rebuilt)
            for table in replay.TABLES:
                assert set((await replay._index_names(conn, live, table)).values()) == wanted[table], table
    finally:
        async with pool.acquire() as conn:
            for schema in (live, rebuilt, replaced):
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await pool.close()


def test_a_promotion_is_refused_while_reporting_consumes(pipeline) -> None:
    done = rebuild_command(pipeline, "--promote")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "stop reporting before promoting" in done.stdout and "vanda-reporting" in done.stdout
    assert "replayed" not in done.stdout  # refused before any work


async def test_reporting_records_the_settings_it_builds_the_projection_under(pipeline) -> None:
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=1)
    try:
        recorded = await adapters.projection_settings(pool)
    finally:
        await pool.close()
    assert recorded == projection_settings(ReportingSettings())  # the stack runs reporting with the defaults
    assert json.loads(recorded["REPORTING_POLICE_CRITERIA"]) == sorted(c.value for c in ReferralCriterion)


def test_a_rebuild_under_other_police_criteria_than_reportings_is_refused(pipeline) -> None:
    # From a shell without the deployment's criteria, a promotion would prompt the police for
    # incidents the trust no longer refers: refused before any work, naming the setting.
    done = rebuild_command(pipeline, REPORTING_POLICE_CRITERIA='["weapon"]')
    assert done.returncode == 2, done.stdout + done.stderr
    assert 'REPORTING_POLICE_CRITERIA: reporting runs with ["hate_aggravation",' in done.stdout
    assert 'this run has ["weapon"]' in done.stdout and "replayed" not in done.stdout


def test_a_promotion_checking_a_group_reporting_does_not_consume_in_is_refused(pipeline) -> None:
    # A group nobody consumes in has no members, so "reporting is stopped" would pass while it runs.
    done = rebuild_command(pipeline, "--promote", REPORTING_CONSUMER_GROUP=f"nobody-{uuid.uuid4().hex[:8]}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "REPORTING_CONSUMER_GROUP: reporting runs with vanda-reporting" in done.stdout
    assert "replayed" not in done.stdout and "promoted:" not in done.stdout


async def test_a_second_rebuild_is_refused_while_one_is_under_way(pipeline) -> None:
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:  # what a first rebuild holds from its start to its end
        assert await conn.fetchval("SELECT pg_try_advisory_lock($1, hashtext($2))", ROUND_LOCKS, replay.REBUILD_LOCK)
        done = await asyncio.to_thread(rebuild_command, pipeline)
    finally:
        await conn.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "another rebuild is under way" in done.stdout and "replayed" not in done.stdout


async def test_a_rebuild_is_refused_while_a_killed_ones_lanes_still_replay(pipeline) -> None:
    # A rebuild killed outright leaves its lane processes replaying into the rebuild schema;
    # what each of them holds while it lives:
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        await conn.execute("SELECT pg_advisory_lock_shared($1, hashtext($2))", ROUND_LOCKS, replay.LANES_LOCK)
        done = await asyncio.to_thread(rebuild_command, pipeline)
    finally:
        await conn.close()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "another rebuild is under way" in done.stdout and "replayed" not in done.stdout
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=1)
    try:  # the lanes gone, so is the refusal, and the rebuild's own lock is not left taken
        async with replay.one_at_a_time(pool) as mine:
            assert mine
        async with replay.one_at_a_time(pool) as mine:
            assert mine
    finally:
        await pool.close()


async def test_a_lane_replays_only_under_the_lanes_lock(pipeline) -> None:
    class Counter:  # the progress counter a lane process shares
        value = 0

        def get_lock(self):
            return contextlib.nullcontext()

    replay._share(Counter())
    projection = Projection(ZoneInfo("Europe/London"), frozenset(), schema=replay.REBUILD_SCHEMA, emit=False)
    url, bootstrap = pipeline["DATABASE_URL"], pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    ends = {TopicPartition("vanda.incidents.v1", 0): 0}
    conn = await asyncpg.connect(url)
    try:  # as a new rebuild checking for a killed one's lanes would, for as long as it checks
        await conn.execute("SELECT pg_advisory_lock($1, hashtext($2))", ROUND_LOCKS, replay.LANES_LOCK)
        lane = asyncio.create_task(replay._lane(url, bootstrap, projection, ends))
        await asyncio.sleep(2)
        assert not lane.done()  # waiting for the lock, not replaying
        await conn.execute("SELECT pg_advisory_unlock($1, hashtext($2))", ROUND_LOCKS, replay.LANES_LOCK)
        assert await asyncio.wait_for(lane, 30) == {}
        # A lane that began only after its rebuild died replays nothing: a new rebuild may be under way.
        pool = await create_pool(url, max_size=1)
        try:
            async with replay.one_at_a_time(pool) as owner:
                assert owner and await replay._lane(url, bootstrap, projection, ends, owner) == {}
        finally:
            await pool.close()
        with pytest.raises(replay.RebuildGone):
            await replay._lane(url, bootstrap, projection, ends, owner)
    finally:
        await conn.close()


async def test_a_group_that_never_committed_here_is_told_from_reportings(pipeline) -> None:
    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    deadline = time.monotonic() + 60  # reporting commits once it has consumed something
    while not await replay.has_committed(bootstrap, "vanda-reporting") and time.monotonic() < deadline:
        await asyncio.sleep(1)
    assert await replay.has_committed(bootstrap, "vanda-reporting")
    assert not await replay.has_committed(bootstrap, f"nobody-{uuid.uuid4().hex[:8]}")


async def test_live_tables_another_role_owns_are_named(pipeline) -> None:
    schema, role = f"owned_{uuid.uuid4().hex[:8]}", f"owner_{uuid.uuid4().hex[:8]}"
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=1)
    try:
        async with pool.acquire() as conn:
            await scratch(conn, schema, with_outbox=False)
            assert await replay.foreign_owner(conn, schema) is None  # the rebuild's own role owns them
            await conn.execute(f"CREATE ROLE {role} NOLOGIN")
            await conn.execute(f"ALTER TABLE {schema}.decisions OWNER TO {role}")
            assert await replay.foreign_owner(conn, schema) == role
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await conn.execute(f"DROP ROLE IF EXISTS {role}")
        await pool.close()


async def test_a_role_that_may_not_create_schemas_is_told_the_grant_it_needs(pipeline) -> None:
    role = f"Reader.{uuid.uuid4().hex[:8]}"  # a name only quoting keeps whole
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=1)

    class Undo(Exception):
        pass

    try:
        async with pool.acquire() as conn:
            await conn.execute(f'CREATE ROLE "{role}" NOLOGIN')
            database = await conn.fetchval("SELECT current_database()")
            with pytest.raises(Undo):  # every change below is rolled back
                async with conn.transaction():
                    await conn.execute("CREATE SCHEMA IF NOT EXISTS reporting_rebuild")  # left by an earlier rebuild
                    await conn.execute("DROP SCHEMA IF EXISTS reporting_replaced CASCADE")
                    assert await replay.grant_needed(conn) is None  # the test's own role may
                    await conn.execute(f'SET LOCAL ROLE "{role}"')
                    assert await replay.grant_needed(conn) == f'GRANT CREATE ON DATABASE "{database}" TO "{role}"'
                    await conn.execute("RESET ROLE")
                    await conn.execute(f'GRANT CREATE ON DATABASE "{database}" TO "{role}"')
                    await conn.execute(f'SET LOCAL ROLE "{role}"')
                    # The schema an earlier rebuild left, as another user, is not this one's to drop.
                    assert await replay.grant_needed(conn) == f'ALTER SCHEMA reporting_rebuild OWNER TO "{role}"'
                    await conn.execute("RESET ROLE")
                    await conn.execute(f'ALTER SCHEMA reporting_rebuild OWNER TO "{role}"')
                    await conn.execute(f'SET LOCAL ROLE "{role}"')
                    assert await replay.grant_needed(conn) is None
                    raise Undo
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        await pool.close()


async def scratch(conn: asyncpg.Connection, schema: str, with_outbox: bool = True) -> None:
    """A schema holding empty copies of reporting's tables (and outbox: a rebuild's has none)."""
    await conn.execute(f"CREATE SCHEMA {schema}")
    for table in (*replay.TABLES, "outbox") if with_outbox else replay.TABLES:
        await conn.execute(f"CREATE TABLE {schema}.{table} (LIKE reporting.{table} INCLUDING ALL)")


async def test_a_promotion_keeps_every_referral_claim_and_brings_the_topic_to_the_rebuilt_record(pipeline) -> None:
    from tests.unit.test_reporting_metrics import fact

    suffix = uuid.uuid4().hex[:8]
    live, rebuilt, replaced = f"live_{suffix}", f"rebuilt_{suffix}", f"replaced_{suffix}"
    kept, new, gone = fact(category="weapon"), fact(category="physical_assault"), fact(category="weapon")
    # Claimed by the replay, then withdrawn, or amended out of the criteria: no one to prompt.
    withdrawn, amended = fact(category="weapon", withdrawn=True), fact(category="verbal_abuse")
    # Prompted under physical assault, before that criterion was dropped; the replay, under
    # today's criteria alone, finds it meets none: the prompt it was sent under still stands.
    narrowed = fact(category="physical_assault")
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=1)
    try:
        async with pool.acquire() as conn:
            await scratch(conn, live)
            await scratch(conn, rebuilt, with_outbox=False)
            await adapters.save_incidents(conn, [kept, gone, narrowed], live)
            await adapters.save_incidents(conn, [kept, new, withdrawn, amended, replace(gone, withdrawn=True),
                                                 narrowed], rebuilt)
            # Live prompted `kept` and `gone` long ago; the rebuild, under new criteria, claims
            # `new` too, and finds `gone` withdrawn (the live consumer had missed it).
            await adapters.save_claims(conn, {kept.incident_id: Claim(("weapon",)),
                                              gone.incident_id: Claim(("weapon",), round=3),
                                              narrowed.incident_id: Claim(("physical_assault",))}, live)
            await adapters.save_claims(conn, {new.incident_id: Claim(("physical_assault",)),
                                              withdrawn.incident_id: Claim(("weapon",), False, False),
                                              amended.incident_id: Claim(("weapon",), False, False),
                                              gone.incident_id: Claim(("weapon",), False, False),
                                              narrowed.incident_id: Claim(("staff_wish_police_action",), False,
                                                                          False)}, rebuilt)

        await replay.promote(pool, live, rebuilt, replaced,
                             criteria=frozenset(ReferralCriterion) - {ReferralCriterion.PHYSICAL_ASSAULT})

        async with pool.acquire() as conn:
            claims = {r["incident_id"]: claim_of(r) for r in await conn.fetch(f"SELECT * FROM {live}.police_referrals")}
            staged = await conn.fetch(f"SELECT topic, key, event_type FROM {live}.outbox ORDER BY seq")
    finally:
        async with pool.acquire() as conn:
            for schema in (live, rebuilt, replaced):
                await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await pool.close()
    assert claims == {kept.incident_id: Claim(("weapon",)), new.incident_id: Claim(("physical_assault",)),
                      withdrawn.incident_id: Claim(("weapon",), False, False, 0),
                      amended.incident_id: Claim(("weapon",), False, False, 0),
                      gone.incident_id: Claim(("weapon",), False, False, 3),
                      narrowed.incident_id: Claim(("physical_assault",))}
    assert sorted((r["key"], r["event_type"].split(".")[-2]) for r in staged) == sorted([
        (str(new.incident_id), "police_referral_required"), (str(gone.incident_id), "police_referral_retracted")])
    assert {r["topic"] for r in staged} == {"vanda.police-referrals.v1"}


async def test_claims_made_before_retractions_are_settled_once(pipeline) -> None:
    from tests.unit.test_reporting_metrics import fact

    schema = f"legacy_{uuid.uuid4().hex[:8]}"
    standing, withdrawn, out = fact(category="weapon"), fact(category="weapon", withdrawn=True), fact()
    rolling = fact(category="weapon", withdrawn=True)
    migration = (ROOT / "services/reporting/migrations/0015_referral_retractions.sql").read_text()
    backfill = next(sql for sql in migration.split(";") if "UPDATE" in sql).replace("reporting.", f"{schema}.")
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=1)
    try:
        async with pool.acquire() as conn:
            await scratch(conn, schema)
            await adapters.save_incidents(conn, [standing, withdrawn, out], schema)
            # As the upgrade finds them: every claim prompted once; one amended out since.
            await adapters.save_claims(conn, {standing.incident_id: Claim(("weapon",)),
                                              withdrawn.incident_id: Claim(("weapon",)),
                                              out.incident_id: Claim(("weapon",), meets=False)}, schema)
            await conn.execute(backfill)
            # Withdrawn after the backfill by a replica of the version before: `meets` untouched.
            await adapters.save_incidents(conn, [rolling], schema)
            await adapters.save_claims(conn, {rolling.incident_id: Claim(("weapon",))}, schema)
            async with conn.transaction():
                first = await handlers.settle_claims(conn, schema, schema)
            async with conn.transaction():
                again = await handlers.settle_claims(conn, schema, schema)
            staged = await conn.fetch(f"SELECT key, payload FROM {schema}.outbox ORDER BY seq")
    finally:
        async with pool.acquire() as conn:
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await pool.close()
    assert (first, again) == (3, 0)
    reasons = {r["key"]: decode(r["payload"]).data.reason.value for r in staged}
    assert reasons == {str(withdrawn.incident_id): "withdrawn", str(out.incident_id): "criteria_no_longer_met",
                       str(rolling.incident_id): "withdrawn"}


async def test_a_group_that_consumed_past_the_replay_is_found(pipeline) -> None:
    from aiokafka import AIOKafkaConsumer

    bootstrap, group = pipeline["KAFKA_BOOTSTRAP_SERVERS"], f"test-rebuild-{uuid.uuid4().hex[:8]}"
    tp = TopicPartition("vanda.incidents.v1", 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.commit({tp: 7})
    finally:
        await consumer.stop()
    assert await replay.consumed_past(bootstrap, group, {tp: 5}) == {tp: 7}
    assert await replay.consumed_past(bootstrap, group, {tp: 7}) == {}


async def test_a_replay_skips_what_the_live_consumer_would_dead_letter_whatever_the_error(pipeline) -> None:
    """A time PostgreSQL cannot store (year 9999 at -14:00 is year 10000 in UTC) is refused by
    asyncpg as a DataError, not a ValueError: the live consumer dead-letters the event, and the
    replay must skip it too, not stop (a promotion would be impossible)."""
    from collections import Counter
    from datetime import timedelta, timezone

    from aiokafka import ConsumerRecord

    from schemas.events import encode, envelope
    from schemas.reporting import ReferralCriterion
    from schemas.topics import INCIDENTS
    from tests.factories import incident

    schema = "rebuild_skip_test"
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=2)
    try:
        await replay.fresh_schema(pool, schema)
        p = replace(Projection(ZoneInfo("Europe/London"), frozenset(ReferralCriterion)), schema=schema)
        late = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-14)))
        events = [envelope(incident().model_copy(update={"occurred_at": late}), source="/test", subject="s"),
                  envelope(incident(), source="/test", subject="s")]
        records = [ConsumerRecord(INCIDENTS, 0, n, 0, 0, b"k", encode(e), None, 1, len(encode(e)), [])
                   for n, e in enumerate(events)]
        result = replay.Replay()
        await replay._apply(pool, records, p, result)
        assert result.outcomes == Counter({"rejected": 1, "applied": 1})
        assert await pool.fetchval(f"SELECT count(*) FROM {schema}.incidents") == 1
    finally:
        await pool.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await pool.close()
