"""One-statement batch inserts on the real server: every column kind the services use round-trips."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest

from schemas.incidents import StaffAffected
from vanda.runtime.db import _init_connection
from vanda.runtime.rows import insert_many

pytestmark = pytest.mark.integration

COLUMNS = (("id", "uuid"), ("tags", "text[]"), ("doc", "jsonb"), ("note", "text"), ("at", "timestamptz"),
           ("n", "integer"), ("raw", "json"))


async def _connect(pipeline: dict[str, str]) -> asyncpg.Connection:
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    await _init_connection(conn)
    await conn.execute("CREATE TEMP TABLE batch (id uuid PRIMARY KEY, tags text[] NOT NULL, doc jsonb,"
                       " note text, at timestamptz, n integer, raw json)")
    return conn


async def test_every_column_kind_round_trips(pipeline: dict[str, str]) -> None:
    conn = await _connect(pipeline)
    try:
        at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
        staff = StaffAffected(staff_group="ambulance", ethnic_group="black")
        rows = [(uuid4(), ["b", "a"], [{"k": 1}, {"k": 2}], None, at, 1, [1, "x"]),  # lists: not a second dimension
                (uuid4(), [], {"z": None}, 'quote " and, comma', None, None, {"nested": {"a": [True]}}),
                (uuid4(), ["only"], staff, "model", at, 3, None)]  # a pydantic model is written as its JSON
        await insert_many(conn, "batch", COLUMNS, rows)
        got = {r["id"]: tuple(r) for r in await conn.fetch("SELECT id, tags, doc, note, at, n, raw FROM batch")}
        assert got[rows[0][0]] == rows[0]
        assert got[rows[1][0]] == rows[1]
        assert got[rows[2][0]][2] == staff.model_dump(mode="json")
    finally:
        await conn.close()


async def test_tail_and_empty_batches(pipeline: dict[str, str]) -> None:
    conn = await _connect(pipeline)
    try:
        key = uuid4()
        await insert_many(conn, "batch", COLUMNS, [])  # nothing to write is not an error
        await insert_many(conn, "batch", COLUMNS, [(key, ["x"], None, "first", None, 1, None)])
        await insert_many(conn, "batch", COLUMNS, [(key, ["y"], None, "second", None, 2, None)],
                          "ON CONFLICT (id) DO UPDATE SET note = EXCLUDED.note")
        assert await conn.fetchval("SELECT count(*) FROM batch") == 1
        assert tuple(await conn.fetchrow("SELECT tags, note, n FROM batch")) == (["x"], "second", 1)
    finally:
        await conn.close()
