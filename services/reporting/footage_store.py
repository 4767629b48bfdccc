"""Reporting's PostgreSQL adapter for body-worn camera footage: the worklist, the notices
to the camera system, and deletions recorded and retracted (each audited)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from services.reporting.adapters import TOLD, audit, incident_of
from services.reporting.domain.footage import CARD_KINDS, CARD_UNDONE, Footage
from vanda.runtime.db import PURGE_CHUNK, in_chunks

# Where footage stands, as footage.status() decides it, for the worklist's filter: `use` is
# whether anything rests on it, `since` when its period runs from (footage.delete_from:
# greatest() passes over a row's missing time of report), and {due} the parameter holding
# when the period ends for a period running from then (now minus the period).
FOOTAGE_USE = f"NOT i.withdrawn AND ({TOLD} OR i.police_outcome IS NOT NULL OR referral_claimed OR card_stands)"
# Written as incidents_footage_since_idx is (migration 0022), so that a held page can use it.
FOOTAGE_SINCE = "greatest(i.occurred_at, i.reported_at)"
FOOTAGE_STATUS = {
    None: "true",
    "deleted": "f.deleted_at IS NOT NULL",
    "evidence": f"f.deleted_at IS NULL AND {FOOTAGE_USE}",
    "held": f"f.deleted_at IS NULL AND NOT ({FOOTAGE_USE}) AND {FOOTAGE_SINCE} > {{due}}",
    "delete_due": f"f.deleted_at IS NULL AND NOT ({FOOTAGE_USE}) AND {FOOTAGE_SINCE} <= {{due}}",
}
# Each lookup is a probe by key with LIMIT 1, so that a page walks the incidents with footage
# in order and stops when it is full: written as EXISTS, PostgreSQL hashes every referral and
# card in the database first, and a page costs as much as the whole history.
FOOTAGE_FROM = (
    " FROM reporting.incidents i LEFT JOIN reporting.footage_deletions f USING (incident_id),"
    " LATERAL (SELECT (SELECT true FROM reporting.police_referrals r WHERE r.incident_id = i.incident_id"
    " AND r.meets LIMIT 1)"
    " IS NOT NULL AS referral_claimed, (SELECT true FROM reporting.decisions d WHERE d.incident_id = i.incident_id"
    f" AND d.kind IN {CARD_KINDS!r} AND (SELECT true FROM reporting.decisions e"
    f" WHERE e.sanction_id = d.sanction_id AND e.kind IN {CARD_UNDONE!r} LIMIT 1) IS NULL LIMIT 1) IS NOT NULL"
    " AS card_stands) u"
    " WHERE i.body_worn_camera")
FOOTAGE_COLUMNS = "SELECT i.*, u.*, f.deleted_at, f.recorded_by, f.unplanned"
FOOTAGE_SELECT = FOOTAGE_COLUMNS + FOOTAGE_FROM


def footage_of(row: asyncpg.Record) -> tuple[Footage, str | None]:
    """The footage a worklist row describes, and who recorded its deletion."""
    return (Footage(incident_of(row), row["referral_claimed"], row["card_stands"], row["deleted_at"],
                    bool(row["unplanned"])), row["recorded_by"])


async def footage(pool: asyncpg.Pool, status: str | None, organisations: list[str] | None, site: str | None,
                  after: tuple[datetime, UUID] | None, limit: int, due_before: datetime
                  ) -> list[tuple[Footage, str | None]]:
    """Up to `limit` incidents with footage, oldest first, from just after `after`; footage
    recorded before `due_before` with nothing resting on it is due for deletion."""
    # Every parameter is named with its type, whichever filter uses it, or PostgreSQL cannot type it.
    resume = (" AND (i.occurred_at, i.incident_id) > ($4, $5)" if after
              else " AND $4::timestamptz IS NULL AND $5::uuid IS NULL")
    rows = await pool.fetch(
        f"{FOOTAGE_SELECT} AND {FOOTAGE_STATUS[status].format(due='$6')} AND $6::timestamptz IS NOT NULL"
        " AND ($1::text[] IS NULL OR i.organisation = ANY($1)) AND ($2::text IS NULL OR i.site = $2)"
        f"{resume} ORDER BY i.occurred_at, i.incident_id LIMIT $3",
        organisations, site, limit, *(after or (None, None)), due_before)
    return [footage_of(r) for r in rows]


async def footage_one(pool: asyncpg.Pool, incident_id: UUID) -> tuple[Footage, str | None] | None:
    row = await pool.fetchrow(f"{FOOTAGE_SELECT} AND i.incident_id = $1", incident_id)
    return footage_of(row) if row else None


async def footage_due(pool: asyncpg.Pool, due_before: datetime) -> tuple[int, datetime | None]:
    """How many incidents' footage is due for deletion and not recorded deleted, and when the
    period of the longest due began."""
    row = await pool.fetchrow(f"SELECT count(*) AS n, min({FOOTAGE_SINCE}) AS oldest{FOOTAGE_FROM}"
                              f" AND {FOOTAGE_STATUS['delete_due'].format(due='$1')}", due_before)
    return row["n"], row["oldest"]


# Which status each notice announces: a hold when footage becomes evidence, a release when
# it falls due for deletion.
NOTICE_STATUS = {"hold": "evidence", "release": "delete_due"}


async def unannounced(pool: asyncpg.Pool, notice: str, due_before: datetime, limit: int
                      ) -> list[tuple[Footage, int]]:
    """Up to `limit` incidents whose footage stands where `notice` announces while the latest
    notice sent for it said otherwise (or none was sent), oldest first, each with the round
    this notice would be: footage can be held, released and held again."""
    rows = await pool.fetch(
        f"{FOOTAGE_COLUMNS}, (SELECT count(*) FROM reporting.footage_notices n WHERE n.incident_id = i.incident_id"
        f" AND n.notice = $1) + 1 AS round{FOOTAGE_FROM}"
        f" AND {FOOTAGE_STATUS[NOTICE_STATUS[notice]].format(due='$2')} AND $2::timestamptz IS NOT NULL"
        " AND (SELECT n.notice FROM reporting.footage_notices n WHERE n.incident_id = i.incident_id"
        " ORDER BY n.seq DESC LIMIT 1) IS DISTINCT FROM $1 ORDER BY i.occurred_at, i.incident_id LIMIT $3",
        notice, due_before, limit)
    return [(footage_of(r)[0], r["round"]) for r in rows]


async def claim_notice(conn: asyncpg.Connection, incident_id: UUID, notice: str, round_: int, event_id: str) -> bool:
    """Record that the notice's round goes out; False if it already did (another replica was first)."""
    return await conn.fetchval("INSERT INTO reporting.footage_notices (incident_id, notice, round, event_id)"
                               " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING true",
                               incident_id, notice, round_, event_id) is not None


