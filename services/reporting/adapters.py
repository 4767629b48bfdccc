"""Reporting's PostgreSQL adapter: fact rows in and out, worklist, workforce, objectives
(footage has its own, `footage_store`).

Projection functions take the schema so that `vanda reporting rebuild` can replay into a
fresh copy of the tables beside the live ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import MISSING, fields
from functools import lru_cache
from datetime import date, datetime
from sys import intern
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from services.reporting.domain.facts import NOT_STATED, STATED_IF_RECORDED, DecisionFact, IncidentFact, Staff
from services.reporting.domain.metrics import CARDS
from services.reporting.domain.objectives import Direction, Objective
from services.reporting.domain.police import Claim
from services.reporting.domain.revisions import Published
from vanda.runtime.rows import insert_many

SCHEMA = "reporting"
T = TypeVar("T")
INCIDENT_COLUMNS = ("incident_id", "subject_id", "occurred_at", "organisation", "site", "location_type", "category",
                    "sexual_assault", "harm", "perpetrator_kind", "medical_factors", "age_band", "vulnerabilities",
                    "staff", "hate_aggravation", "body_worn_camera", "police_informed", "crime_reference",
                    "referred_at", "police_outcome", "revision", "withdrawn", "riddor_reported_at", "reported_at")
DECISION_COLUMNS = ("decision_id", "kind", "sanction_id", "incident_id", "subject_id", "organisation", "site",
                    "occurred_at", "decided_at", "starts_at", "ends_at")
# PostgreSQL types of the columns above, for the one-statement batch inserts.
INCIDENT_TYPES = tuple(zip(INCIDENT_COLUMNS, (
    "uuid", "text", "timestamptz", "text", "text", "text", "text", "boolean", "text", "text", "boolean", "text",
    "text[]", "jsonb", "text[]", "boolean", "boolean", "text", "timestamptz", "text", "integer", "boolean",
    "timestamptz", "timestamptz"), strict=True))
DECISION_TYPES = tuple(zip(DECISION_COLUMNS, (
    "uuid", "text", "uuid", "uuid", "text", "text", "text", "timestamptz", "timestamptz", "timestamptz",
    "timestamptz"), strict=True))
STAFF_FIELDS = tuple(f.name for f in fields(Staff))
STAFF_DEFAULTS = {f.name: f.default for f in fields(Staff) if f.default is not MISSING}
# Stored only when stated, so that a row where none is stated is what it was before they existed.
UNLESS_NOT_STATED = frozenset(STATED_IF_RECORDED)
BY_ID = "SELECT * FROM {schema}.incidents WHERE incident_id = ANY($1::uuid[])"
# What a board reads: up to millions of rows, and no time of report (a datetime fewer a row).
COLUMNS_BUT_REPORTED_AT = ", ".join(c for c in INCIDENT_COLUMNS if c != "reported_at")
READ_CHUNK = 2000  # rows decoded per visit to the event loop when a period is read
FILTER = " AND ($3::text IS NULL OR organisation = $3) AND ($4::text IS NULL OR site = $4)"
# A decision's location is its incident's: looked up by key, only when a location is asked for.
AT_LOCATION = (" AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM {schema}.incidents i"
               " WHERE i.incident_id = d.incident_id AND i.location_type = $5))")


def _incident_row(f: IncidentFact) -> tuple[Any, ...]:
    values = {c: getattr(f, c) for c in INCIDENT_COLUMNS}
    values["vulnerabilities"], values["hate_aggravation"] = list(f.vulnerabilities), list(f.hate_aggravation)
    values["staff"] = [{name: getattr(s, name) for name in STAFF_FIELDS
                        if name not in UNLESS_NOT_STATED or getattr(s, name) != NOT_STATED} for s in f.staff]
    return tuple(values[c] for c in INCIDENT_COLUMNS)


# A board reads up to millions of facts that repeat a few hundred distinct strings, staff
# entries and tag lists. Each row read would hold its own copies: sharing one of each
# halves a board's memory and leaves the collector far fewer objects to visit.
INCIDENT_TEXT = ("subject_id", "organisation", "site", "location_type", "category", "harm", "perpetrator_kind",
                 "age_band", "police_outcome")
DECISION_TEXT = frozenset({"kind", "subject_id", "organisation", "site"})


# Enough for every combination a large region's staff show in practice: a miss costs one object.
@lru_cache(maxsize=65536)
def _staff(*values: Any) -> Staff:
    return Staff(*(intern(v) if isinstance(v, str) else v for v in values))


def _staff_of(entry: dict[str, Any]) -> Staff:
    # Rows written before a field existed lack it, and read as its default.
    return _staff(*(entry.get(name, STAFF_DEFAULTS.get(name)) for name in STAFF_FIELDS))


@lru_cache(maxsize=4096)
def _shared(values: tuple[Any, ...]) -> tuple[Any, ...]:
    return values


def incident_of(row: asyncpg.Record) -> IncidentFact:
    values = dict(row)
    for c in INCIDENT_TEXT:
        if values[c] is not None:
            values[c] = intern(values[c])
    values["vulnerabilities"] = _shared(tuple(values["vulnerabilities"]))
    values["hate_aggravation"] = _shared(tuple(values["hate_aggravation"]))
    values["staff"] = _shared(tuple(_staff_of(s) for s in values["staff"]))
    return IncidentFact(**{c: values[c] for c in INCIDENT_COLUMNS if c in values})


def decision_of(row: asyncpg.Record) -> DecisionFact:
    values = {c: intern(row[c]) if c in DECISION_TEXT else row[c] for c in DECISION_COLUMNS}
    values["reissued"] = bool(row.get("reissued"))
    if values["sanction_id"] == values["decision_id"]:
        values["sanction_id"] = values["decision_id"]  # a card's own decision: one id object, not two
    return DecisionFact(**values)


async def load_incidents(conn: asyncpg.Connection, ids: list[UUID], schema: str = SCHEMA) -> dict[UUID, IncidentFact]:
    rows = await conn.fetch(BY_ID.format(schema=schema), list(set(ids)))
    return {r["incident_id"]: incident_of(r) for r in rows}


async def incidents_by_id(pool: asyncpg.Pool, ids: list[UUID], schema: str = SCHEMA) -> dict[UUID, IncidentFact]:
    """Many incidents by id, for a board: read in chunks, off the loop, like a period's rows."""
    facts = await _read(pool, incident_of, BY_ID.format(schema=schema), list(set(ids)))
    return {f.incident_id: f for f in facts}


