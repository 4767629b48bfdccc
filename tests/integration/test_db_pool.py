"""The services' pool on the real server: released connections come back clean without a reset query,
and statements time out unless a batch job asks them not to."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from vanda.runtime.db import alone, create_pool

pytestmark = pytest.mark.integration


async def test_a_released_connection_skips_the_reset_round_trip_but_not_the_rollback(
        pipeline: dict[str, str]) -> None:
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=1)
    other = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        await other.execute("CREATE TABLE IF NOT EXISTS public.pool_probe (n int)")
        async with pool.acquire() as conn:
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            # Session state a reset query would clear: its survival shows no reset was sent.
            await conn.execute("SET application_name = 'pool-probe'")
            # A transaction left open, as a cancelled task might: the release must roll it back.
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO public.pool_probe VALUES (1)")
            await conn.fetchval("SELECT pg_advisory_xact_lock(42)")
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") == backend  # the same session, reused
            assert await conn.fetchval("SHOW application_name") == "pool-probe"
            assert not conn.is_in_transaction()
            assert await other.fetchval("SELECT count(*) FROM public.pool_probe") == 0
            # The transaction-scoped lock ended with the rollback: another session can take it.
            assert await other.fetchval("SELECT pg_try_advisory_lock(42)")
            assert await other.fetchval("SELECT pg_advisory_unlock(42)")
            await conn.execute("RESET application_name")
    finally:
        await other.execute("DROP TABLE IF EXISTS public.pool_probe")
        await other.close()
        await pool.close()


async def test_statements_time_out_unless_a_batch_job_asks_for_none(pipeline: dict[str, str]) -> None:
    timed = await create_pool(pipeline["DATABASE_URL"], max_size=1, command_timeout=0.5)
    patient = await create_pool(pipeline["DATABASE_URL"], max_size=1, command_timeout=None)
    try:
        with pytest.raises(TimeoutError):
            await timed.execute("SELECT pg_sleep(1.5)")
        assert await patient.execute("SELECT pg_sleep(1.5)") == "SELECT 1"
        # A wait for a lock gives up sooner, as an outage (55P03), not a statement too slow.
        assert await timed.fetchval("SHOW lock_timeout") == "333ms"
        assert await patient.fetchval("SHOW lock_timeout") == "0"
        async with patient.acquire() as holder, holder.transaction():
            await holder.execute("SELECT pg_advisory_xact_lock(424242)")
            with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
                await timed.execute("SELECT pg_advisory_lock(424242)")
    finally:
        await timed.close()
        await patient.close()


async def test_a_process_holds_one_round_lock_at_a_time_so_a_pool_of_two_never_hangs(
        pipeline: dict[str, str]) -> None:
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=2)
    order: list[str] = []

    async def round_(name: str) -> bool:
        async with alone(pool, name) as mine:
            order.append(f"{name} in")
            # The round's own work, on a second connection: a held lock per round would take
            # both, and this would wait for ever.
            async with pool.acquire(timeout=10) as conn:
                await conn.fetchval("SELECT pg_sleep(0.2)")
            order.append(f"{name} out")
            return mine

    try:
        assert await asyncio.wait_for(asyncio.gather(round_("first"), round_("second")), 30) == [True, True]
    finally:
        await pool.close()
    assert order == ["first in", "first out", "second in", "second out"]


async def test_a_round_already_under_way_in_this_process_is_not_waited_for(pipeline: dict[str, str]) -> None:
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=2)
    try:
        async with alone(pool, "twice") as first:
            async with alone(pool, "twice") as second:
                assert (first, second) == (True, False)
        async with alone(pool, "twice") as later:
            assert later
    finally:
        await pool.close()


async def test_a_change_in_chunks_reaches_every_matching_row_and_no_other(pipeline: dict[str, str]) -> None:
    # A purge's backlog, a few rows per committed transaction, until none is left.
    from vanda.runtime.db import in_chunks

    import uuid

    table = f"public.chunk_probe_{uuid.uuid4().hex[:8]}"
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=2)
    try:
        await pool.execute(f"CREATE TABLE {table} (n int, words text)")
        await pool.execute(f"INSERT INTO {table} SELECT n, 'kept for now' FROM generate_series(1, 12) n")
        assert await in_chunks(pool, table, f"UPDATE {table} SET words = NULL", "words IS NOT NULL AND n <= $1",
                               9, chunk=2) == 9
        assert await pool.fetchval(f"SELECT array_agg(n ORDER BY n) FROM {table} WHERE words IS NOT NULL") == [
            10, 11, 12]
        assert await in_chunks(pool, table, f"DELETE FROM {table}", "n > $1", 10, chunk=5) == 2
        assert await in_chunks(pool, table, f"DELETE FROM {table}", "n > $1", 10, chunk=5) == 0
        assert await pool.fetchval(f"SELECT count(*) FROM {table}") == 10
    finally:
        await pool.execute(f"DROP TABLE IF EXISTS {table}")
        await pool.close()
