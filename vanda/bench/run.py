"""`vanda bench`: every phase in one run on the same broker and database, one table, one JSON file."""

from __future__ import annotations

import asyncio
import os
import platform
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vanda.bench import counts, cpu, http, latency, limit, memory, naive, pipeline, rebuild, stackctl, stats, workload
from vanda.runtime.db import create_pool


PHASE_NAMES = ("limit", "naive", "pipeline", "http", "latency", "rebuild")


@dataclass(frozen=True)
class Settings:
    incidents: int = 200_000
    naive_incidents: int = 5000
    http_incidents: int = 5000
    http_concurrency: int = 16
    latency_seconds: float = 20
    latency_rate: float = 500
    latency_via: str = "batch"
    seed: int = 2024
    home: Path | None = None
    json_path: Path | None = None
    pipeline_timeout: float = 3600
    phases: tuple[str, ...] = PHASE_NAMES

    @property
    def naive_count(self) -> int:
        return min(self.incidents, self.naive_incidents)


def main(settings: Settings, console: Console) -> int:
    """Run the bench; print and write its results; return the exit code (1 unless exact and complete)."""
    # A stopped bench (SIGTERM) must still stop the stack it started: exit through the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result: dict[str, Any] = {"settings": {k: str(v) if isinstance(v, Path) else v
                                           for k, v in asdict(settings).items()}}
    try:
        with stackctl.running(settings.home, console) as stack:
            result["stack"] = "fresh (started and stopped by the bench)" if stack.owned else "reused (--home)"
            asyncio.run(measure(stack, settings, console, result))
    except Exception as exc:  # noqa: BLE001 - report what was measured, then fail loudly
        result["error"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
    figures = result.setdefault("figures", {})
    figures |= stats.derived(figures)
    figures["memory_growth_mb"] = memory.growth(result.get("memory", {}))
    result["targets"] = [{"figure": t.figure, "target": t.label, "met": t.met(figures)} for t in stats.TARGETS]
    result["table"] = stats.table_rows(figures, notes(figures))
    exact = result.get("exactness", {}).get("passed", False)
    result["passed"] = exact and "error" not in result
    show(result, console)
    if settings.json_path is not None:
        settings.json_path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2, default=str))
        console.print(f"results written to {settings.json_path}")
    return 0 if result["passed"] else 1


def notes(figures: dict[str, Any]) -> dict[str, str]:
    out = {}
    if figures.get("naive_incidents"):
        out["naive_per_s"] = f"{figures['naive_incidents']:,} incidents"
    if figures.get("pipeline_incidents"):
        out["pipeline_per_s"] = f"{figures['pipeline_incidents']:,} incidents, Kafka + HTTP batch"
    if figures.get("http_single_concurrency"):
        out["http_single_per_s"] = f"{figures['http_single_concurrency']} clients"
    if figures.get("latency_samples") is not None:
        out["latency_p99_ms"] = f"{figures['latency_samples']:,} decisions; broker time - reported_at"
    if figures.get("rebuild_events"):
        out["rebuild_events_per_s"] = f"{figures['rebuild_events']:,} events"
    return out