async def save_incidents(conn: asyncpg.Connection, facts: list[IncidentFact], schema: str = SCHEMA) -> None:
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in INCIDENT_COLUMNS[1:])
    await insert_many(conn, f"{schema}.incidents", INCIDENT_TYPES, [_incident_row(f) for f in facts],
                      f"ON CONFLICT (incident_id) DO UPDATE SET {updates}")


async def save_decisions(conn: asyncpg.Connection, facts: list[DecisionFact], schema: str = SCHEMA) -> None:
    await insert_many(conn, f"{schema}.decisions", DECISION_TYPES,
                      [tuple(getattr(f, c) for c in DECISION_COLUMNS) for f in facts],
                      "ON CONFLICT (decision_id) DO NOTHING")


async def load_claims(conn: asyncpg.Connection, ids: list[UUID], schema: str = SCHEMA) -> dict[UUID, Claim]:
    """These incidents' referral claims, locked until the transaction ends: the settling round
    (or a replica still finishing a partition just taken over) waits rather than announcing one
    twice. Locked in one order, so two batches sharing incidents never deadlock."""
    rows = await conn.fetch(f"SELECT {CLAIM_COLUMNS} FROM {schema}.police_referrals"
                            " WHERE incident_id = ANY($1::uuid[]) ORDER BY incident_id FOR UPDATE", list(set(ids)))
    return {r["incident_id"]: claim_of(r) for r in rows}


