"""Logging: JSON lines by default (one object per record), ids only, never payloads."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime

import orjson

# Fields a record may carry through `extra=`; they are ids and counts, never personal data.
CONTEXT_FIELDS = ("event_id", "incident_id", "subject_id", "sanction_id", "correlation_id", "topic", "count")
# The HTTP request's X-Request-ID, or the id of the event being applied: set by the HTTP
# middleware and the consumers, so every line written meanwhile can be joined up.
CORRELATION_ID: ContextVar[str | None] = ContextVar("correlation_id", default=None)


@contextlib.contextmanager
def correlated(correlation_id: str) -> Iterator[None]:
    """Records logged inside this block carry `correlation_id`."""
    token = CORRELATION_ID.set(correlation_id)
    try:
        yield
    finally:
        CORRELATION_ID.reset(token)


class Correlation(logging.Filter):
    """Stamp records with the current correlation id, unless the caller passed one."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = CORRELATION_ID.get()
        if current is not None and not hasattr(record, "correlation_id"):
            record.correlation_id = current
        return True


class JsonLines(logging.Formatter):
    """Format a record as one JSON object, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {k: getattr(record, k) for k in CONTEXT_FIELDS if hasattr(record, k)}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure() -> None:
    """JSON lines unless LOG_FORMAT=text; level from LOG_LEVEL."""
    handler = logging.StreamHandler()
    if os.environ.get("LOG_FORMAT", "json").lower() == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(JsonLines())
    # On the handler, not a logger: records from every library's logger pass through it.
    handler.addFilter(Correlation())
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(), handlers=[handler], force=True)
    # aiokafka is chatty at INFO about routine group coordination.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
