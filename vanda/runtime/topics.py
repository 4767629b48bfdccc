"""Create the Kafka topics a service uses, once, at startup."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_delay, wait_exponential

log = logging.getLogger(__name__)


def _waiting(state: RetryCallState) -> None:
    # Says what start-up waits for: without it a service whose broker is away looks hung.
    log.warning("Kafka is not reachable yet; retrying (%.0f s so far)", state.seconds_since_start or 0)


async def ensure_topics(bootstrap: str, names: list[str], *, partitions: int, replication: int,
                        wait_s: float = 60, **transport: Any) -> None:
    """Create missing topics; existing ones are left as they are.

    Waits up to `wait_s` seconds for the broker, as start-up waits for PostgreSQL: in a
    fresh deployment the services often start before Kafka accepts connections.
    """
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(KafkaConnectionError),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(wait_s),
        before_sleep=_waiting,
        reraise=True,
    ):
        with attempt:
            await _create_missing(bootstrap, names, partitions, replication, transport)


async def _create_missing(bootstrap: str, names: list[str], partitions: int, replication: int,
                          transport: dict[str, Any]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="vanda-admin", **transport)
    try:
        await admin.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await admin.close()
        raise
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in names if n not in existing]
        if not missing:
            return
        new = [NewTopic(n, num_partitions=partitions, replication_factor=replication) for n in missing]
        try:
            await admin.create_topics(new)
        except TopicAlreadyExistsError:
            pass  # another replica created it first
        log.info("created topics %s", missing)
    finally:
        await admin.close()
