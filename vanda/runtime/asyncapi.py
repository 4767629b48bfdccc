"""What each service's AsyncAPI document says about the topics it writes and reads.

The services publish through the outbox relay's own producer (and a dead-letter
producer) and read raw batches, so FastStream alone would list no published topic and
an empty payload for each consumed one. `document` adds a publisher for each topic a service writes, never called, whose
only job is to describe the topic and its CloudEvent payload; `describe_subscribers`
gives each subscriber's channels the payload of the topic they read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Union

from faststream.kafka import KafkaBroker
from faststream.specification.asyncapi.message import get_model_schema
from pydantic import RootModel, create_model

from schemas.envelope import CloudEvent
from schemas.events import EVENT_TYPES
from schemas.incidents import IncidentReport
from schemas.topics import BOARD_METRICS, FOOTAGE, INCIDENTS, POLICE_REFERRALS, SANCTIONS, SUBMISSIONS, dead_letter
from vanda.runtime.topics import DAY_MS, FOR_EVER, Retention, topic_configs

# Which events travel on which topic, told apart by their type names.
_TYPE_MARKS = {INCIDENTS: ".incident.", SANCTIONS: ".sanction.", POLICE_REFERRALS: ".police_referral_",
               FOOTAGE: ".footage_", BOARD_METRICS: ".board_metrics_"}
EVENT_TOPICS = tuple(_TYPE_MARKS)
_DESCRIPTIONS = {
    SUBMISSIONS: "Incident reports from upstream systems that prefer Kafka to HTTP: one IncidentReport JSON"
                 " object per record (not a CloudEvent), judged like POST /v1/incidents.",
    INCIDENTS: "Incidents reported, amended (the whole corrected incident, with its revision) and withdrawn."
               " Key: subject_id, or the incident id when no perpetrator is identified. At-least-once, in"
               " order per key; an event re-sent after a crash keeps its id, so subscribers dedupe on it.",
    SANCTIONS: "Card decisions: yellow cards, red card proposals and rejections, bans imposed, reviews due,"
               " expiries, evidence, rescissions, appeals, clinical review and safeguarding referrals."
               " Key: subject_id. Ids derive from the incident and the rule, so a replay gives the same ids.",
    POLICE_REFERRALS: "An incident meets the police referral criteria (required), and no longer does (retracted:"
                      " withdrawn, or amended out of them): each once each time it changes side, key incident id.",
    FOOTAGE: "Body-worn camera footage to keep as evidence (a referral or card rests on it), and footage past"
             " its retention period that nothing rests on: each once each time the footage changes side (held,"
             " released, held again), key incident id.",
    BOARD_METRICS: "A closed month's board figures, small counts suppressed: once per month (zeros for a month of"
                   " none), and, where revisions are on, again when a recent month's figures change; key"
                   " organisation.",
}
_NAMES = {INCIDENTS: "IncidentEvent", SANCTIONS: "SanctionEvent", POLICE_REFERRALS: "PoliceReferralEvent",
          FOOTAGE: "FootageEvent", BOARD_METRICS: "BoardMetricsEvent"}


def events_on(topic: str) -> list[type]:
    """The payload models of the events published on a contract topic."""
    return [model for kind, model in EVENT_TYPES.items() if _TYPE_MARKS[topic] in kind]


def _payload(topic: str) -> type[RootModel[Any]]:
    events = tuple(CloudEvent[model] for model in events_on(topic))  # type: ignore[valid-type]
    doc = f"A CloudEvents 1.0 event (structured JSON) on {topic}: " + ", ".join(
        model.event_type for model in events_on(topic)) + "."
    return type(_NAMES[topic], (RootModel[Union[events]],), {"__doc__": doc})  # type: ignore[misc]


PAYLOADS: dict[str, type[Any]] = {topic: _payload(topic) for topic in EVENT_TOPICS} | {SUBMISSIONS: IncidentReport}


def _source(topic: str) -> str:
    return topic.removesuffix(".dlq")


def _description(topic: str) -> str:
    source = _source(topic)
    if topic == dead_letter(source):
        return (f"Records from {source} this service could not parse or refused: the original key and"
                " bytes (a record that could not be parsed may not match this payload schema), with"
                " headers vanda-dlq-reason (why, in one word), vanda-dlq-error (field and reason),"
                " vanda-dlq-source-topic, -partition and -offset." + _kept(topic))
    return _DESCRIPTIONS[topic] + _kept(topic)


def _kept(topic: str) -> str:
    """How long the topic keeps records, as the services create it: part of what a subscriber relies on."""
    kept = topic_configs(topic, 1, Retention())["retention.ms"]
    if kept == FOR_EVER:
        return " Kept for ever: a new subscriber may start from the beginning."
    return f" Kept {int(kept) // DAY_MS} days by default."


def document(broker: KafkaBroker, publishes: Iterable[str]) -> None:
    """Describe each topic the service publishes (dead-letter topics included) in its document."""
    for topic in publishes:
        broker.publisher(topic, title=topic, description=_description(topic), schema=PAYLOADS[_source(topic)])


def describe_subscribers(broker: KafkaBroker) -> None:
    """Give every subscriber's channels the payload of the contract topic they read.

    FastStream takes a subscriber's payload from its handler's signature, and a typed body
    would make it decode and validate every record before the handler runs, so a poison
    record would fail its whole batch instead of reaching the dead-letter topic. The
    payload is therefore set on the subscriber's document only; topics outside the
    contract keep what FastStream says."""
    for subscriber in broker.subscribers:
        if not isinstance(subscriber.specification, _Documented):
            subscriber.specification = _Documented(subscriber.specification)


class _Documented:
    """A subscriber's specification whose channels carry their topic's payload schema."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def get_schema(self) -> dict[str, Any]:
        channels = self._inner.get_schema()
        for channel in channels.values():
            if (payload := PAYLOADS.get(channel.address)) is not None:
                # The same helper FastStream uses for a publisher's `schema=`, so a topic's
                # payload reads the same on both sides of the document.
                channel.operation.message.payload = get_model_schema(
                    create_model("Payload", response__=(payload, ...)))
        return channels