async def measure(stack: stackctl.Stack, settings: Settings, console: Console, result: dict[str, Any]) -> None:
    pool = await create_pool(stack.dsn, max_size=8)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    sampler = memory.Sampler(stack.service_pids())
    figures: dict[str, Any] = result.setdefault("figures", {})
    try:
        result["machine"] = await machine(pool)
        with Progress(*columns, console=console, transient=False) as bar, sampler:
            def progress(name: str, total: int | None) -> Callable[[int], None]:
                task = bar.add_task(name, total=total)
                return lambda n: bar.advance(task, n)

            before = await counts.applied(pool)
            sources = [workload.KAFKA_SOURCE, workload.HTTP_SOURCE, workload.SINGLE_SOURCE, workload.LATENCY_SOURCE]
            stored_before = await counts.by_source(pool, sources)
            sent = dict.fromkeys(sources, 0)
            refused, accepted = 0, 0
            extra: dict[str, tuple[Any, Any]] = {}
            reports = workload.reports(settings.incidents, seed=settings.seed, source_system="bench")
            result["workload"] = workload.concentration(reports)
            share = workload.split(len(reports))
            via_kafka = workload.with_source(reports[:share.kafka], workload.KAFKA_SOURCE)
            via_http = workload.with_source(reports[share.kafka:], workload.HTTP_SOURCE)
            wanted = set(settings.phases)
            events = _events(reports, progress("preparing events", len(reports))) if wanted & {"limit", "naive"} else []
            del reports

            if "limit" in wanted:
                with sampler.phase("limit"):
                    figures |= await limit.run(stack.bootstrap, stack.dsn, events, progress)
            if "naive" in wanted:
                with sampler.phase("naive"):
                    figures |= await naive.run(stack.bootstrap, pool, events[:settings.naive_count], progress)
            del events
            if "pipeline" in wanted:
                meter = cpu.Meter(stack.service_pids() | stack.infrastructure_pids())
                with sampler.phase("pipeline"):
                    sampler.mark("pipeline_start")
                    meter.start()
                    piped = await pipeline.run(stack.bootstrap, stack.intake_url, stack.api_key, pool, via_kafka,
                                               via_http, progress, settings.pipeline_timeout,
                                               halfway=lambda: sampler.mark("pipeline_half"))
                    sampler.mark("pipeline_end")
                    result["pipeline_cpu_ms_per_incident"] = cpu.per_incident(meter.stop(),
                                                                              piped["figures"]["pipeline_incidents"])
                figures |= piped["figures"]
                sent[workload.KAFKA_SOURCE], sent[workload.HTTP_SOURCE] = len(via_kafka), len(via_http)
                refused += piped["refused"]
                accepted += figures["pipeline_incidents"]
                if piped["refused_examples"]:
                    result["refused_examples"] = piped["refused_examples"]
            if "http" in wanted:
                singles = workload.reports(settings.http_incidents, seed=settings.seed + 1,
                                           source_system=workload.SINGLE_SOURCE)
                with sampler.phase("http_single"):
                    single = await http.run(stack.intake_url, stack.api_key, singles, settings.http_concurrency,
                                            progress("HTTP single POST", len(singles)))
                figures |= single["figures"]
                sent[workload.SINGLE_SOURCE] = len(singles)
                refused += single["refused"]
                accepted += single["accepted"]
            if "latency" in wanted:
                paced = workload.reports(round(settings.latency_rate * settings.latency_seconds),
                                         seed=settings.seed + 2, source_system=workload.LATENCY_SOURCE)
                with sampler.phase("latency"):
                    late = await latency.run(stack.bootstrap, stack.intake_url, stack.api_key, pool, paced,
                                             settings.latency_rate, settings.latency_via, progress)
                figures |= late["figures"]
                sent[workload.LATENCY_SOURCE] = len(paced)
                refused += late["refused"]
                accepted += late["accepted"]
            with sampler.phase("settle"):
                await pipeline.wait_applied(pool, counts.Applied(
                    *(getattr(before, n) + accepted for n in ("intake", "sanctions", "reporting"))))
                await _decisions_settled(pool)
            if "rebuild" in wanted:
                # The rebuild runs in this process and its lanes; its speed has varied between runs, so where the
                # cores went meanwhile (PostgreSQL's background work included) is recorded too.
                meter = cpu.Meter(stack.service_pids() | stack.infrastructure_pids() | {"rebuild": os.getpid()})
                with sampler.phase("rebuild"):
                    meter.start()
                    rebuilt = await rebuild.run(pool, stack.dsn, stack.bootstrap, progress)
                    result["rebuild_cpu_s"] = meter.stop()
                figures |= rebuilt["figures"]
                result["rebuild_outcomes"] = rebuilt["outcomes"]
                extra |= {f"rebuild = live ({table})": (0, n) for table, n in rebuilt["differences"].items()}
        result["memory"] = sampler.report()
        after = await counts.applied(pool)
        stored = {s: n - stored_before[s] for s, n in (await counts.by_source(pool, sources)).items()}
        extra |= {"intake: every stored event published": (0, await pool.fetchval(
                      "SELECT count(*) FROM intake.outbox WHERE sent_at IS NULL")),
                  "reporting: decisions = sanctions' decisions": await _decision_counts(pool)}
        sent = {s: n for s, n in sent.items() if n}
        result["exactness"] = counts.summary(counts.checks(before, after, sent, stored, refused, extra))
    finally:
        result.setdefault("memory", sampler.report())
        await pool.close()


