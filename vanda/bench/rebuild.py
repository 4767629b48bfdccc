"""Time `vanda reporting rebuild`'s replay of the whole stream, and check it equals the live projection."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from vanda.bench.stats import rate


async def run(pool: asyncpg.Pool, database_url: str, bootstrap: str, progress: Callable[[str, int | None], Callable[[int], None]]
              ) -> dict[str, Any]:
    from services.reporting import rebuild as replay
    from services.reporting.config import ReportingSettings
    from services.reporting.handlers import Projection

    settings = ReportingSettings()
    projection = Projection(ZoneInfo(settings.timezone), settings.police_criteria, schema=replay.REBUILD_SCHEMA,
                            emit=False)
    await replay.fresh_schema(pool)
    advance = progress("reporting rebuild: replay", None)
    shown = 0

    def moved(done: int, total: int) -> None:
        nonlocal shown
        advance(done - shown)
        shown = done

    started = time.perf_counter()
    result = await replay.replay(database_url, bootstrap, projection, moved)
    seconds = time.perf_counter() - started
    diff_started = time.perf_counter()
    differences = await replay.differences(pool)
    return {
        "figures": {"rebuild_events": result.total, "rebuild_seconds": seconds,
                    "rebuild_events_per_s": rate(result.total, seconds),
                    "rebuild_compare_seconds": time.perf_counter() - diff_started},
        "outcomes": dict(result.outcomes),
        "differences": differences,
    }
