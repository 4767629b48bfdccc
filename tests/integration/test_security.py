"""Only known systems submit, only authorised people decide or re-identify, nothing leaks."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import asyncpg
import httpx
import pytest

from schemas.incidents import IncidentReport
from services.intake.bootstrap import create_app
from services.intake.config import IntakeSettings
from services.intake.domain import fingerprint
from services.intake.vault import (
    IdentityUnreadable,
    Keyring,
    KeySwapped,
    check_pseudonym_keys,
    key_id,
    purge,
    remember,
    reseal_fingerprints,
    reseal_identities,
    resolve_subject,
    reveal,
)
from tests.conftest import ROOT, bearer, source_key
from tests.factories import report
from vanda.runtime.db import create_pool
from vanda.runtime.service import Runtime
from vanda.runtime.settings import CommonSettings

pytestmark = pytest.mark.integration
IDENTIFIED, RETAINED, PURPOSED = "9990000204", "9990000212", "9990000263"
SHARED_WRONGLY, WITHDRAWN_ALONE = "9990006008", "9990006016"


def cli(pipeline, *args: str) -> str:
    env = dict(os.environ) | {"DATABASE_URL": pipeline["DATABASE_URL"], "COLUMNS": "250"}
    result = subprocess.run([sys.executable, "-m", "vanda", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


async def post(pipeline, body: dict, headers: dict) -> httpx.Response:
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30) as client:
        return await client.post("/v1/incidents", json=body, headers=headers)


async def stored(pipeline, source_ref: str) -> int:
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        return await conn.fetchval("SELECT count(*) FROM intake.incidents WHERE source_ref = $1", source_ref)
    finally:
        await conn.close()


async def test_api_keys_are_required_scoped_and_revocable(pipeline):
    key = cli(pipeline, "keys", "create", "--name", "Ward system", "--source", "ward-system").strip().splitlines()[-1]
    mine, theirs = report(source_system="ward-system"), report(source_system="other-system")
    assert (await post(pipeline, mine, {})).status_code == 401
    assert (await post(pipeline, mine, {"X-API-Key": "vk_nope_" + "x" * 30})).status_code == 401
    assert (await post(pipeline, theirs, {"X-API-Key": key})).status_code == 403
    assert await stored(pipeline, theirs["source_ref"]) == 0  # nothing kept from a refused request
    accepted = await post(pipeline, mine, {"X-API-Key": key})
    assert accepted.status_code == 202
    # Reading back is scoped the same way: a system sees its own incidents only.
    other = (await post(pipeline, report(source_system="datix"), source_key(pipeline))).json()["incident_id"]
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30, headers={"X-API-Key": key}) as client:
        assert (await client.get(f"/v1/incidents/{accepted.json()['incident_id']}")).status_code == 200
        assert (await client.get(f"/v1/incidents/{other}")).status_code == 403
    key_id = key.split("_")[1]
    assert key_id in cli(pipeline, "keys", "list") and key.split("_", 2)[2] not in cli(pipeline, "keys", "list")
    cli(pipeline, "keys", "revoke", key_id)
    assert (await post(pipeline, report(source_system="ward-system"), {"X-API-Key": key})).status_code == 401


async def test_re_identification_needs_the_correspondence_role_and_is_audited(pipeline):
    receipt = (await post(pipeline, report(perpetrator={"kind": "patient", "nhs_number": IDENTIFIED}),
                          source_key(pipeline))).json()
    path = f"/v1/subjects/{receipt['subject_id']}/identity"
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30) as client:
        assert (await client.get(path, params={"purpose": "warning letter"})).status_code == 401
        denied = await client.get(path, params={"purpose": "x1x"}, headers=bearer(pipeline, "board_viewer"))
        assert denied.status_code == 403
        found = await client.post(path, json={"purpose": "yellow card letter to patient and GP"},
                                  headers=bearer(pipeline, "correspondence", "letters-1"))
        # The query form stays for callers written before the body one, audited the same way.
        queried = await client.get(path, params={"purpose": "red card letter"},
                                   headers=bearer(pipeline, "correspondence", "letters-2"))
        # A person who acts for other trusts of a region: as if no identity were held.
        elsewhere = await client.post(path, json={"purpose": "letter about Mr Example"},
                                      headers=bearer(pipeline, "correspondence", "letters-3", orgs=["RXX", "ryy"]))
        own = await client.post(path, json={"purpose": "yellow card letter"},
                                headers=bearer(pipeline, "correspondence", "letters-4", orgs=["rza", "RXX"]))
    assert elsewhere.status_code == 404 and IDENTIFIED not in elsewhere.text
    assert own.status_code == 200 and own.json()["organisation"] == "RZA"
    assert found.status_code == 200 and found.json()["nhs_number"] == IDENTIFIED
    assert queried.status_code == 200 and queried.json() == found.json()
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        audit = await conn.fetch("SELECT actor, action, purpose FROM intake.audit WHERE subject_id = $1",
                                 receipt["subject_id"])
        raw = await conn.fetchval("SELECT ciphertext FROM intake.identities WHERE subject_id = $1",
                                  receipt["subject_id"])
    finally:
        await conn.close()
    assert {("letters-1", "yellow card letter to patient and GP"), ("letters-2", "red card letter")} <= {
        (r["actor"], r["purpose"]) for r in audit}
    # The refused attempt is audited, without the purpose it gave (which could name the person).
    assert [(r["actor"], r["action"], r["purpose"]) for r in audit if r["actor"] == "letters-3"] == [
        ("letters-3", "identity_read_refused", None)]
    assert IDENTIFIED.encode() not in bytes(raw)  # stored encrypted


async def test_a_withdrawn_report_hands_the_person_back_to_the_trust_that_reported_them_before(pipeline):
    """A report against the wrong person, withdrawn: the trust that made it no longer reads who
    they are, and the trust that reported them before writes their letters again."""
    async def reported(nhs: str, organisation: str) -> dict:
        body = report(organisation=organisation, perpetrator={"kind": "patient", "nhs_number": nhs})
        answer = await post(pipeline, body, source_key(pipeline))
        assert answer.status_code == 202, answer.text
        return answer.json()

    async def read(subject_id: str, org: str) -> int:
        async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30) as client:
            return (await client.post(f"/v1/subjects/{subject_id}/identity", json={"purpose": "warning letter"},
                                      headers=bearer(pipeline, "correspondence", f"letters-{org}", orgs=[org]))
                    ).status_code

    async def withdraw(incident_id: str) -> None:
        async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30, headers=source_key(pipeline)) as c:
            answer = await c.post(f"/v1/incidents/{incident_id}/withdraw", json={"reason": "entered_in_error"})
            assert answer.status_code == 202, answer.text

    first = await reported(SHARED_WRONGLY, "RZA")
    # Reported again within the hour, by another trust: the letters are now that trust's.
    wrong = await reported(SHARED_WRONGLY, "RYJ")
    assert (await read(first["subject_id"], "RYJ"), await read(first["subject_id"], "RZA")) == (200, 404)
    await withdraw(wrong["incident_id"])
    assert (await read(first["subject_id"], "RYJ"), await read(first["subject_id"], "RZA")) == (404, 200)
    # The only report about someone, withdrawn: its trust may owe them a letter taking back a
    # card sent before, and still writes it; no other trust reads who they are.
    alone = await reported(WITHDRAWN_ALONE, "RZA")
    await withdraw(alone["incident_id"])
    assert (await read(alone["subject_id"], "RZA"), await read(alone["subject_id"], "RYJ")) == (200, 404)


async def test_retention_purges_narratives_and_identities_but_keeps_the_incident(pipeline):
    receipt = (await post(pipeline, report(perpetrator={"kind": "patient", "nhs_number": RETAINED}),
                          source_key(pipeline))).json()
    later = (datetime.now(UTC) + timedelta(days=4000)).isoformat()
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30) as client:
        assert (await client.post("/v1/retention/run", json={"now": later})).status_code == 401
        purged = await client.post("/v1/retention/run", json={"now": later}, headers=bearer(pipeline, "operations"))
        # The body is optional, as on sanctions: a run now, purging nothing this young.
        bare = await client.post("/v1/retention/run", headers=bearer(pipeline, "operations"))
        gone = await client.get(f"/v1/subjects/{receipt['subject_id']}/identity", params={"purpose": "letter"},
                                headers=bearer(pipeline, "correspondence"))
    assert purged.status_code == 200 and purged.json()["identities"] >= 1 and purged.json()["narratives"] >= 1
    assert bare.status_code == 200 and bare.json()["identities"] == 0, bare.text
    assert gone.status_code == 404
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        row = await conn.fetchrow("SELECT narrative, subject_id FROM intake.incidents WHERE incident_id = $1",
                                  __import__("uuid").UUID(receipt["incident_id"]))
    finally:
        await conn.close()
    assert row["narrative"] is None and row["subject_id"] == receipt["subject_id"]


async def test_retention_clears_the_purposes_given_to_read_identities_and_nothing_else_of_the_audit(pipeline):
    receipt = (await post(pipeline, report(perpetrator={"kind": "patient", "nhs_number": PURPOSED}),
                          source_key(pipeline))).json()
    purpose = "letter to Mr Example about his dementia"
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30) as client:
        read = await client.get(f"/v1/subjects/{receipt['subject_id']}/identity", params={"purpose": purpose},
                                headers=bearer(pipeline, "correspondence", "letters-officer"))
        later = (datetime.now(UTC) + timedelta(days=4000)).isoformat()
        purged = await client.post("/v1/retention/run", json={"now": later}, headers=bearer(pipeline, "operations"))
    assert read.status_code == 200 and purged.status_code == 200 and purged.json()["purposes"] >= 1
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        row = await conn.fetchrow("SELECT id, actor, purpose, purpose_purged_at FROM intake.audit"
                                  " WHERE action = 'identity_read' AND subject_id = $1", receipt["subject_id"])
        assert (row["actor"], row["purpose"]) == ("letters-officer", None) and row["purpose_purged_at"] is not None
        assert await conn.fetchval("SELECT count(*) FROM intake.audit WHERE purpose = $1", purpose) == 0
        # The record of the purge itself keeps its own words; and the audit refuses all else.
        assert await conn.fetchval("SELECT count(*) FROM intake.audit WHERE action = 'retention_purge'"
                                   " AND purpose IS NOT NULL") >= 1
        for statement in ("UPDATE intake.audit SET purpose_purged_at = now() WHERE id = $1",
                          "UPDATE intake.audit SET actor = 'someone else' WHERE id = $1",
                          "DELETE FROM intake.audit WHERE id = $1"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(statement, row["id"])
    finally:
        await conn.close()


async def narratives_received(conn: asyncpg.Connection, source: str, received: list[datetime]) -> list[uuid.UUID]:
    """Incidents as intake stores them, each with a narrative, received at these times (nothing published)."""
    ids = [uuid.uuid4() for _ in received]
    await conn.executemany(
        "INSERT INTO intake.incidents (incident_id, source_system, source_ref, fingerprint, event, narrative,"
        " received_at) VALUES ($1, $2, $3, $4, '{}', 'He shouted at the nurse.', $5)",
        [(i, source, f"ref-{i}", f"k1:{i.hex}", at) for i, at in zip(ids, received, strict=True)])
    return ids


async def test_a_started_intake_purges_at_once_not_an_interval_after_it_starts(pipeline, monkeypatch):
    """A replica restarted more often than `INTAKE_RETENTION_INTERVAL_S` (a day) must still purge:
    the first round runs as intake starts, once the start's keying of bare fingerprints is done."""
    now = datetime.now(UTC)
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        old, young = await narratives_received(conn, f"restarted-{uuid.uuid4().hex[:8]}",
                                               [now - timedelta(days=400), now - timedelta(days=10)])
        await conn.execute("UPDATE intake.incidents SET fingerprint = $2 WHERE incident_id = $1", old, "0" * 64)

        async def without_kafka(runtime: Runtime, before_consuming=lambda: None) -> None:
            # PostgreSQL alone: consumers of its own would take partitions from the running intake.
            runtime.pool = await create_pool(runtime.settings.database_url, max_size=4, wait_s=10)
            runtime.relay = SimpleNamespace(wake=lambda: None)
            await before_consuming()

        monkeypatch.setattr(Runtime, "start", without_kafka)
        secret = {k: pipeline.get(k) or os.environ[k] for k in ("INTAKE_PSEUDONYM_KEY", "INTAKE_IDENTITY_KEY")}
        app = create_app(CommonSettings(database_url=pipeline["DATABASE_URL"],
                                        kafka_bootstrap_servers=pipeline["KAFKA_BOOTSTRAP_SERVERS"]),
                         IntakeSettings(pseudonym_key=secret["INTAKE_PSEUDONYM_KEY"],
                                        identity_key=secret["INTAKE_IDENTITY_KEY"], retention_days=30))
        async with app.router.lifespan_context(app):
            for _ in range(300):
                if await conn.fetchval("SELECT narrative FROM intake.incidents WHERE incident_id = $1", old) is None:
                    break
                await asyncio.sleep(0.05)
        rows = {r["incident_id"]: r for r in await conn.fetch(
            "SELECT incident_id, narrative, fingerprint FROM intake.incidents WHERE incident_id = ANY($1)",
            [old, young])}
    finally:
        await conn.close()
    assert rows[old]["narrative"] is None and rows[young]["narrative"] == "He shouted at the nurse."
    assert rows[old]["fingerprint"].startswith("k")  # keyed first: the purge waits for it