async def unsettled_claims(conn: asyncpg.Connection, schema: str = SCHEMA) -> dict[UUID, Claim]:
    """Claims whose last event says otherwise than the record now does, locked as `load_claims`.
    One a consumer holds is skipped: applying its incident's events settles it anyway, and
    waiting on it (or it on us, in another order) could deadlock."""
    unsettled = await conn.fetch(f"SELECT {CLAIM_COLUMNS} FROM {schema}.police_referrals"
                                 " WHERE prompted <> meets FOR UPDATE SKIP LOCKED")
    # A withdrawal applied by a replica of the version before (during a rolling upgrade) left
    # `meets` as it was: such a claim is found through the withdrawn incidents' index.
    withdrawn = await conn.fetch(f"SELECT r.incident_id, r.criteria, false AS meets, r.prompted, r.round,"
                                 " r.prompted_under"
                                 f" FROM {schema}.incidents i JOIN {schema}.police_referrals r USING (incident_id)"
                                 " WHERE i.withdrawn AND r.prompted AND r.meets FOR UPDATE OF r SKIP LOCKED")
    return {r["incident_id"]: claim_of(r) for r in [*unsettled, *withdrawn]}


def claim_of(row: asyncpg.Record) -> Claim:
    return Claim(tuple(row["criteria"]), row["meets"], row["prompted"], row["round"],
                 tuple(row["prompted_under"] or ()))


CLAIM_TYPES = (("incident_id", "uuid"), ("criteria", "text[]"), ("meets", "boolean"), ("prompted", "boolean"),
               ("round", "integer"), ("prompted_under", "text[]"))
CLAIM_COLUMNS = ", ".join(name for name, _ in CLAIM_TYPES)


async def save_claims(conn: asyncpg.Connection, claims: dict[UUID, Claim], schema: str = SCHEMA) -> None:
    await insert_many(conn, f"{schema}.police_referrals", CLAIM_TYPES,
                      [(i, list(c.criteria), c.meets, c.prompted, c.round, list(c.prompted_under))
                       for i, c in claims.items()],
                      "ON CONFLICT (incident_id) DO UPDATE SET criteria = EXCLUDED.criteria, meets = EXCLUDED.meets,"
                      " prompted = EXCLUDED.prompted, round = EXCLUDED.round,"
                      " prompted_under = EXCLUDED.prompted_under")


async def incidents_between(pool: asyncpg.Pool, start: datetime, end: datetime, organisation: str | None,
                            site: str | None, schema: str = SCHEMA, location: str | None = None) -> list[IncidentFact]:
    return await _read(pool, incident_of, f"SELECT {COLUMNS_BUT_REPORTED_AT} FROM {schema}.incidents WHERE occurred_at >= $1"
                       " AND occurred_at < $2 AND NOT withdrawn" + FILTER
                       + " AND ($5::text IS NULL OR location_type = $5)", start, end, organisation, site, location)


# Whether a card's incident held a card before it, in this period or any earlier one.
REISSUED = (f"(d.kind IN {CARDS!r} AND EXISTS (SELECT 1 FROM {{schema}}.decisions e"
            f" WHERE e.incident_id = d.incident_id AND e.kind IN {CARDS!r}"
            " AND (e.decided_at, e.decision_id) < (d.decided_at, d.decision_id))) AS reissued")


