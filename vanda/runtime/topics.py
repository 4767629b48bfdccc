"""Create the Kafka topics a service uses, once, at startup."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

log = logging.getLogger(__name__)


async def ensure_topics(bootstrap: str, names: list[str], *, partitions: int, replication: int,
                        **transport: Any) -> None:
    """Create missing topics; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="vanda-admin", **transport)
    await admin.start()
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
