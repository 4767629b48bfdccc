"""PostgreSQL pool creation, with retries while the server is starting or away."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    NotLeaderForPartitionError,
    RequestTimedOutError,
)

from vanda.runtime.startup import retrying
from vanda.runtime.transport import TransportSettings, postgres_ssl

# Errors that mean "the database or broker cannot do this right now", never "this input is bad".
# PostgreSQL's are whole classes of SQLSTATE: a full disk or a failover must hold the partition
# and retry, not send every event of the outage to the dead-letter topic.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresConnectionError,  # 08: connection exceptions
    asyncpg.exceptions.TransactionRollbackError,  # 40: serialization failures, deadlocks
    asyncpg.exceptions.InsufficientResourcesError,  # 53: disk full, out of memory, too many connections
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutdowns, cancelled statements, not accepting yet
    asyncpg.exceptions.PostgresSystemError,  # 58: I/O errors
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006: a standby, or a failover under way
    asyncpg.exceptions.LockNotAvailableError,  # 55P03
    # A grant revoked, or a table a migration has yet to make: the deployment is wrong, not the
    # event. Dead-lettered, every event until it is put right would go; held, the partition
    # waits, the service reads unready, and the alerts say so.
    asyncpg.exceptions.InsufficientPrivilegeError,  # 42501
    asyncpg.exceptions.UndefinedTableError,  # 42P01
    ConnectionError,
    TimeoutError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RequestTimedOutError,
    NotLeaderForPartitionError,
)


# Client-side refusals of a value (asyncpg's DataError is an InterfaceError subclass): the
# input is bad, so retrying would stall the partition for ever.
NOT_TRANSIENT: tuple[type[BaseException], ...] = (asyncpg.exceptions._base.DataError,
                                                  asyncpg.exceptions._base.InternalClientError)


def is_transient(exc: BaseException) -> bool:
    """An outage worth retrying, never a problem with the data itself."""
    return isinstance(exc, TRANSIENT_DB_ERRORS) and not isinstance(exc, NOT_TRANSIENT)


def _dumps(value: object) -> str:
    return orjson.dumps(value).decode()


async def _init_connection(conn: asyncpg.Connection) -> None:
    # json and jsonb columns round-trip as Python objects rather than strings (orjson: several times
    # faster than json on the large states and events the consumers write every batch).
    for kind in ("jsonb", "json"):
        await conn.set_type_codec(kind, encoder=_dumps, decoder=orjson.loads, schema="pg_catalog")


class Connection(asyncpg.Connection):
    """A connection that a pool hands back without a reset query.

    asyncpg's default reset (unlock advisory locks, close cursors, unlisten, reset settings)
    is a round trip on every release, and each of intake's requests borrows a connection two
    or three times: in a profile of single reports, about a tenth of its samples. vanda
    leaves no such session state behind: its advisory locks are transaction-scoped, its
    cursors live inside transactions, and it never LISTENs or SETs a session variable.
    asyncpg still rolls back a transaction left open.
    """

    def get_reset_query(self) -> str:
        return ""


async def create_pool(dsn: str, *, max_size: int = 10, wait_s: float = 60, ssl: object = None,
                      command_timeout: float | None = 30) -> asyncpg.Pool:
    """Open a pool, retrying for up to `wait_s` seconds while the server is unreachable.

    Statements time out after `command_timeout` seconds: a service never waits on one for
    ever. Batch jobs whose statements grow with the data (a rebuild's comparison) pass None.
    TLS is as `DATABASE_SSL` says unless `ssl` is given.

    A wait for a lock gives up sooner, at two thirds of that, with 55P03 (an outage, retried):
    a table a migration holds, say. Only a statement slow in itself reaches the timeout, which
    a consumer takes for a sign that its batch, or in the end one record, is too slow to apply.
    """
    if ssl is None:
        ssl = postgres_ssl(TransportSettings())
    settings = {"lock_timeout": f"{int(command_timeout * 1000 * 2 // 3)}ms"} if command_timeout else None
    async for attempt in retrying("PostgreSQL", TRANSIENT_DB_ERRORS, wait_s):
        with attempt:
            return await asyncpg.create_pool(
                dsn, min_size=1, max_size=max_size, init=_init_connection, command_timeout=command_timeout,
                ssl=ssl or None, connection_class=Connection, server_settings=settings,
            )
    raise AssertionError("unreachable")


async def ping(pool: asyncpg.Pool) -> bool:
    """True when a connection can run a query now."""
    try:
        async with pool.acquire(timeout=2) as conn:
            return await conn.fetchval("SELECT 1", timeout=2) == 1
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return False


# Advisory locks of timed rounds: the two-key form, in a class of vanda's own, so a round's
# key never meets a single-key lock (the relay's, sanctions' per subject) of the same hash.
ROUND_LOCKS = 0x76616E64
_rounds: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[asyncio.Lock, set[str]]] = \
    weakref.WeakKeyDictionary()


@asynccontextmanager
async def alone(pool: asyncpg.Pool, round_: str) -> AsyncIterator[bool]:
    """Whether this process has the timed round `round_` to itself across replicas until the
    block ends (False: one is under way, here or in another replica). The lock is held by a
    transaction on a connection of its own, so the round's work uses others: a process holds
    one such connection at a time (a round of another name waits its turn), so a pool of two
    always makes progress."""
    turn, running = _rounds.setdefault(asyncio.get_running_loop(), (asyncio.Lock(), set()))
    if round_ in running:
        yield False
        return
    running.add(round_)
    try:
        async with turn, pool.acquire() as holder, holder.transaction():
            yield await holder.fetchval("SELECT pg_try_advisory_xact_lock($1, hashtext($2))", ROUND_LOCKS, round_)
    finally:
        running.discard(round_)


PURGE_CHUNK = 5000  # rows a retention purge clears per transaction


async def in_chunks(pool: asyncpg.Pool, table: str, change: str, where: str, *args: Any,
                    chunk: int = PURGE_CHUNK) -> int:
    """Apply `change` ("UPDATE ... SET ..." or "DELETE FROM ...") to the rows of `table`
    matching `where` ($1... are `args`), `chunk` rows per committed transaction, until none is
    left; how many in all. A purge's backlog (its first run on years of data, a shorter
    retention) in one statement would outlast the statement timeout, roll back, and be tried
    again the next day with more to do, for ever."""
    limit = f"${len(args) + 1}"
    statement = (f"{change} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {where} LIMIT {limit}))")
    done = 0
    # Until a round finds none: a row a concurrent write moved is left to the next round.
    while count := int((await pool.execute(statement, *args, chunk)).split()[-1]):
        done += count
    return done
