"""Apply each service's SQL migrations with yoyo; each schema keeps its own history.

A service owns one PostgreSQL schema. yoyo's bookkeeping tables live inside that schema
(through search_path), so services migrate independently and never share history.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from yoyo import get_backend, read_migrations

from vanda.runtime.transport import TransportSettings, libpq_url

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
SERVICES = ("intake", "sanctions", "reporting")
# The class of the migration locks (two-key advisory locks), apart from the timed rounds' and
# any single-key lock.
MIGRATION_LOCKS = 0x6D696772
WAIT_S = 600.0  # as long as the Kubernetes migrate Job may run


def _yoyo_uri(database_url: str, schema: str) -> str:
    # yoyo picks its driver from the scheme; psycopg 3 is the maintained one.
    _, rest = database_url.split("://", 1)
    separator = "&" if "?" in rest else "?"
    return f"postgresql+psycopg://{rest}{separator}options=-csearch_path%3D{schema}"


def apply(database_url: str, service: str) -> int:
    """Apply a service's pending migrations; return how many ran."""
    database_url = libpq_url(database_url, TransportSettings())
    with psycopg.connect(database_url, autocommit=True) as conn:
        _schema(conn, service)
    backend = get_backend(_yoyo_uri(database_url, service))
    migrations = read_migrations(str(SERVICES_DIR / service / "migrations"))
    with held(backend, service):
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return len(pending)


def _schema(conn: psycopg.Connection, service: str) -> None:
    """Make the service's schema if it is missing. One an administrator made for the service's
    own database user is used as it is: that user need not be allowed to create schemas
    (PostgreSQL checks that right before IF NOT EXISTS). Two migrators making it at once
    (every pod's first start) race: the second finds it made."""
    if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (service,)).fetchone():
        return
    with contextlib.suppress(psycopg.errors.DuplicateSchema, psycopg.errors.UniqueViolation):
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {service}")


@contextlib.contextmanager
def held(backend: Any, service: str, wait_s: float = WAIT_S) -> Iterator[None]:
    """One migrator of a schema at a time, under a session advisory lock on yoyo's own connection.

    yoyo's own lock is a row its `finally` deletes: a migrator killed half-way (a Job's deadline,
    a pod evicted, SIGTERM) left it behind, and every later migrator, so every pod's start,
    failed until someone broke it by hand. PostgreSQL drops an advisory lock with its
    connection. Others wait for it (up to `wait_s`), not yoyo's 10 s, so that one long
    migration does not crash-loop the pods that start beside it.
    """
    backend.lock = lambda timeout=10: contextlib.nullcontext()  # yoyo takes its row lock no more
    deadline = time.monotonic() + wait_s
    while not _locked(backend, "pg_try_advisory_lock", service):
        if time.monotonic() > deadline:
            raise TimeoutError(f"another migrator of {service} has held its lock for {wait_s:g} s")
        time.sleep(0.5)
    try:
        yield
    finally:
        _locked(backend, "pg_advisory_unlock", service)


def _locked(backend: Any, function: str, service: str) -> bool:
    with backend.transaction():
        return bool(backend.execute(f"SELECT {function}({MIGRATION_LOCKS}, hashtext(:service))",
                                    {"service": service}).fetchone()[0])


def apply_all(database_url: str) -> dict[str, int]:
    """Apply every service's migrations; return how many ran for each."""
    return {service: apply(database_url, service) for service in SERVICES}


# What a service's schema holds that has an owner of its own. Indexes, a column's sequence, a
# range type's functions and a table's row type go with what they belong to; yoyo's tables are
# in the schema too.
_OWNED = """
SELECT 'TABLE', format('%%I.%%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'v', 'f')
UNION ALL
SELECT 'MATERIALIZED VIEW', format('%%I.%%I', n.nspname, c.relname) FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %(schema)s AND c.relkind = 'm'
UNION ALL
SELECT 'SEQUENCE', format('%%I.%%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = %(schema)s AND c.relkind = 'S'
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                     AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i'))
UNION ALL
SELECT 'ROUTINE', p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = %(schema)s
   AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                     AND d.deptype = 'i')
UNION ALL
SELECT 'TYPE', format('%%I.%%I', n.nspname, t.typname) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  LEFT JOIN pg_class r ON r.oid = t.typrelid
 WHERE n.nspname = %(schema)s AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND r.relkind = 'c'))
UNION ALL
SELECT 'STATISTICS', format('%%I.%%I', n.nspname, x.stxname) FROM pg_statistic_ext x
  JOIN pg_namespace n ON n.oid = x.stxnamespace WHERE n.nspname = %(schema)s
"""
# Schemas a service makes beside its own, that go with it: reporting's rebuild.
COMPANIONS = {"reporting": ("reporting_rebuild", "reporting_replaced")}


def hand_over(database_url: str, service: str, role: str, lock_timeout_s: int = 10) -> dict[str, int]:
    """Make `role` the owner of the service's schema (and of those beside it that go with it) and
    of everything in them; return how many objects it was given in each schema. Moving a
    deployment where one user owned every schema to a user per service: each then migrates,
    and owns, its own schema alone. One transaction, so a refusal (the connecting user may not
    give to `role`) leaves every owner as it was; one that waits on a running service's locks
    gives up after `lock_timeout_s` rather than hold the service's every query behind it."""
    database_url = libpq_url(database_url, TransportSettings())
    with psycopg.connect(database_url) as conn, conn.transaction():
        conn.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(f"{lock_timeout_s}s")))
        schemas = [name for (name,) in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s) ORDER BY nspname <> %s, nspname",
            ([service, *COMPANIONS.get(service, ())], service)).fetchall()]
        if service not in schemas:
            raise LookupError(f"there is no schema {service} in this database to hand over")
        to, given = sql.Identifier(role), {}
        for schema in schemas:
            conn.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(sql.Identifier(schema), to))
            owned = conn.execute(_OWNED, {"schema": schema}).fetchall()
            for kind, name in owned:
                # Names come from the catalogue, quoted there by format('%I') and regprocedure.
                conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(sql.SQL(kind), sql.SQL(name), to))
            given[schema] = len(owned)
    return given
