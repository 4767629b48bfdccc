"""Prometheus metrics shared by the services. Labels never carry personal data."""

from __future__ import annotations

from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY, Counter, Gauge, Histogram

EVENTS_CONSUMED = Counter(
    "vanda_events_consumed_total",
    "Events read from Kafka, by topic and outcome (applied, duplicate, dead_lettered).",
    ["topic", "outcome"],
)
DEAD_LETTERS = Counter(
    "vanda_dead_letters_total",
    "Messages sent to a dead-letter topic, by source topic and reason (the DeadLetter reasons:"
    " unparseable, rejected; intake's submissions also invalid, conflict).",
    ["topic", "reason"],
)
DEAD_LETTERS_WAITING = Gauge(
    "vanda_dead_letters_waiting",
    "Letters on a dead-letter topic that no replay sent and nobody dismissed, by dead-letter topic.",
    ["topic"],
)
DEAD_LETTERS_OLDEST_AGE = Gauge(
    "vanda_dead_letters_oldest_waiting_seconds",
    "Age of the oldest waiting letter on a dead-letter topic (0 when none waits).",
    ["topic"],
)
DEAD_LETTERS_DELETED_IN = Gauge(
    "vanda_dead_letters_deleted_in_seconds",
    "Seconds before the topic's retention may delete its oldest waiting letter (+Inf when none waits"
    " or the topic keeps letters for ever).",
    ["topic"],
)
DEAD_LETTER_COUNT_FAILURES = Gauge(
    "vanda_dead_letters_uncounted_topics",
    "Dead-letter topics whose waiting letters the last round could not count (no access, broker away):"
    " their gauges are absent meanwhile.",
)
CONSUMER_BATCH_SECONDS = Histogram(
    "vanda_consumer_batch_seconds",
    "Time to apply one consumed batch, including its database transaction.",
    ["topic"],
)
TRANSIENT_RETRIES = Counter(
    "vanda_transient_retries_total",
    "Retries after a database or broker was unavailable.",
    ["operation"],
)
OUTBOX_PUBLISHED = Counter(
    "vanda_outbox_published_total",
    "Outbox events published to Kafka, by service schema.",
    ["schema"],
)
OUTBOX_PENDING = Gauge(
    "vanda_outbox_pending",
    "Outbox events stored but not yet published, by service schema.",
    ["schema"],
)
READY = Gauge("vanda_ready", "1 when the service's Kafka and PostgreSQL connections work.")
OUTBOX_OLDEST_AGE = Gauge(
    "vanda_outbox_oldest_age_seconds",
    "Age of the oldest outbox event not yet published, by service schema (0 when empty).",
    ["schema"],
)
CONSUMER_LAG = Gauge(
    "vanda_consumer_lag",
    "Records on the broker this replica has not consumed yet, by group, topic and partition.",
    ["group", "topic", "partition"],
)


def broker_middleware(service: str) -> KafkaPrometheusMiddleware:
    """FastStream's per-subscriber consume metrics (faststream_received_*), on the default
    registry so the service's own /metrics serves them beside ours. Its handler label is
    a topic name; nothing from a message body reaches a label."""
    return KafkaPrometheusMiddleware(registry=REGISTRY, app_name=f"vanda-{service}")
