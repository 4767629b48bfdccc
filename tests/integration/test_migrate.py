"""Migrations under a lock PostgreSQL drops with its connection, on a real server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import psycopg
import pytest
from yoyo import get_backend

from vanda.runtime import migrate

pytestmark = pytest.mark.integration

HOLD = """
import sys, time
from yoyo import get_backend
from vanda.runtime import migrate
backend = get_backend(migrate._yoyo_uri(sys.argv[1], "sanctions"))
with migrate.held(backend, "sanctions"):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_migrator_killed_while_it_holds_the_lock_leaves_nothing_behind(pipeline):
    url = pipeline["DATABASE_URL"]
    # What a killed migrator of the last release left: yoyo's own lock row. It is ignored now.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO sanctions.yoyo_lock (locked, ctime, pid) VALUES (1, now(), 99999)"
                     " ON CONFLICT DO NOTHING")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, url], stdout=subprocess.PIPE, text=True,
                              env=os.environ | {"PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout.readline().strip() == "held"
        backend = get_backend(migrate._yoyo_uri(url, "sanctions"))
        with pytest.raises(TimeoutError, match="another migrator of sanctions"):
            with migrate.held(backend, "sanctions", wait_s=1):
                pass
        holder.send_signal(signal.SIGKILL)  # no finally runs
        holder.wait(timeout=10)
        started = time.monotonic()
        assert migrate.apply(url, "sanctions") == 0  # all applied already: it only had to get in
        assert time.monotonic() - started < 9  # not yoyo's 10 s wait for a row never deleted
    finally:
        holder.kill()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM sanctions.yoyo_lock WHERE pid = 99999")


async def test_migrators_of_one_schema_take_turns_and_of_two_schemas_do_not_wait(pipeline):
    url = pipeline["DATABASE_URL"]
    other = await asyncpg.connect(url)
    try:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1, hashtext('intake'))", migrate.MIGRATION_LOCKS)
        backend = get_backend(migrate._yoyo_uri(url, "intake"))
        with pytest.raises(TimeoutError):
            with migrate.held(backend, "intake", wait_s=1):
                pass
        assert migrate.apply(url, "reporting") == 0  # another schema's migrator goes ahead
        await other.execute("SELECT pg_advisory_unlock($1, hashtext('intake'))", migrate.MIGRATION_LOCKS)
        with migrate.held(backend, "intake", wait_s=1):
            pass
    finally:
        await other.close()


@dataclass(frozen=True)
class Scratch:
    own: str  # the new database, as the administrator
    as_user: str  # the same, as the new role
    database: str
    user: str


@pytest.fixture
def scratch(pipeline) -> Iterator[Scratch]:
    """A database of its own, with PUBLIC unable to create schemas in it, and a login role
    that owns nothing yet: a deployment's starting point. Both go at the end."""
    admin, suffix = pipeline["DATABASE_URL"], f"{os.getpid()}_{time.time_ns() % 10**6}"
    database, user = f"vanda_roles_{suffix}", f"vanda_reporting_{suffix}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {database}")
        conn.execute(f"CREATE ROLE {user} LOGIN PASSWORD 'only-reporting'")
    parts = urlsplit(admin)
    own = urlunsplit(parts._replace(path=f"/{database}"))
    as_user = urlunsplit(parts._replace(netloc=f"{user}:only-reporting@{parts.hostname}:{parts.port}",
                                        path=f"/{database}"))
    try:
        with psycopg.connect(own, autocommit=True) as conn:
            conn.execute(f"REVOKE CREATE ON DATABASE {database} FROM PUBLIC")
        yield Scratch(own, as_user, database, user)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            conn.execute(f"DROP ROLE IF EXISTS {user}")


