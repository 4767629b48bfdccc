"""Page cursors for lists read oldest first: where the last page ended, as an opaque token."""

from __future__ import annotations

import base64
from datetime import datetime
from uuid import UUID


class BadCursor(ValueError):
    """A cursor this service did not hand out."""


def encode(occurred_at: datetime, item_id: UUID) -> str:
    """The token for "after this item"."""
    return base64.urlsafe_b64encode(f"{occurred_at.isoformat()}|{item_id}".encode()).decode().rstrip("=")


def decode(token: str | None) -> tuple[datetime, UUID] | None:
    """The position a token names; None for the first page."""
    if token is None:
        return None
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        when, _, item = text.partition("|")
        at = datetime.fromisoformat(when)
        if at.tzinfo is None:
            raise ValueError("no time zone")
        return at, UUID(item)
    except ValueError as exc:
        raise BadCursor("not a cursor from a previous page: start again without it") from exc