async def test_a_backlog_is_purged_a_chunk_at_a_time_to_the_last_row_and_nothing_younger(pipeline):
    """Each chunk is its own transaction, so a backlog (a first run on years of data, a shorter
    retention) never outlasts the statement timeout: in chunks of 2, every narrative, identity
    (with its local ids) and purpose past retention still goes, counted once, with one audit row."""
    cutoff, actor = datetime(2001, 6, 1, tzinfo=UTC), f"backlog-{uuid.uuid4().hex[:8]}"
    over, under = cutoff - timedelta(days=150), cutoff + timedelta(days=14)
    version = 20000 + int.from_bytes(os.urandom(2), "big")  # a key of its own: no one else's subjects
    ring = Keyring(version, {version: os.urandom(32)}, b"identity")
    pool = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            incidents = await narratives_received(conn, actor, [over] * 5 + [under])
            subjects = []
            for n, seen in enumerate([over] * 3 + [under]):
                async with conn.transaction():
                    identifier = f"nhs:99900072{n:02d}"
                    subjects.append(subject := await resolve_subject(conn, identifier, ring))
                    await remember(conn, subject, identifier, "RZA", ring, also_local=f"MRN{n}{uuid.uuid4().hex[:6]}")
                    await conn.execute("UPDATE intake.identities SET first_seen = $2, last_seen = $2"
                                       " WHERE subject_id = $1", subject, seen)
            reads = [await conn.fetchval("INSERT INTO intake.audit (at, actor, action, subject_id, purpose)"
                                         " VALUES ($1, 'letters-officer', 'identity_read', $2, 'letter about his"
                                         " dementia') RETURNING id", at, subjects[0]) for at in [over] * 3 + [under]]
        counts = await purge(pool, cutoff + timedelta(days=30), timedelta(days=30), actor, chunk=2)
        narratives = await pool.fetch("SELECT narrative FROM intake.incidents WHERE incident_id = ANY($1)"
                                      " ORDER BY received_at", incidents)
        kept = await pool.fetch("SELECT subject_id, (SELECT count(*) FROM intake.local_ids l"
                                " WHERE l.subject_id = i.subject_id) AS local_ids FROM intake.identities i"
                                " WHERE subject_id = ANY($1)", subjects)
        local_ids = await pool.fetchval("SELECT count(*) FROM intake.local_ids WHERE subject_id = ANY($1)", subjects)
        purposes = await pool.fetch("SELECT purpose, purpose_purged_at FROM intake.audit WHERE id = ANY($1)"
                                    " ORDER BY at", reads)
        audited = await pool.fetch("SELECT purpose FROM intake.audit WHERE actor = $1 AND action = 'retention_purge'",
                                   actor)
    finally:
        await pool.close()
    assert counts == {"narratives": 5, "identities": 3, "purposes": 3}
    assert [r["narrative"] for r in narratives] == [None] * 5 + ["He shouted at the nurse."]
    assert [tuple(r) for r in kept] == [(subjects[3], 1)] and local_ids == 1  # deleted with their identities
    assert [r["purpose"] for r in purposes] == [None] * 3 + ["letter about his dementia"]
    assert all(r["purpose_purged_at"] for r in purposes[:3]) and purposes[3]["purpose_purged_at"] is None
    assert len(audited) == 1 and audited[0]["purpose"].startswith(str(counts))