async def decisions_before(pool: asyncpg.Pool, start: datetime, end: datetime, organisation: str | None,
                           site: str | None, schema: str = SCHEMA, location: str | None = None) -> list[DecisionFact]:
    """Decisions in the period, plus the bans still running when it starts and how they ended (for the
    bans in force at the end of each month). A ban that ended before the period cannot be in force in
    it, so the rest of history is not read: the board's cost does not grow with the years behind it."""
    at_location = AT_LOCATION.format(schema=schema)
    return await _read(
        pool, decision_of,
        f"WITH running AS (SELECT sanction_id FROM {schema}.decisions d WHERE kind = 'ban_imposed'"
        " AND decided_at < $1 AND ends_at > $1" + FILTER + at_location + ")"
        f" SELECT d.*, {REISSUED.format(schema=schema)} FROM {schema}.decisions d"
        " WHERE decided_at < $2 AND (decided_at >= $1"
        " OR (kind IN ('ban_imposed', 'rescinded', 'ban_expired') AND sanction_id IN (SELECT sanction_id FROM running)))"
        + FILTER + at_location, start, end, organisation, site, location)


async def _read(pool: asyncpg.Pool, convert: Callable[[asyncpg.Record], T], query: str, *args: Any) -> list[T]:
    """A period's rows as facts, read through a cursor a chunk at a time and converted in a thread.

    For a long period or a large region that is seconds of decoding and CPU, which the event
    loop spends serving consumers and health checks instead: read whole, the decoding alone
    held the loop for up to 2 s; a chunk holds it for milliseconds.
    """
    facts: list[T] = []
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        cursor = await conn.cursor(query, *args)
        while rows := await cursor.fetch(READ_CHUNK):
            facts.extend(await asyncio.to_thread(_convert_all, convert, rows))
    return facts


def _convert_all(convert: Callable[[asyncpg.Record], T], rows: list[asyncpg.Record]) -> list[T]:
    return [convert(r) for r in rows]


# Where a referral stands, as police.status() decides it, for the worklist's filter.
# A pending one also still meets the criteria: amended out of them, it waits on no one.
# IncidentFact.referred, short of an outcome.
TOLD = "(i.police_informed OR i.referred_at IS NOT NULL OR i.crime_reference IS NOT NULL)"
REFERRAL_STATUS = {
    None: f"(r.meets OR i.police_outcome IS NOT NULL OR {TOLD})",
    "closed": "i.police_outcome IS NOT NULL",
    "referred": f"i.police_outcome IS NULL AND {TOLD}",
    "pending": f"i.police_outcome IS NULL AND NOT {TOLD} AND r.meets",
}


async def referrals(pool: asyncpg.Pool, status: str | None, organisations: list[str] | None, site: str | None,
                    after: tuple[datetime, UUID] | None, limit: int) -> list[tuple[IncidentFact, list[str]]]:
    """Up to `limit` incidents that met the referral criteria and still stand, oldest first,
    from just after `after` (occurred_at, incident_id): a worklist is read a page at a time."""
    # Two statements, not "$3 IS NULL OR …": a later page then starts its index scan where
    # the previous one ended instead of walking every earlier referral again.
    resume = " AND (i.occurred_at, i.incident_id) > ($4, $5::uuid)" if after else " AND $4::int IS NULL"
    rows = await pool.fetch(
        "SELECT i.*, r.criteria FROM reporting.police_referrals r JOIN reporting.incidents i USING (incident_id)"
        f" WHERE NOT i.withdrawn AND {REFERRAL_STATUS[status]}"
        " AND ($1::text[] IS NULL OR i.organisation = ANY($1)) AND ($2::text IS NULL OR i.site = $2)"
        f"{resume} ORDER BY i.occurred_at, i.incident_id LIMIT $3",
        organisations, site, limit, *(after or (None,)))
    return [(incident_of(r), list(r["criteria"])) for r in rows]


