"""Revisions of a closed month's published figures: what was sent, and whether to send again."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Published:
    """A month's figures as last published: which revision, and a digest of the figures
    (None for a month published before digests were kept)."""

    revision: int
    digest: str | None


def digest(figures: dict[str, Any]) -> str:
    """A digest of the figures alone: the same figures give the same digest, whenever worked out."""
    return hashlib.sha256(orjson.dumps(figures, option=orjson.OPT_SORT_KEYS)).hexdigest()


def next_published(last: Published | None, figures: str) -> tuple[Published, bool] | None:
    """What to record for a month whose figures now have digest `figures`, and whether they go
    out; None when nothing changed."""
    if last is None:
        return Published(1, figures), True
    if last.digest == figures:
        return None
    if last.digest is None:  # what went out then is unknown: these become the baseline, unsent
        return Published(last.revision, figures), False
    return Published(last.revision + 1, figures), True
