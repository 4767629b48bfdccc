"""Create the Kafka topics a service uses, once, at startup."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError, for_code

from schemas.topics import SUBMISSIONS, dead_letter
from vanda.runtime.settings import DLQ_RETENTION_DAYS, SUBMISSIONS_RETENTION_DAYS
from vanda.runtime.startup import retrying

log = logging.getLogger(__name__)
DAY_MS = 24 * 3600 * 1000
FOR_EVER = "-1"
PERSONAL = frozenset({SUBMISSIONS, dead_letter(SUBMISSIONS)})  # reports as submitted: names, NHS numbers


class TopicsRefused(RuntimeError):
    """Kafka refused to create topics; the message names each, with Kafka's reason."""

    def __init__(self, refused: list[tuple[str, int, str | None]]) -> None:
        said = [f"{topic} ({for_code(code).__name__}{': ' + message if message else ''})"
                for topic, code, message in refused]
        super().__init__("Kafka refused to create " + "; ".join(said))


@dataclass(frozen=True)
class Retention:
    """How long the topics that are not the event log keep their records."""

    personal_days: int = SUBMISSIONS_RETENTION_DAYS
    dead_letter_days: int = DLQ_RETENTION_DAYS


def topic_configs(name: str, replication: int, retention: Retention) -> dict[str, str]:
    """The settings a topic is created with.

    The event topics are vanda's log, kept for ever: `vanda reporting rebuild` and every new
    subscriber replay them from the beginning, and they hold pseudonyms, never identifiers.
    Kafka's default (7 days) would silently cut that history. Intake's input and its dead
    letters hold personal data, so they are kept briefly; other dead letters long enough to
    be fixed and replayed. With replicas, acks=all means two copies at least.
    """
    if name in PERSONAL:
        keep = str(retention.personal_days * DAY_MS)
    elif name.endswith(".dlq"):
        keep = str(retention.dead_letter_days * DAY_MS)
    else:
        keep = FOR_EVER
    configs = {"retention.ms": keep, "min.insync.replicas": str(min(2, max(1, replication - 1)))}
    if name in PERSONAL:
        # Kafka deletes a whole segment once its newest record is past retention: in its default
        # week-long segments, a report would stay up to a week past its days.
        configs["segment.ms"] = str(min(DAY_MS, retention.personal_days * DAY_MS))
    return configs


async def ensure_topics(bootstrap: str, names: list[str], *, partitions: int, replication: int,
                        retention: Retention = Retention(), wait_s: float = 60, **transport: Any) -> None:
    """Create missing topics with `topic_configs`; existing ones are left as they are, with a
    warning if an event topic among them would delete history.

    Waits up to `wait_s` seconds for the broker, as start-up waits for PostgreSQL: in a
    fresh deployment the services often start before Kafka accepts connections.
    """
    async for attempt in retrying("Kafka", (KafkaConnectionError,), wait_s):
        with attempt:
            await _create_missing(bootstrap, names, partitions, replication, retention, transport)


async def _create_missing(bootstrap: str, names: list[str], partitions: int, replication: int,
                          retention: Retention, transport: dict[str, Any]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="vanda-admin", **transport)
    try:
        await admin.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await admin.close()
        raise
    try:
        existing = set(await admin.list_topics())
        found = [n for n in names if n in existing]
        await _warn_if_history_is_deleted(admin, found, replication, retention)
        await _warn_if_reports_outlive_retention(admin, found, replication, retention)
        missing = [n for n in names if n not in existing]
        if not missing:
            return
        new = [NewTopic(n, num_partitions=partitions, replication_factor=replication,
                        topic_configs=topic_configs(n, replication, retention)) for n in missing]
        made = await admin.create_topics(new)
        # (topic, code) or, from version 1, (topic, code, message). Already there: another replica made it.
        refused = [(topic, code, (rest or [None])[0]) for topic, code, *rest in made.topic_errors
                   if code not in (0, TopicAlreadyExistsError.errno)]
        if refused:
            # The client answers a refusal (no right to create, a replication factor the cluster
            # cannot give) rather than raising it: said here, or the service starts without its topics.
            raise TopicsRefused(refused)
        log.info("created topics %s", missing)
    finally:
        await admin.close()


async def _warn_if_history_is_deleted(admin: AIOKafkaAdminClient, names: list[str], replication: int,
                                      retention: Retention) -> None:
    """Topics made before vanda set their retention, or changed since, keep Kafka's default of a
    week. Changing them is an operator's call (and often outside a service's ACLs), so say so."""
    log_topics = [n for n in names if topic_configs(n, replication, retention)["retention.ms"] == FOR_EVER]
    if not log_topics:
        return
    for topic, value in (await _configs(admin, log_topics)).items():
        if value is not None and value != FOR_EVER:  # None: not ours to read (ACLs); nothing to say
            log.warning("topic %s deletes events after %g days: a rebuild or a new subscriber would miss"
                        " the older history; set retention.ms=-1 on it", topic, int(value) / DAY_MS)


async def _warn_if_reports_outlive_retention(admin: AIOKafkaAdminClient, names: list[str], replication: int,
                                             retention: Retention) -> None:
    """Topics holding reports as submitted, made before vanda set their segments, keep Kafka's
    week-long ones: a report stays up to a week past its retention. One made before the
    retention was shortened (`SUBMISSIONS_RETENTION_DAYS`) keeps reports for as long as it did.
    Again the operator's call."""
    personal = [n for n in names if n in PERSONAL]
    if not personal:
        return
    for topic, value in (await _configs(admin, personal, "retention.ms")).items():
        wanted = int(topic_configs(topic, replication, retention)["retention.ms"])
        if value is not None and (int(value) < 0 or int(value) > wanted):
            kept = "for ever" if int(value) < 0 else f"for {int(value) / DAY_MS:g} days"
            log.warning("topic %s keeps reports as submitted, with their NHS numbers, %s, longer than"
                        " SUBMISSIONS_RETENTION_DAYS allows; set retention.ms=%d on it", topic, kept, wanted)
    for topic, value in (await _configs(admin, personal, "segment.ms")).items():
        wanted = int(topic_configs(topic, replication, retention)["segment.ms"])
        if value is not None and int(value) > wanted:
            log.warning("topic %s holds reports as submitted in segments of %g days: Kafka deletes a segment"
                        " only once its newest record is past retention, so a report can stay that much longer;"
                        " set segment.ms=%d on it", topic, int(value) / DAY_MS, wanted)


async def _configs(admin: AIOKafkaAdminClient, names: list[str], key: str = "retention.ms") -> dict[str, str | None]:
    """Each topic's `key` as the broker has it; None where the broker refused to say (no
    describe-configs access: it answers with an error code, not an exception)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, n, {key: None}) for n in names]
    found: dict[str, str | None] = dict.fromkeys(names)
    for response in await admin.describe_configs(resources):
        for error, _message, _kind, topic, entries in response.resources:
            for name, value, *_ in entries if not error else ():
                if name == key:
                    found[topic] = value
    return found


async def retention_s(bootstrap: str, topic: str, **transport: Any) -> float | None:
    """How long `topic` keeps a record, in seconds; None if for ever (or not by time)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="vanda-admin", **transport)
    await admin.start()
    try:
        value = (await _configs(admin, [topic])).get(topic)
    finally:
        await admin.close()
    if value is None:
        # Taken as for ever, the alert on letters about to be deleted could never fire.
        raise PermissionError(f"the broker did not give {topic}'s retention.ms (describe-configs access?)")
    return None if int(value) < 0 else int(value) / 1000