async def test_fingerprints_are_stored_keyed_and_bare_ones_are_resealed(pipeline):
    body, headers = report(), source_key(pipeline)
    assert (await post(pipeline, body, headers)).status_code == 202
    digest = fingerprint(IncidentReport(**body))
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        where = "FROM intake.incidents WHERE source_ref = $1"
        assert (await conn.fetchval(f"SELECT fingerprint {where}", body["source_ref"])).startswith("k")
        assert await conn.fetchval(f"SELECT count(*) FROM intake.incidents WHERE fingerprint LIKE '%{digest}%'") == 0
        # As stored before fingerprints were keyed: a retry is still a retry, and a different
        # report with the same ref still a conflict.
        await conn.execute("UPDATE intake.incidents SET fingerprint = $2 WHERE source_ref = $1",
                           body["source_ref"], digest)
        retry, changed = await post(pipeline, body, headers), await post(pipeline, body | {"harm": "low"}, headers)
        assert retry.headers.get("Idempotent-Replayed") == "true" and changed.status_code == 409
        ring = Keyring(1, {1: b"some other deployment's key"}, b"identity")
        pool = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=2)
        try:
            assert await reseal_fingerprints(pool, ring) == 1
        finally:
            await pool.close()
        resealed = await conn.fetchval(f"SELECT fingerprint {where}", body["source_ref"])
        assert resealed == ring.seal_fingerprint(digest)
        assert await conn.fetchval("SELECT count(*) FROM intake.incidents WHERE fingerprint NOT LIKE 'k%'") == 0
    finally:
        await conn.close()