async def record_deletion(pool: asyncpg.Pool, incident_id: UUID, at: datetime, by: str, unplanned: bool,
                          was: str) -> tuple[datetime, str, bool]:
    """Record that the footage was deleted, once (a repeat gets the first record back), and
    audit what it was when it went: `was` is its status then."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("INSERT INTO reporting.footage_deletions (incident_id, deleted_at, recorded_by,"
                                  " unplanned) VALUES ($1, $2, $3, $4) ON CONFLICT (incident_id) DO NOTHING"
                                  " RETURNING deleted_at, recorded_by, unplanned", incident_id, at, by, unplanned)
        if row is None:
            row = await conn.fetchrow("SELECT deleted_at, recorded_by, unplanned FROM reporting.footage_deletions"
                                      " WHERE incident_id = $1", incident_id)
        else:
            action = "footage_deleted_unplanned" if unplanned else "footage_deleted"
            await audit(conn, by, action, f"footage incident_id={incident_id} was={was} deleted_at={at.isoformat()}")
    return row["deleted_at"], row["recorded_by"], row["unplanned"]


async def retract_deletion(pool: asyncpg.Pool, incident_id: UUID, by: str, reason: str) -> asyncpg.Record | None:
    """Move a deletion recorded in error to the retractions, with who and why, and audit it;
    None when no deletion is recorded for the incident."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("DELETE FROM reporting.footage_deletions WHERE incident_id = $1"
                                  " RETURNING deleted_at, recorded_by, unplanned", incident_id)
        if row is None:
            return None
        await conn.execute("INSERT INTO reporting.footage_retractions (incident_id, deleted_at, recorded_by,"
                           " unplanned, retracted_by, reason) VALUES ($1, $2, $3, $4, $5, $6)",
                           incident_id, row["deleted_at"], row["recorded_by"], row["unplanned"], by, reason)
        await audit(conn, by, "footage_deletion_retracted",
                    f"footage incident_id={incident_id} deleted_at={row['deleted_at'].isoformat()}"
                    f" recorded_by={row['recorded_by']} reason={reason}")
    return row


async def purge_reasons(pool: asyncpg.Pool, cutoff: datetime, now: datetime, actor: str,
                        chunk: int = PURGE_CHUNK) -> dict[str, int]:
    """Clear why deletions were retracted, where that was before `cutoff`, from the retractions
    and the audit alike (the one change their triggers allow), `chunk` rows per transaction; who
    did what, and when, stays. The purge itself is audited."""
    counts = {
        "retraction_reasons": await in_chunks(
            pool, "reporting.footage_retractions",
            "UPDATE reporting.footage_retractions SET reason = NULL, reason_purged_at = $2",
            "reason IS NOT NULL AND retracted_at < $1", cutoff, now, chunk=chunk),
        "audit_reasons": await in_chunks(
            pool, "reporting.audit",
            "UPDATE reporting.audit SET what = reporting.reason_cleared(what), reason_purged_at = $2",
            "action = 'footage_deletion_retracted' AND reason_purged_at IS NULL AND at < $1"
            " AND position(' reason=' IN what) > 0", cutoff, now, chunk=chunk),
    }
    await audit(pool, actor, "retention_purge", f"{counts} older than {cutoff.isoformat()}")
    return counts

