"""The waiting dead letters gauges: one topic's failure leaves the others counted and withdraws
its own, and a retention the broker will not give is a failure, not 'kept for ever'."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

import vanda.runtime.topics as topics
from vanda import dlq
from vanda.runtime.service import Runtime
from vanda.runtime.settings import CommonSettings

MINE, DENIED = "vanda.test-gauges-mine.v1.dlq", "vanda.test-gauges-denied.v1.dlq"


def waiting_on(topic: str) -> float | None:
    return REGISTRY.get_sample_value("vanda_dead_letters_waiting", {"topic": topic})


async def test_a_topic_that_cannot_be_counted_is_withdrawn_and_the_others_still_counted(monkeypatch) -> None:
    denied = False

    async def waiting(bootstrap: str, topic: str) -> dlq.Waiting:
        if topic == DENIED and denied:
            raise PermissionError("no read on it")
        return dlq.Waiting(3, 0.0, 7 * 86400)

    monkeypatch.setattr(dlq, "waiting", waiting)
    runtime = Runtime("gaugetest", CommonSettings(), [], dead_letters=[DENIED, MINE])
    await runtime.count_dead_letters()
    assert (waiting_on(DENIED), waiting_on(MINE)) == (3, 3)
    denied = True
    await runtime.count_dead_letters()
    # Its last value kept would read as letters still counted; absent, it says it is not.
    assert (waiting_on(DENIED), waiting_on(MINE)) == (None, 3)
    assert REGISTRY.get_sample_value("vanda_dead_letters_uncounted_topics") == 1


def test_a_service_counts_only_the_dead_letter_topics_it_names() -> None:
    assert Runtime("x", CommonSettings(), ["a", "a.dlq", "b.dlq"]).dead_letter_topics == ["a.dlq", "b.dlq"]
    assert Runtime("x", CommonSettings(), ["a.dlq", "b.dlq"], dead_letters=["b.dlq"]).dead_letter_topics == ["b.dlq"]


class Admin:
    """What the broker answers a describe-configs it refuses: an error code, no exception."""

    def __init__(self, **_: object) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def describe_configs(self, resources: list) -> list:
        return [SimpleNamespace(resources=[(29, "Topic authorization failed.", 2, r.name, []) for r in resources])]


async def test_a_retention_the_broker_will_not_give_is_an_error_not_for_ever(monkeypatch) -> None:
    monkeypatch.setattr(topics, "AIOKafkaAdminClient", Admin)
    with pytest.raises(PermissionError, match="retention.ms"):
        await topics.retention_s("127.0.0.1:1", MINE)


async def test_a_topic_just_made_but_not_yet_in_the_cluster_s_metadata_is_counted_once_it_is(monkeypatch) -> None:
    # The first round runs moments after the service made its topics.
    answers = [dlq.UnknownTopic(MINE), dlq.Waiting(2, 0.0, None)]

    async def waiting(bootstrap: str, topic: str) -> dlq.Waiting:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(dlq, "waiting", waiting)
    await Runtime("gaugetest", CommonSettings(), [], dead_letters=[MINE]).count_dead_letters()
    assert waiting_on(MINE) == 2