async def test_key_rotation_keeps_a_subject_s_history_together(pipeline):
    old = Keyring(1, {1: b"old-key"}, b"identity")
    rotated = Keyring(2, {1: b"old-key", 2: b"new-key"}, b"identity")
    retired = Keyring(2, {2: b"new-key"}, b"identity")
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        async with conn.transaction():
            first = await resolve_subject(conn, "nhs:9990000220", old)
            await remember(conn, first, "nhs:9990000220", "RZA", old)
        async with conn.transaction():
            after_rotation = await resolve_subject(conn, "nhs:9990000220", rotated)
            await remember(conn, after_rotation, "nhs:9990000220", "RZA", rotated)
        after_retirement = await resolve_subject(conn, "nhs:9990000220", retired)
    finally:
        await conn.close()
    assert first == after_rotation == after_retirement


async def test_a_person_first_seen_under_a_new_key_is_found_by_a_replica_still_on_the_old_one(pipeline):
    # Replicas take a new pseudonym key one by one, so some still know only the old key; a
    # rollback likewise leaves subjects made under the new key to replicas without it.
    number = "nhs:9990000247"
    old = Keyring(1, {1: b"old-key-3"}, b"identity")
    new = Keyring(2, {1: b"old-key-3", 2: b"new-key-3"}, b"identity")
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        async with conn.transaction():
            first = await resolve_subject(conn, number, new)
            await remember(conn, first, number, "RZA", new)
        async with conn.transaction():
            again = await resolve_subject(conn, number, old)
            await remember(conn, again, number, "RZA", old)
        later = await resolve_subject(conn, number, new)
    finally:
        await conn.close()
    assert first == again == later


