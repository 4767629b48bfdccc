"""The lag gauge follows the partitions this replica holds: one moved away by a rebalance
stops being reported, so its last lag cannot hold the lag alert up after the backlog is gone."""

from __future__ import annotations

from types import SimpleNamespace

from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from vanda.runtime.service import Runtime
from vanda.runtime.settings import CommonSettings

TOPIC = "vanda.test-lag.v1"


class Consumer:
    """What the gauge reads of an aiokafka consumer: its assignment, highwaters and positions."""

    def __init__(self, ends: dict[int, int | None], at: int = 0) -> None:
        self.ends, self.at = ends, at

    def assignment(self) -> set[TopicPartition]:
        return {TopicPartition(TOPIC, p) for p in self.ends}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.ends[tp.partition]

    async def end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        if any(self.ends[tp.partition] is None for tp in tps):
            raise TimeoutError("no answer from the broker")  # falls back to the highwater
        return {tp: self.ends[tp.partition] for tp in tps}

    async def position(self, tp: TopicPartition) -> int:
        return self.at


def lag(partition: int) -> float | None:
    return REGISTRY.get_sample_value("vanda_consumer_lag",
                                     {"group": "vanda-lag", "topic": TOPIC, "partition": str(partition)})


async def test_a_partition_moved_away_stops_being_reported() -> None:
    runtime = Runtime("lagtest", CommonSettings(), [])
    held = SimpleNamespace(consumer=Consumer({0: 5000, 1: 1200}, at=100), group_id="vanda-lag")
    runtime.broker = SimpleNamespace(subscribers=[held])  # type: ignore[assignment]
    await runtime._consumer_lag()
    assert (lag(0), lag(1)) == (4900, 1100)

    held.consumer = Consumer({1: 1300}, at=1250)  # a rebalance gave partition 0 to another replica
    await runtime._consumer_lag()
    assert (lag(0), lag(1)) == (None, 50)


async def test_a_held_partition_with_no_highwater_yet_keeps_its_last_lag() -> None:
    runtime = Runtime("lagtest", CommonSettings(), [])
    held = SimpleNamespace(consumer=Consumer({2: 300}, at=0), group_id="vanda-lag")
    runtime.broker = SimpleNamespace(subscribers=[held])  # type: ignore[assignment]
    await runtime._consumer_lag()
    held.consumer = Consumer({2: None})  # still held; the fetcher has not seen its end since
    await runtime._consumer_lag()
    assert lag(2) == 300


class Failing(Consumer):
    """A consumer whose position cannot be read for one partition: a rebalance under way."""

    def assignment(self) -> list[TopicPartition]:  # type: ignore[override]
        return [TopicPartition(TOPIC, p) for p in sorted(self.ends)]  # partition 3 is set before 4 fails

    async def position(self, tp: TopicPartition) -> int:
        if tp.partition == 4:
            raise RuntimeError("partition is being reassigned")
        return self.at


async def test_a_round_cut_short_still_drops_later_what_it_had_set() -> None:
    runtime = Runtime("lagtest", CommonSettings(), [])
    held = SimpleNamespace(consumer=Failing({3: 900, 4: 900}, at=100), group_id="vanda-lag")
    runtime.broker = SimpleNamespace(subscribers=[held])  # type: ignore[assignment]
    try:
        await runtime._consumer_lag()
    except RuntimeError:
        pass  # refresh_gauges swallows it; partition 3's lag may have been set before it
    held.consumer = Consumer({4: 900}, at=800)  # partition 3 moved away
    await runtime._consumer_lag()
    assert (lag(3), lag(4)) == (None, 100)


class Stuck(Consumer):
    """A consumer whose batch is stuck retrying: it fetches nothing, so its highwater stops."""

    def highwater(self, tp: TopicPartition) -> int | None:
        return 100


async def test_a_stuck_consumer_s_lag_follows_the_partition_s_end_not_its_last_fetch() -> None:
    runtime = Runtime("lagtest", CommonSettings(), [])
    held = SimpleNamespace(consumer=Stuck({5: 100}, at=100), group_id="vanda-lag")
    runtime.broker = SimpleNamespace(subscribers=[held])  # type: ignore[assignment]
    await runtime._consumer_lag()
    held.consumer = Stuck({5: 2500}, at=100)  # 2,400 records written since; none fetched
    await runtime._consumer_lag()
    assert lag(5) == 2400


async def test_one_gauge_held_up_does_not_keep_the_others_from_refreshing() -> None:
    import asyncio

    runtime = Runtime("lagtest", CommonSettings(), [])
    runtime.broker = SimpleNamespace(subscribers=[])  # type: ignore[assignment]
    done: list[str] = []

    async def held_up() -> None:
        await asyncio.sleep(60)  # a count waiting on a busy pool

    async def quick() -> None:
        done.append("refreshed")

    runtime.refreshers += [held_up, quick]
    try:
        await asyncio.wait_for(runtime.refresh_gauges(), timeout=0.5)  # the scrape's budget
    except TimeoutError:
        pass
    assert done == ["refreshed"]
