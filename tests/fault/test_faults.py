"""Break the running pipeline while a few thousand incidents flow; nothing acknowledged is lost.

After each fault: stored incidents equal acknowledged ones; the cards in force equal an
undisturbed run of the pure policy over the same incidents; reporting's counts equal a
recount from the topic; no event id appears on a topic with two different contents.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tests.fault.conftest import ROWS, Pipeline
from tests.fault.harness import (
    board_matches_topics,
    cards_match_an_undisturbed_run,
    duplicate_ids,
    quiesce,
    send_all,
    stored_refs,
)
from tests.fault.processes import Service
from vanda import stack, synthetic

pytestmark = pytest.mark.integration
INCIDENTS = 1500
MONTHS = 4


async def _in_thread(call: Callable[[], object]) -> None:
    await asyncio.get_running_loop().run_in_executor(None, call)


def restart(service: Service) -> Callable[[], Awaitable[None]]:
    async def fault() -> None:
        await _in_thread(service.kill)
        await asyncio.sleep(1)
        await _in_thread(service.start)
    return fault


async def run(pipeline: Pipeline, name: str, seed: int, fault: Callable[[], Awaitable[None]]) -> None:
    """Stream incidents, inject the fault a third of the way in, settle, check, record a row."""
    organisation = f"F{seed:02d}"
    reports = list(synthetic.incidents(INCIDENTS, seed=seed, months=MONTHS, people=INCIDENTS // 6,
                                       source_system=f"fault-{seed}",
                                       sites={organisation: [f"Fault site {seed}a", f"Fault site {seed}b"]}))
    acked: set[str] = set()
    sender = asyncio.create_task(send_all(pipeline.url("intake"), reports, acked, api_key=pipeline.api_key))
    while len(acked) < INCIDENTS // 3 and not sender.done():
        await asyncio.sleep(0.05)
    await fault()
    await sender
    await quiesce(pipeline.bootstrap, pipeline.dsn)
    stored = await stored_refs(pipeline.dsn, f"fault-{seed}")
    cards = await cards_match_an_undisturbed_run(pipeline.dsn, f"fault-{seed}")
    board = await board_matches_topics(pipeline.bootstrap, pipeline.url("reporting"), organisation, MONTHS + 1,
                                       pipeline.jwt_secret)
    same, different = await duplicate_ids(pipeline.bootstrap)
    held = stored == acked and cards and board and different == 0
    ROWS.append((name, len(acked), len(stored), len(acked - stored), cards, board, same, different,
                 "yes" if held else "NO"))
    assert stored == acked, f"lost {len(acked - stored)} acknowledged incidents"
    assert cards, "cards in force differ from an undisturbed run"
    assert board, "reporting differs from a recount of the topic"
    assert different == 0


async def test_kill_intake_mid_stream(broken_pipeline):
    await run(broken_pipeline, "kill -9 intake, restart", 11, restart(broken_pipeline.services["intake"]))


async def test_kill_sanctions_mid_batch(broken_pipeline):
    await run(broken_pipeline, "kill -9 sanctions, restart", 12, restart(broken_pipeline.services["sanctions"]))


async def test_kill_reporting_mid_batch(broken_pipeline):
    await run(broken_pipeline, "kill -9 reporting, restart", 13, restart(broken_pipeline.services["reporting"]))


async def test_restart_kafka(broken_pipeline):
    async def fault() -> None:
        await _in_thread(lambda: stack.stop_component(broken_pipeline.home, "kafka"))
        await asyncio.sleep(2)
        await _in_thread(lambda: stack.start_component(broken_pipeline.home, "kafka"))
    await run(broken_pipeline, "stop and restart Kafka", 14, fault)


async def test_restart_postgres(broken_pipeline):
    async def fault() -> None:
        await _in_thread(lambda: stack.stop_component(broken_pipeline.home, "postgres"))
        await asyncio.sleep(2)
        await _in_thread(lambda: stack.start_component(broken_pipeline.home, "postgres"))
    await run(broken_pipeline, "stop and restart PostgreSQL", 15, fault)


async def test_two_sanctions_replicas_one_killed(broken_pipeline):
    first = broken_pipeline.services["sanctions"]
    second = Service("sanctions", first.env, first.logs)
    broken_pipeline.extra.append(second)
    await _in_thread(second.start)

    async def fault() -> None:
        await _in_thread(second.kill)  # its partitions move to the survivor after the session times out
    await run(broken_pipeline, "2 sanctions replicas, kill -9 one", 16, fault)


async def test_sigterm_drains_and_exits_cleanly(broken_pipeline):
    sanctions = broken_pipeline.services["sanctions"]
    codes: list[int] = []

    async def fault() -> None:
        codes.append(await asyncio.get_running_loop().run_in_executor(None, sanctions.terminate))
        await _in_thread(sanctions.start)
    await run(broken_pipeline, "SIGTERM sanctions, restart", 17, fault)
    assert codes == [0], f"sanctions exited {codes} on SIGTERM"
