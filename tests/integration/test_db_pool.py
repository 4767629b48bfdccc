"""The services' pool on the real server: released connections come back clean without a reset query,
and statements time out unless a batch job asks them not to."""

from __future__ import annotations

import asyncpg
import pytest

from vanda.runtime.db import create_pool

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
    finally:
        await timed.close()
        await patient.close()