async def put_workforce(pool: asyncpg.Pool, period: str, first: date, rows: list[dict[str, Any]],
                        actor: str) -> None:
    """Replace the period's headcount of each organisation in `rows` (a whole snapshot of it at a
    time), audited. Other organisations' rows stay: each trust loads its own staff, on its own dates."""
    organisations = sorted({r["organisation"] for r in rows})
    async with pool.acquire() as conn, conn.transaction():
        # The board's rates per 1,000 staff rest on it: who loaded what is kept, as for a decision.
        await audit(conn, actor, "workforce_loaded", f"workforce period={period}"
                    f" organisations={','.join(organisations)} rows={len(rows)}"
                    f" headcount={sum(r['headcount'] for r in rows)}")
        await _lock_workforce(conn, period, organisations)  # two loads at once would collide
        await conn.execute("DELETE FROM reporting.workforce WHERE period = $1 AND organisation = ANY($2::text[])",
                           period, organisations)
        await conn.executemany(
            "INSERT INTO reporting.workforce (period, first_month, organisation, site, staff_group, ethnic_group,"
            " disability, sex, headcount) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            [(period, first, r["organisation"], r["site"], r["staff_group"], r["ethnic_group"], r["disability"],
              r["sex"], r["headcount"]) for r in rows])


async def delete_workforce(pool: asyncpg.Pool, period: str, organisation: str, actor: str) -> int:
    """Remove one organisation's load for a period, audited; how many rows went."""
    async with pool.acquire() as conn, conn.transaction():
        await _lock_workforce(conn, period, [organisation])  # after a load under way, not beside it
        done = await conn.execute("DELETE FROM reporting.workforce WHERE period = $1 AND organisation = $2",
                                  period, organisation)
        if removed := int(done.split()[-1]):
            await audit(conn, actor, "workforce_withdrawn",
                        f"workforce period={period} organisation={organisation} rows={removed}")
    return removed


async def _lock_workforce(conn: asyncpg.Connection, period: str, organisations: list[str]) -> None:
    # Two writers of one organisation's period at once would each miss the other's rows: each
    # waits for the other instead (locks taken in one order, so no deadlock).
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('vanda.workforce:' || $1 || ':' || o, 0))"
                       " FROM unnest($2::text[]) AS o ORDER BY o", period, sorted(organisations))


# Of two snapshots from the same month (2024-04 and FY2024-25, say), the one of the shorter
# period: without a rule, which one a board used could change from one request to the next.
SHORTEST_FIRST = ("CASE WHEN period LIKE '%-Q_' THEN 1 WHEN period LIKE 'FY%-H_' THEN 2"
                  " WHEN period LIKE 'FY%' THEN 3 ELSE 0 END")


async def headcount(pool: asyncpg.Pool, period: str, last: date, organisation: str | None,
                    site: str | None) -> tuple[dict[tuple[str, str, str, str], int], set[str]]:
    """Staff in post by (staff group, ethnic group, disability, sex), and the organisations they
    are of: for each organisation in scope, the period's own snapshot, else its latest before
    the period's end. Chosen per organisation: a region's trusts may load on different dates,
    and one trust's snapshot holds none of another's staff."""
    where = " AND ($3::text IS NULL OR organisation = $3) AND ($4::text IS NULL OR site = $4)"
    rows = await pool.fetch(
        "WITH chosen AS (SELECT DISTINCT ON (organisation) organisation, period FROM reporting.workforce"
        f" WHERE (period = $1 OR first_month <= $2){where}"
        f" ORDER BY organisation, (period = $1) DESC, first_month DESC, {SHORTEST_FIRST})"
        " SELECT organisation, staff_group, ethnic_group, disability, sex, sum(headcount)::bigint AS n"
        f" FROM reporting.workforce JOIN chosen USING (organisation, period) WHERE true{where}"
        " GROUP BY organisation, staff_group, ethnic_group, disability, sex", period, last, organisation, site)
    heads: dict[tuple[str, str, str, str], int] = {}
    for r in rows:
        key = (r["staff_group"], r["ethnic_group"], r["disability"], r["sex"])
        heads[key] = heads.get(key, 0) + r["n"]
    return heads, {r["organisation"] for r in rows}


