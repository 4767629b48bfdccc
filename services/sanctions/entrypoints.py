"""Sanctions' HTTP API and Kafka subscriber."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Path, Request
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from schemas.topics import INCIDENTS
from services.sanctions import handlers
from vanda.runtime.consumer import EventConsumer

SUBJECT_ID = Path(pattern=r"^sub_[0-9a-f]{40}$", description="Pseudonymous subject id from intake.")


def routes() -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["subjects"])

    @router.get("/subjects/{subject_id}")
    async def get_subject(request: Request, subject_id: str = SUBJECT_ID) -> dict:
        """Card level, active ban and history of a subject; emergency care is never barred."""
        view = await handlers.describe_subject(request.app.state.pool(), subject_id)
        if view is None:
            raise HTTPException(404, detail="no incidents or decisions for this subject")
        return view

    return router


def subscribe(broker: KafkaBroker, consumer: EventConsumer, group_id: str, max_records: int) -> None:
    """Consume incidents in batches; offsets commit only after the batch is stored."""

    @broker.subscriber(INCIDENTS, group_id=group_id, batch=True, max_records=max_records,
                       auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR,
                       description="Incidents to apply the card policy to.")
    async def on_incidents(msg: KafkaMessage) -> None:
        records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        await consumer.handle(records)