def test_a_services_own_user_migrates_the_schema_made_for_it_and_no_other(scratch):
    # Each service as its own database user, owning its schema and allowed nothing else:
    # not to create schemas, nor to read another service's tables.
    with psycopg.connect(scratch.own, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA reporting AUTHORIZATION {scratch.user}")
        conn.execute("CREATE SCHEMA intake")
    assert migrate.apply(scratch.as_user, "reporting") > 0  # every one of reporting's, as its own user
    assert migrate.apply(scratch.as_user, "reporting") == 0
    with psycopg.connect(scratch.as_user, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM reporting.incidents").fetchone() == (0,)
    # Another service's schema is not its own: nothing it may create there, or read.
    with pytest.raises((psycopg.errors.InsufficientPrivilege, psycopg.errors.InvalidSchemaName)):
        migrate.apply(scratch.as_user, "intake")


def test_a_schema_one_user_made_is_handed_whole_to_the_services_own(scratch):
    # A deployment from before per-service users: one user owns every schema. The administrator
    # hands reporting's (and its rebuild's) to its new user, which then migrates and writes it.
    owned_by_others = """SELECT count(*) FROM (
        SELECT c.relowner AS owner FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname LIKE 'reporting%%'
        UNION ALL SELECT p.proowner FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname LIKE 'reporting%%' AND NOT EXISTS (SELECT FROM pg_depend d
               WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'i')
        UNION ALL SELECT t.typowner FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname LIKE 'reporting%%'
        UNION ALL SELECT x.stxowner FROM pg_statistic_ext x JOIN pg_namespace n ON n.oid = x.stxnamespace
         WHERE n.nspname LIKE 'reporting%%'
        UNION ALL SELECT nspowner FROM pg_namespace WHERE nspname LIKE 'reporting%%') o
        WHERE owner <> %s::regrole"""
    assert migrate.apply(scratch.own, "reporting") > 0  # as the one user
    with psycopg.connect(scratch.own, autocommit=True) as conn:
        # What an earlier rebuild left, and kinds of object vanda's migrations may come to make.
        conn.execute("CREATE SCHEMA reporting_rebuild")
        conn.execute("CREATE TABLE reporting_rebuild.facts (LIKE reporting.audit INCLUDING ALL)")
        conn.execute("CREATE TYPE reporting.pair AS (a int, b int)")
        conn.execute("CREATE TYPE reporting.span AS RANGE (subtype = int4)")
        conn.execute("CREATE STATISTICS reporting.together ON actor, action FROM reporting.audit")
        assert conn.execute(owned_by_others, (scratch.user,)).fetchone()[0] > 0
    with pytest.raises(psycopg.errors.UndefinedObject):  # no such role: nothing changes hands
        migrate.hand_over(scratch.own, "reporting", f"nobody_{scratch.user}")
    with psycopg.connect(scratch.own, autocommit=True) as conn:
        assert conn.execute("SELECT nspowner = %s::regrole FROM pg_namespace WHERE nspname = 'reporting'",
                            (scratch.user,)).fetchone() == (False,)
    with pytest.raises(LookupError, match="no schema intake"):
        migrate.hand_over(scratch.own, "intake", scratch.user)

    # The schemas, their tables, functions, types, statistics and yoyo's:
    given = migrate.hand_over(scratch.own, "reporting", scratch.user)
    assert list(given) == ["reporting", "reporting_rebuild"] and given["reporting"] > 10
    assert given["reporting_rebuild"] == 1  # its one table
    with psycopg.connect(scratch.own, autocommit=True) as conn:
        assert conn.execute(owned_by_others, (scratch.user,)).fetchone() == (0,)
    assert migrate.apply(scratch.as_user, "reporting") == 0
    with psycopg.connect(scratch.as_user, autocommit=True) as conn:  # its tables, sequences, triggers
        conn.execute("INSERT INTO reporting.audit (actor, action, what) VALUES ('test', 'test', 'test')")
        with pytest.raises(psycopg.errors.RaiseException):  # the append-only trigger still guards
            conn.execute("DELETE FROM reporting.audit")
        conn.execute("DROP SCHEMA reporting_rebuild CASCADE")  # as a rebuild starts


def test_an_owner_short_of_a_superuser_hands_over_once_a_member_of_the_role(scratch):
    # Managed PostgreSQL has no superuser: the schemas' owner gives them away, and may give
    # only to a role it is a member of.
    legacy = f"legacy_{scratch.user}"
    parts = urlsplit(scratch.own)
    as_legacy = urlunsplit(parts._replace(netloc=f"{legacy}:legacy@{parts.hostname}:{parts.port}"))
    with psycopg.connect(scratch.own, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {legacy} LOGIN PASSWORD 'legacy'")
        conn.execute(f"GRANT CREATE ON DATABASE {scratch.database} TO {legacy}")  # it made the schemas
    try:
        migrate.apply(scratch.own, "reporting")
        migrate.hand_over(scratch.own, "reporting", legacy)  # as if the legacy user had made it
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=f'must be able to SET ROLE "{scratch.user}"'
                           f'|must be member of role "{scratch.user}"'):
            migrate.hand_over(as_legacy, "reporting", scratch.user)
        with psycopg.connect(scratch.own, autocommit=True) as conn:
            conn.execute(f"GRANT {scratch.user} TO {legacy}")
        assert migrate.hand_over(as_legacy, "reporting", scratch.user)["reporting"] > 10
        with psycopg.connect(scratch.own, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                                " WHERE n.nspname = 'reporting' AND c.relowner = %s::regrole",
                                (legacy,)).fetchone() == (0,)
    finally:
        with psycopg.connect(scratch.own, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {legacy}")
        with psycopg.connect(scratch.own.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
            conn.execute(f"DROP ROLE IF EXISTS {legacy}")
