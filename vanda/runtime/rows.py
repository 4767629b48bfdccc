"""Many rows in one statement: each column travels as one array parameter, unnested by the server.

`executemany` executes its statement once per row; for the batches the consumers write,
that per-row execution was a large share of PostgreSQL's work. One INSERT over unnested
arrays does the same in a single execution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from pydantic import BaseModel

Columns = Sequence[tuple[str, str]]  # (column name, PostgreSQL type), e.g. ("incident_id", "uuid")


# Values that are themselves lists would read as another array dimension (and unnest would
# flatten them), so json, jsonb and text[] columns travel as JSON text, one string per row.
AS_JSON = frozenset({"json", "jsonb", "text[]"})


def _param(position: int, kind: str) -> str:
    return f"${position}::text[]" if kind in AS_JSON else f"${position}::{kind}[]"


def _value(name: str, kind: str) -> str:
    if kind == "text[]":
        return f"ARRAY(SELECT jsonb_array_elements_text(r.{name}::jsonb))"
    return f"r.{name}::{kind}" if kind in AS_JSON else f"r.{name}"


def _json(value: Any) -> str | None:
    if value is None:
        return None
    # A pydantic model writes its own JSON, faster than dumping it to dicts first.
    return value.model_dump_json() if isinstance(value, BaseModel) else orjson.dumps(value).decode()


def _column(values: tuple[Any, ...], kind: str) -> list[Any]:
    return [_json(v) for v in values] if kind in AS_JSON else list(values)


def insert_sql(table: str, columns: Columns, tail: str = "") -> str:
    """`INSERT INTO table (...) SELECT ... FROM unnest($1::t1[], ...)` followed by `tail` (ON CONFLICT ...)."""
    names = ", ".join(name for name, _ in columns)
    params = ", ".join(_param(i, kind) for i, (_, kind) in enumerate(columns, 1))
    values = ", ".join(_value(name, kind) for name, kind in columns)
    return f"INSERT INTO {table} ({names}) SELECT {values} FROM unnest({params}) AS r({names}) {tail}".rstrip()


async def insert_many(conn: asyncpg.Connection, table: str, columns: Columns, rows: Sequence[Sequence[Any]],
                      tail: str = "") -> list[asyncpg.Record]:
    """Insert `rows` (tuples in the order of `columns`) in one statement; nothing to do for none.
    Returns what a `RETURNING` in `tail` gives (nothing without one).

    A json or jsonb value is anything orjson writes (an `orjson.Fragment` is already JSON), or a
    pydantic model.

    With `ON CONFLICT ... DO UPDATE`, no two rows may share a key: PostgreSQL refuses to
    update one row twice in a statement, so callers pass each key once.
    """
    if not rows:
        return []
    arrays = [_column(values, kind) for values, (_, kind) in zip(zip(*rows, strict=True), columns, strict=True)]
    return await conn.fetch(insert_sql(table, columns, tail), *arrays)
