"""Stream a synthetic feed into a running pipeline and show what it produced."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vanda import synthetic


async def send(intake_url: str, reports: list[dict[str, Any]], *, api_key: str | None = None,
               concurrency: int = 8, progress: Progress | None = None) -> tuple[Counter[int], Counter[str]]:
    """POST every report, retrying transport failures; count status codes and subjects."""
    statuses: Counter[int] = Counter()
    subjects: Counter[str] = Counter()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for report in reports:
        queue.put_nowait(report)
    task = progress.add_task("incidents", total=len(reports)) if progress else None
    headers = {"X-API-Key": api_key} if api_key else {}
    async with httpx.AsyncClient(base_url=intake_url, timeout=30, headers=headers) as client:
        async def worker() -> None:
            while not queue.empty():
                report = queue.get_nowait()
                response = await _post(client, report)
                statuses[response.status_code] += 1
                if response.status_code == 202 and response.json()["subject_id"]:
                    subjects[response.json()["subject_id"]] += 1
                if progress is not None and task is not None:
                    progress.advance(task)
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses, subjects


async def _post(client: httpx.AsyncClient, report: dict[str, Any], attempts: int = 20) -> httpx.Response:
    # The same source_ref makes a retry safe: intake answers it with the original receipt.
    for attempt in range(attempts):
        try:
            return await client.post("/v1/incidents", json=report)
        except httpx.TransportError:
            await asyncio.sleep(min(0.2 * 2**attempt, 3))
    raise RuntimeError("intake did not answer")


def board(reporting_url: str, start: str, end: str, token: str) -> dict[str, Any]:
    """The board's figures for a range of months, read with a board_viewer bearer token."""
    return httpx.get(f"{reporting_url}/v1/metrics/board", params={"from": start, "to": end},
                     headers={"Authorization": f"Bearer {token}"}, timeout=10).json()


def wait_for_counts(reporting_url: str, start: str, end: str, expected: int, token: str,
                    timeout: float = 120) -> dict[str, Any]:
    """Poll the board until it counts `expected` incidents (events flow asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        body = board(reporting_url, start, end, token)
        if _count(body["totals"]["incidents"]) >= expected or time.monotonic() > deadline:
            return body
        time.sleep(0.5)


def run(endpoints: dict[str, str], count: int, months: int, console: Console, token: str) -> None:
    """Send `count` incidents over `months` months and print the board's monthly counts.

    `token` is a bearer token with the board_viewer role.
    """
    now = datetime.now(UTC)
    reports = list(synthetic.incidents(count, months=months, seed=int(now.timestamp()), end=now))
    start, end = min(r["occurred_at"] for r in reports)[:7], now.strftime("%Y-%m")
    before = _count(board(endpoints["REPORTING_URL"], start, end, token)["totals"]["incidents"])
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        statuses, subjects = asyncio.run(send(endpoints["INTAKE_URL"], reports,
                                              api_key=endpoints.get("INTAKE_API_KEY"), progress=progress))
    console.print(f"intake answered: {dict(statuses)}")
    # Intake answers before the events are projected: wait for reporting to catch up.
    figures = wait_for_counts(endpoints["REPORTING_URL"], start, end, before + statuses[202], token)
    console.print(_table(figures))
    busiest = subjects.most_common(1)[0][0] if subjects else "<subject_id from an intake receipt>"
    _where(endpoints, start, end, busiest, console)


def _table(board: dict[str, Any]) -> Table:
    table = Table(title="Board metrics by month", box=box.SIMPLE, caption=(
        "assault = physical assault; sexual = sexual misconduct; Y1/Y2 = yellow cards; red = red card proposed;"
        " clinical = clinical review requested; safeg. = safeguarding referral; * = suppressed (1 to 4,"
        " or able to reveal one)"))
    for column in ("month", "incidents", "assault", "sexual", "Y1", "Y2", "red", "clinical", "safeg."):
        table.add_column(column, justify="right", no_wrap=True)
    for m in board["months"] + [{"month": "total", **board["totals"]}]:
        cats, cards = m["breakdowns"].get("incidents_by_category", {}), m["breakdowns"].get("sanctions", {})
        table.add_row(m["month"], _cell(m["incidents"]), _cell(cats.get("physical_assault", 0)),
                      _cell(cats.get("sexual_misconduct", 0)), _cell(cards.get("yellow_card_1", 0)),
                      _cell(cards.get("yellow_card_2", 0)), _cell(cards.get("red_card_proposed", 0)),
                      _cell(cards.get("clinical_review_requested", 0)),
                      _cell(cards.get("safeguarding_referral_requested", 0)))
    return table


def _count(value: Any) -> int:
    """A board count, reading a suppressed one (1 to 4, or hidden to protect one) as 0."""
    return value if isinstance(value, int) else 0


def _cell(value: Any) -> str:
    return "*" if isinstance(value, dict) else str(value)


def _where(endpoints: dict[str, str], start: str, end: str, subject: str, console: Console) -> None:
    console.print("\n[bold]Where to look[/bold]")
    console.print(f"  board metrics:  {endpoints['REPORTING_URL']}/v1/metrics/board?from={start}&to={end}",
                  soft_wrap=True)
    console.print(f"  busiest subject: {endpoints['SANCTIONS_URL']}/v1/subjects/{subject}", soft_wrap=True)
    console.print("  (both need a bearer token: .venv/bin/vanda token --role board_viewer --role operations"
                  " --subject <your staff id>, sent as 'Authorization: Bearer <token>')", soft_wrap=True)
    console.print(f"  API docs:       {endpoints['INTAKE_URL']}/docs (and on each service)")
    console.print(f"  Prometheus:     {endpoints['INTAKE_URL']}/metrics, and /metrics on each service")
    console.print(f"  Kafka topics:   vanda.incidents.v1, vanda.sanctions.v1 on {endpoints['KAFKA_BOOTSTRAP_SERVERS']}")
    console.print("  stop it all:    .venv/bin/vanda down")