async def test_a_pseudonym_key_replaced_without_a_new_version_is_refused_naming_the_variable(pipeline):
    """Every person would get a new subject, silently: intake checks this before it consumes."""
    first, swapped, third = b"pseudonym key A " * 3, b"pseudonym key B " * 3, b"pseudonym key C " * 3
    version = 9000 + 2 * int.from_bytes(os.urandom(2), "big")  # versions no other test or the stack uses
    pool = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=2)
    try:
        await check_pseudonym_keys(pool, Keyring(version, {version: first}, b"identity"))
        # No one known under it yet: the first key recorded still wins (two replicas starting with
        # different keys must not both make pseudonyms); one recorded by mistake has its row deleted.
        with pytest.raises(KeySwapped):
            await check_pseudonym_keys(pool, Keyring(version, {version: third}, b"identity"))
        await sighting(pool, "nhs:9990006024", "RZA", Keyring(version, {version: first}, b"identity"))
        await check_pseudonym_keys(pool, Keyring(version, {version: first}, b"identity"))  # the same: fine
        with pytest.raises(KeySwapped, match=rf"^INTAKE_PSEUDONYM_KEY: version {version} is not the key"):
            await check_pseudonym_keys(pool, Keyring(version, {version: swapped}, b"identity"))
        rotated = Keyring(version + 1, {version: swapped, version + 1: first}, b"identity")
        with pytest.raises(KeySwapped, match=rf"^INTAKE_PREVIOUS_PSEUDONYM_KEYS: version {version} "):
            await check_pseudonym_keys(pool, rotated)
        # Judged by the data, not only by what was recorded: a swap before the first check is caught.
        await pool.execute("DELETE FROM intake.pseudonym_keys WHERE version = $1", version)
        with pytest.raises(KeySwapped):
            await check_pseudonym_keys(pool, Keyring(version, {version: swapped}, b"identity"))
        await check_pseudonym_keys(pool, Keyring(version, {version: first}, b"identity"))
        stored = await pool.fetchval("SELECT key_id FROM intake.pseudonym_keys WHERE version = $1", version)
    finally:
        await pool.close()
    assert first.decode() not in stored and len(stored) == 16  # a digest of the key, never the key


