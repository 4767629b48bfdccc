"""HTTP single-incident throughput and latency at a fixed number of concurrent clients."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from vanda.bench.stats import percentile, rate

SINGLE_PATH = "/v1/incidents"


async def post_single(client: httpx.AsyncClient, report: dict[str, Any], attempts: int = 20) -> httpx.Response:
    """POST one report, retrying transport failures and 503s (the same ref makes a retry safe)."""
    for attempt in range(attempts):
        try:
            response = await client.post(SINGLE_PATH, json=report)
        except httpx.TransportError:
            await asyncio.sleep(min(0.1 * 2 ** attempt, 2))
            continue
        if response.status_code != 503:
            return response
        await asyncio.sleep(float(response.headers.get("Retry-After", 1)))
    raise RuntimeError(f"{SINGLE_PATH} did not answer after {attempts} attempts")


async def run(url: str, api_key: str, reports: list[dict[str, Any]], concurrency: int,
              progress: Callable[[int], None] = lambda n: None) -> dict[str, Any]:
    """Each of `concurrency` clients posts the next report as soon as its last one is answered."""
    queue = list(reversed(reports))
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits, headers={"X-API-Key": api_key}) as client:
        async def worker() -> None:
            while queue:
                report = queue.pop()
                started = time.perf_counter()
                response = await post_single(client, report)
                latencies.append(time.perf_counter() - started)
                statuses[response.status_code] += 1
                progress(1)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    accepted = statuses[202]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return {
        "figures": {"http_single_incidents": accepted, "http_single_concurrency": concurrency,
                    "http_single_per_s": rate(accepted, seconds),
                    "http_single_p50_ms": p50 * 1000 if p50 is not None else None,
                    "http_single_p99_ms": p99 * 1000 if p99 is not None else None},
        "accepted": accepted,
        "refused": sum(n for status, n in statuses.items() if status != 202),
        "statuses": {str(k): v for k, v in statuses.items()},
    }
