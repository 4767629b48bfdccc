"""Reporting's HTTP API and Kafka subscriber."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from schemas.topics import INCIDENTS, SANCTIONS
from services.reporting import handlers
from vanda.runtime.consumer import EventConsumer

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"


def _month(text: str) -> date:
    return date(int(text[:4]), int(text[5:7]), 1)


def routes(max_months: int) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["metrics"])

    @router.get("/metrics/board")
    async def board_metrics(
        request: Request,
        from_: Annotated[str, Query(alias="from", pattern=MONTH, description="First month, YYYY-MM.")],
        to: Annotated[str, Query(pattern=MONTH, description="Last month, YYYY-MM.")],
        organisation: Annotated[str | None, Query(max_length=6)] = None,
        site: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict:
        """Monthly incident and sanction counts by site and category."""
        start, end = _month(from_), _month(to)
        if end < start:
            raise RequestValidationError([{"loc": ("query", "to"), "msg": "must not be before 'from'",
                                           "type": "value_error"}])
        if (end.year - start.year) * 12 + end.month - start.month >= max_months:
            raise RequestValidationError([{"loc": ("query", "to"), "type": "value_error",
                                           "msg": f"range must span at most {max_months} months"}])
        return await handlers.board_metrics(request.app.state.pool(), start, end, organisation, site)

    return router


def subscribe(broker: KafkaBroker, consumer: EventConsumer, group_id: str, max_records: int) -> None:
    """Consume incidents and sanctions in batches; offsets commit after the counts are stored."""

    @broker.subscriber(INCIDENTS, SANCTIONS, group_id=group_id, batch=True, max_records=max_records,
                       auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR,
                       description="Incidents and sanction decisions to count for the board.")
    async def on_events(msg: KafkaMessage) -> None:
        records = msg.raw_message if isinstance(msg.raw_message, tuple) else (msg.raw_message,)
        await consumer.handle(records)
