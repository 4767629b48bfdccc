"""CPU time each process spent in a phase: where the machine's cores went, per incident.

Throughput on a small machine is bounded by the CPU the whole stack needs per incident
(the services, Kafka and PostgreSQL share the same cores), so the bench records it for
the pipeline phase; a profile then says where inside a process that time goes.
"""

from __future__ import annotations

import psutil


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a process and its children, live or ended; None if it is gone."""
    try:
        proc = psutil.Process(pid)
        # user, system, and what ended children used (a rebuild's lanes, a closed connection's backend)
        total = sum(proc.cpu_times()[:4])
        for child in proc.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return None


class Meter:
    """CPU seconds per named process between `start()` and `stop()`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self._start: dict[str, float | None] = {}

    def start(self) -> None:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def stop(self) -> dict[str, float]:
        used = {}
        for name, pid in self.pids.items():
            before, after = self._start.get(name), cpu_seconds(pid)
            if before is not None and after is not None:
                used[name] = after - before
        return used


def per_incident(used: dict[str, float], incidents: int) -> dict[str, float]:
    """Milliseconds of CPU per incident, per process and in total."""
    if incidents <= 0:
        return {}
    out = {name: 1000 * seconds / incidents for name, seconds in used.items()}
    out["total"] = sum(out.values())
    return out