def _events(reports: list[dict[str, Any]], advance: Callable[[int], None]) -> list[tuple[bytes, bytes]]:
    out = []
    for n, report in enumerate(reports, 1):
        out.append(workload.reported_event(report))
        if n % 1000 == 0 or n == len(reports):
            advance(1000 if n % 1000 == 0 else n % 1000)
    return out


async def _decision_counts(pool: Any) -> tuple[int, int]:
    return (await pool.fetchval("SELECT count(*) FROM sanctions.decisions"),
            await pool.fetchval("SELECT count(*) FROM reporting.decisions"))


async def _decisions_settled(pool: Any, timeout: float = 120) -> None:
    """Wait until reporting holds every decision sanctions made (they travel through the outbox and topic)."""
    deadline = time.monotonic() + timeout
    while True:
        made, projected = await _decision_counts(pool)
        if made == projected or time.monotonic() > deadline:
            return
        await asyncio.sleep(0.2)


async def machine(pool: Any) -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    try:
        from vanda.stack.jars import kafka_version

        kafka = kafka_version()
    except Exception:  # noqa: BLE001 - a version we cannot read is not worth failing for
        kafka = None
    return {"cpus": os.cpu_count(), "cpu_model": model or platform.processor(),
            "ram_gb": round(psutil.virtual_memory().total / 1024 ** 3, 1), "python": platform.python_version(),
            "os": platform.platform(), "kafka": kafka,
            "postgresql": await pool.fetchval("SHOW server_version")}


def show(result: dict[str, Any], console: Console) -> None:
    m = result.get("machine", {})
    if m:
        console.print(f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['ram_gb']} GB RAM, Python {m['python']},"
                      f" Kafka {m['kafka']}, PostgreSQL {m['postgresql']}; stack {result.get('stack')}")
    w = result.get("workload")
    if w:
        console.print(f"workload: {w['carded_incidents']:,} incidents with an identified patient, relative or visitor"
                      f" over {w['subjects']:,} subjects; busiest subjects' shares {w['busiest_subjects_share']}")
    table = Table(title="vanda bench")
    for column in ("figure", "value", "unit", "target"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for row in result["table"]:
        table.add_row(*row)
    console.print(table)
    mem = result.get("memory", {})
    if mem:
        phases = [p for p in PHASES if any(p in s["peak_mb"] for s in mem.values())]
        rss = Table(title="service RSS (MB): start, peak per phase, end")
        for column in ("service", "start", *phases, "end", "growth"):
            rss.add_column(column, justify="left" if column == "service" else "right")
        for name, s in mem.items():
            rss.add_row(name, stats.fmt(s["start_mb"]), *(stats.fmt(s["peak_mb"].get(p)) for p in phases),
                        stats.fmt(s["end_mb"]), stats.fmt(s["growth_mb"]))
        console.print(rss)
    spent = result.get("pipeline_cpu_ms_per_incident")
    if spent:
        console.print("CPU per incident in the pipeline phase (ms): "
                      + ", ".join(f"{name} {ms:.3f}" for name, ms in spent.items()))
    rebuilding = result.get("rebuild_cpu_s")
    if rebuilding:
        console.print("CPU during the rebuild (s): " + ", ".join(f"{name} {s:.1f}" for name, s in rebuilding.items()))
    exact = result.get("exactness")
    if exact:
        for check in exact["checks"]:
            mark = "[green]ok[/green]" if check["passed"] else "[red]FAILED[/red]"
            console.print(f"  {mark} {check['name']}: expected {check['expected']}, got {check['actual']}")
    if "error" in result:
        console.print(f"[red]bench failed: {result['error']}[/red]")
        console.print(result["traceback"], markup=False, highlight=False)
    console.print("[green]exact: every accepted incident applied once in intake, sanctions and reporting[/green]"
                  if result["passed"] else "[red]bench FAILED: see above[/red]")


PHASES = ["setup", "limit", "naive", "pipeline", "http_single", "latency", "settle", "rebuild"]