async def put_objective(pool: asyncpg.Pool, o: Objective, actor: str) -> None:
    """Set a board objective, audited: the board judges its figures against it."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO reporting.objectives (metric, target, direction, tolerance, months)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (metric) DO UPDATE SET target = EXCLUDED.target,"
            " direction = EXCLUDED.direction, tolerance = EXCLUDED.tolerance, months = EXCLUDED.months,"
            " updated_at = now()",
            o.metric, o.target, o.direction.value, o.tolerance, o.months)
        await audit(conn, actor, "objective_set", f"objective metric={o.metric} target={o.target}"
                    f" direction={o.direction.value} tolerance={o.tolerance} months={o.months}")


async def objectives(pool: asyncpg.Pool) -> list[Objective]:
    rows = await pool.fetch("SELECT metric, target, direction, tolerance, months FROM reporting.objectives"
                            " ORDER BY metric")
    return [Objective(r["metric"], r["target"], Direction(r["direction"]), r["tolerance"], r["months"]) for r in rows]


async def months_to_publish(pool: asyncpg.Pool, before: datetime, current: date, since: date,
                            zone: str) -> list[tuple[date, str]]:
    """(month, organisation) pairs to work out: each closed month (before `current`) from the
    organisation's first report on (withdrawn ones too: a month whose every report was withdrawn
    is revised to zero) that is not yet published, and every one from `since` on."""
    rows = await pool.fetch(
        "WITH firsts AS (SELECT organisation, min(date_trunc('month', occurred_at AT TIME ZONE $4)) AS first"
        "  FROM reporting.incidents WHERE occurred_at < $1 GROUP BY organisation),"
        " closed AS (SELECT m::date AS month, organisation FROM firsts,"
        "  generate_series(first, $2::date - interval '1 month', interval '1 month') AS m)"
        " SELECT month, organisation FROM closed c WHERE month >= $3 OR NOT EXISTS"
        "  (SELECT 1 FROM reporting.published_months p WHERE p.month = c.month AND p.organisation = c.organisation)"
        " ORDER BY 1, 2", before, current, since, zone)
    return [(r["month"], r["organisation"]) for r in rows]


async def published_month(conn: asyncpg.Connection, month: date, organisation: str) -> Published | None:
    """What went out for the month, locked until the transaction ends: the publishing round runs
    alone, but a replica of the version before revisions takes no part in that."""
    row = await conn.fetchrow("SELECT revision, digest FROM reporting.published_months"
                              " WHERE month = $1 AND organisation = $2 FOR UPDATE", month, organisation)
    return Published(row["revision"], row["digest"]) if row else None


async def record_month(conn: asyncpg.Connection, month: date, organisation: str, published: Published,
                       event_id: str, first: bool) -> bool:
    """Record what goes out for the month; False if a replica of the version before (which
    takes no lock) published its first revision meanwhile."""
    if first:
        return bool(await conn.fetchval(
            "INSERT INTO reporting.published_months (month, organisation, event_id, revision, digest)"
            " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING true",
            month, organisation, event_id, published.revision, published.digest))
    await conn.execute("UPDATE reporting.published_months SET revision = $3, digest = $4, event_id = $5,"
                       " published_at = now() WHERE month = $1 AND organisation = $2",
                       month, organisation, published.revision, published.digest, event_id)
    return True


async def audit(pool: asyncpg.Pool | asyncpg.Connection, actor: str, action: str, what: str) -> None:
    """Record a read of raw or incident-level data, or a record made by a person: who, and what."""
    await pool.execute("INSERT INTO reporting.audit (actor, action, what) VALUES ($1, $2, $3)", actor, action, what)


async def record_projection_settings(pool: asyncpg.Pool, values: dict[str, str]) -> None:
    """Record what this replica builds the projection under (the last replica to start wins)."""
    await pool.execute("INSERT INTO reporting.projection_settings (name, value)"
                       " SELECT * FROM unnest($1::text[], $2::text[])"
                       " ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, recorded_at = now()",
                       list(values), list(values.values()))


async def projection_settings(pool: asyncpg.Pool) -> dict[str, str]:
    """What reporting last recorded building the projection under (nothing before it first started)."""
    return {r["name"]: r["value"] for r in await pool.fetch("SELECT name, value FROM reporting.projection_settings")}