async def sighting(pool: asyncpg.Pool, identifier: str, organisation: str, keys: Keyring,
                   after_an_hour: bool = False) -> str:
    """A report of a person as intake records it; `after_an_hour`: as if the last sighting was
    two hours ago, past the hour in which a sighting is not rewritten."""
    async with pool.acquire() as conn, conn.transaction():
        subject = await resolve_subject(conn, identifier, keys)
        if after_an_hour:
            await conn.execute("UPDATE intake.identities SET last_seen = now() - interval '2 hours'"
                               " WHERE subject_id = $1", subject)
        await remember(conn, subject, identifier, organisation, keys)
    return subject


async def test_a_local_id_with_colons_is_revealed_whole_and_from_the_latest_organisation(pipeline):
    keys = Keyring(1, {1: b"pseudonym"}, b"identity")
    pool = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=2)
    try:
        subject = await sighting(pool, "local:RZA:MRN:004512", "RZA", keys)
        await sighting(pool, "local:RZA:MRN:004512", "RJ1", keys, after_an_hour=True)
        shown = await reveal(pool, subject, keys, "test", "letter")
    finally:
        await pool.close()
    assert (shown["local_id"], shown["organisation"]) == ("MRN:004512", "RJ1")


async def test_identity_key_rotation_still_reads_and_then_reseals_identities(pipeline):
    old = Keyring(1, {1: b"pseudonym"}, b"old-identity")
    rotated = Keyring(1, {1: b"pseudonym"}, b"new-identity", (b"old-identity",))
    retired = Keyring(1, {1: b"pseudonym"}, b"new-identity")
    pool = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=2)
    try:
        subject = await sighting(pool, "nhs:9990000239", "RZA", old)
        with pytest.raises(IdentityUnreadable):
            await reveal(pool, subject, retired, "test", "letter")
        async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30) as client:
            foreign = await client.get(f"/v1/subjects/{subject}/identity", params={"purpose": "letter"},
                                       headers=bearer(pipeline, "correspondence"))
        before = await reveal(pool, subject, rotated, "test", "letter")
        # Seen again after the hour in which a sighting is not rewritten: sealed under the new key.
        await sighting(pool, "nhs:9990000239", "RZA", rotated, after_an_hour=True)
        after = await reveal(pool, subject, retired, "test", "letter")
    finally:
        await pool.close()
    assert before["nhs_number"] == after["nhs_number"] == "9990000239"
    # The running intake holds neither key: it says which setting is missing, not a bare 500.
    assert foreign.status_code == 500 and "INTAKE_PREVIOUS_IDENTITY_KEYS" in foreign.json()["detail"]


