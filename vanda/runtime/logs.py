"""Logging setup: one line per record, levels from settings, no request bodies ever."""

from __future__ import annotations

import logging
import os


def configure() -> None:
    """Log to stderr with timestamps; payloads are never logged, only ids and counts."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # aiokafka is chatty at INFO about routine group coordination.
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
