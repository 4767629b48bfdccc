"""RSS of each service process, sampled in the background and kept per bench phase."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil

MB = 1024 * 1024
BETWEEN = "between phases"


def rss_mb(pid: int) -> float | None:
    """Resident memory of a process and its children, in MB; None if it is gone."""
    try:
        proc = psutil.Process(pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
        return total / MB
    except psutil.Error:
        return None


class Sampler:
    """Samples every `interval` seconds while started; `phase()` names what is running."""

    def __init__(self, pids: dict[str, int], interval: float = 0.25) -> None:
        self.pids, self.interval = pids, interval
        self.start_mb = self._sample()
        self.end_mb: dict[str, float | None] = {}
        self.peaks: dict[str, dict[str, float]] = {}
        self.marks: dict[str, dict[str, float | None]] = {}
        # Peaks between consecutive marks, under the later mark's label ("pipeline_half": the
        # largest RSS from the pipeline's start to its half-way mark).
        self.window_peaks: dict[str, dict[str, float]] = {}
        self._window: dict[str, float] = {}
        self._lock = threading.Lock()  # the sampling thread and mark() both touch the window
        self._phase = "setup"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-rss", daemon=True)

    def _sample(self) -> dict[str, float | None]:
        return {name: rss_mb(pid) for name, pid in self.pids.items()}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._record(self._sample())

    def _record(self, sample: dict[str, float | None]) -> None:
        with self._lock:
            for peaks in (self.peaks.setdefault(self._phase, {}), self._window):
                for name, mb in sample.items():
                    if mb is not None:
                        peaks[name] = max(peaks.get(name, 0.0), mb)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.end_mb = self._sample()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._phase = name
        self._record(self._sample())
        try:
            yield
        finally:
            self._record(self._sample())
            # Phases do not nest. Samples between two (waits, checks) are no phase's: counted
            # under "setup" they showed the pipeline's peak as setup's.
            self._phase = BETWEEN

    def mark(self, label: str) -> None:
        """Remember RSS now under `label` (e.g. half-way through the pipeline and at its end),
        and the peak since the previous mark."""
        now = self._sample()
        self._record(now)
        with self._lock:
            self.marks[label], self.window_peaks[label], self._window = now, self._window, {}

    def report(self) -> dict[str, Any]:
        """Per service: RSS at start and end, peak per phase, marks, and growth (MB).

        Growth is the peak over the pipeline's second half less the peak over its first half
        (both halves apply the same number of incidents). Memory that grows with N is higher
        in the second half; a working set that does not is the same in both. Peaks, not the
        RSS at the two marks: a single sample shows whichever batch happened to be in flight,
        and moved by tens of MB from run to run. Without those marks it falls back to
        start -> end."""
        out: dict[str, Any] = {}
        first_half, second_half = self.window_peaks.get("pipeline_half", {}), self.window_peaks.get("pipeline_end", {})
        windowed = bool(first_half and second_half and "pipeline_start" in self.marks)
        for name in self.pids:
            start, end = self.start_mb.get(name), self.end_mb.get(name)
            first, last = (first_half.get(name), second_half.get(name)) if windowed else (start, end)
            out[name] = {
                "start_mb": _round(start), "end_mb": _round(end),
                "growth_mb": _round(last - first) if first is not None and last is not None else None,
                "growth_basis": "pipeline second-half peak - first-half peak" if windowed else "start -> end",
                "marks_mb": {label: _round(m.get(name)) for label, m in self.marks.items()},
                "window_peaks_mb": {label: _round(m.get(name)) for label, m in self.window_peaks.items()},
                "peak_mb": {phase: _round(p[name]) for phase, p in self.peaks.items() if name in p},
            }
        return out


def growth(report: dict[str, Any]) -> float | None:
    """The largest start -> end growth of any service."""
    values = [s["growth_mb"] for s in report.values() if s.get("growth_mb") is not None]
    return max(values) if values else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