async def test_after_an_identity_key_rotation_every_identity_is_resealed_so_the_old_key_can_go(pipeline):
    old = Keyring(1, {1: b"pseudonym"}, b"old-identity-2")
    rotated = Keyring(1, {1: b"pseudonym"}, b"new-identity-2", (b"old-identity-2",))
    retired = Keyring(1, {1: b"pseudonym"}, b"new-identity-2")
    stranger = Keyring(1, {1: b"pseudonym"}, b"some other deployment's identity key")
    pool = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=2)

    async def row(subject: str) -> asyncpg.Record:
        return await pool.fetchrow("SELECT nonce, ciphertext, key_id, last_seen FROM intake.identities"
                                   " WHERE subject_id = $1", subject)

    try:
        # Never seen again after the rotation: only a reseal can move them to the new key.
        quiet = await sighting(pool, "nhs:9990000255", "RZA", old)
        legacy = await sighting(pool, "nhs:9990000263", "RZA", old)
        altered = await sighting(pool, "nhs:9990000298", "RZA", old)
        foreign = await sighting(pool, "nhs:9990000271", "RZA", stranger)
        # Sealed before key ids were kept; and one whose sealed bytes were changed since.
        await pool.execute("UPDATE intake.identities SET key_id = NULL WHERE subject_id = ANY($1)", [legacy, altered])
        await pool.execute("UPDATE intake.identities SET ciphertext = '\\x00'::bytea || ciphertext"
                           " WHERE subject_id = $1", altered)
        before = {s: await row(s) for s in (quiet, altered, foreign)}
        first = await reseal_identities(pool, rotated)
        again = await reseal_identities(pool, rotated)
        after = {s: await row(s) for s in (quiet, legacy, altered, foreign)}
        shown = [(await reveal(pool, s, retired, "test", "letter"))["nhs_number"] for s in (quiet, legacy)]
    finally:
        await pool.close()
    assert {s: after[s]["key_id"] for s in (quiet, legacy)} == dict.fromkeys((quiet, legacy), key_id(b"new-identity-2"))
    assert shown == ["9990000255", "9990000263"]  # the old key gone, both still read
    assert after[quiet]["last_seen"] == before[quiet]["last_seen"]  # retention still counts from the sighting
    assert first.resealed >= 2 and first.left == again.left == again.resealed == 0
    # One under a key this replica lacks, and one altered, are left as they were and counted.
    assert after[foreign] == before[foreign] and after[altered] == before[altered]
    assert first.foreign >= 1 and first.unopened >= 1
    assert key_id(b"new-identity-2") != key_id(b"old-identity-2")


async def test_resealing_can_be_run_now_by_operations_alone(pipeline):
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=60) as client:
        refused = [(await client.post("/v1/identities/reseal", headers=h)).status_code
                   for h in ({}, bearer(pipeline, "correspondence"))]
        done = await client.post("/v1/identities/reseal", headers=bearer(pipeline, "operations"))
    assert refused == [401, 403]
    assert done.status_code == 200 and set(done.json()) == {"resealed", "under_earlier_keys", "unreadable"}
    assert done.json()["under_earlier_keys"] == 0
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        assert await conn.fetchval("SELECT count(*) FROM intake.audit WHERE action = 'identities_resealed'"
                                   " AND actor = 'tester-1' AND at > now() - interval '5 minutes'") >= 1
    finally:
        await conn.close()


async def test_oversized_and_implausible_reports_are_refused(pipeline):
    big = report(narrative="x" * 9000) | {"padding": "y" * 300_000}
    assert (await post(pipeline, big, source_key(pipeline))).status_code == 413
    future = await post(pipeline, report(occurred_at=(datetime.now(UTC) + timedelta(days=2)).isoformat()),
                        source_key(pipeline))
    ancient = await post(pipeline, report(occurred_at="1999-12-31T23:00:00+00:00"), source_key(pipeline))
    assert future.status_code == ancient.status_code == 422
    assert "future" in future.text and "2000" in ancient.text
