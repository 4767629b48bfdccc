"""`vanda bench` end to end on a few thousand incidents, against a stack of its own.

Asserts what was measured and that the end state is exact, never how fast: the figures
depend on the machine, and the test must hold on a busy 2-core builder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vanda.bench import stats

ROOT = Path(__file__).resolve().parents[2]
RATES = ("limit_produce_per_s", "limit_consume_per_s", "limit_copy_per_s", "limit_per_s", "naive_per_s",
         "pipeline_per_s", "http_single_per_s", "latency_rate_per_s", "rebuild_events_per_s")
FIGURES = RATES + ("pipeline_seconds", "http_single_p50_ms", "http_single_p99_ms", "latency_p50_ms",
                   "latency_p99_ms", "rebuild_seconds", "rebuild_1m_events_s", "ratio_pipeline_limit",
                   "ratio_pipeline_naive", "memory_growth_mb", "pipeline_intake_done_seconds",
                   "pipeline_sanctions_done_seconds", "pipeline_reporting_done_seconds")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    # Its own fresh stack: never the session's (the leak scan reads that one), never the environment's.
    env = {k: v for k, v in os.environ.items() if k not in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "VANDA_HOME")}
    result = subprocess.run(
        [sys.executable, "-m", "vanda", "bench", "--incidents", "1000", "--naive-incidents", "200",
         "--http-incidents", "100", "--latency-seconds", "2", "--latency-rate", "100", "--json", str(out)],
        cwd=ROOT, env=env | {"COLUMNS": "200"}, capture_output=True, text=True, timeout=900)
    assert out.exists(), f"no JSON written:\n{result.stdout}\n{result.stderr}"
    return result, json.loads(out.read_text())


@pytest.mark.timeout(900)
def test_bench_passes_and_prints_one_table(bench: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    result, data = bench
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "vanda bench" in result.stdout
    for _, label, _ in stats.ROWS:
        assert label.strip() in result.stdout
    assert "exact: every accepted incident applied once" in result.stdout


def test_every_figure_is_measured_and_rates_are_positive(bench: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    _, data = bench
    figures = data["figures"]
    missing = [f for f in FIGURES if figures.get(f) is None]
    assert not missing, f"figures not measured: {missing}"
    assert all(figures[f] > 0 for f in RATES)
    assert figures["pipeline_incidents"] == 1000 and figures["naive_incidents"] == 200
    assert figures["latency_samples"] > 0 and "reported_at" in figures["latency_basis"]
    assert {t["figure"] for t in data["targets"]} == {t.figure for t in stats.TARGETS}
    assert len(data["table"]) == len(stats.ROWS)


def test_end_state_is_exact(bench: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    _, data = bench
    assert data["passed"] is True and "error" not in data
    assert data["exactness"]["passed"] is True
    assert all(check["passed"] for check in data["exactness"]["checks"])
    names = " ".join(check["name"] for check in data["exactness"]["checks"])
    assert "sanctions" in names and "reporting" in names and "refused none" in names


def test_memory_and_machine_are_recorded(bench: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    _, data = bench
    assert set(data["memory"]) == {"intake", "sanctions", "reporting"}
    for service in data["memory"].values():
        assert service["start_mb"] > 0 and service["end_mb"] > 0
        assert {"limit", "naive", "pipeline", "http_single", "latency", "rebuild"} <= set(service["peak_mb"])
    machine = data["machine"]
    assert machine["cpus"] >= 1 and machine["python"] and machine["postgresql"]


def test_cpu_per_incident_is_recorded_for_every_process(bench: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    _, data = bench
    spent = data["pipeline_cpu_ms_per_incident"]
    assert {"intake", "sanctions", "reporting", "kafka", "postgres", "total"} <= set(spent)
    assert all(spent[name] > 0 for name in ("intake", "sanctions", "reporting", "kafka", "postgres"))
    assert spent["total"] == pytest.approx(sum(v for k, v in spent.items() if k != "total"))


def test_cpu_during_the_rebuild_is_recorded(bench: tuple[subprocess.CompletedProcess[str], dict]) -> None:
    proc, data = bench
    spent = data["rebuild_cpu_s"]
    assert {"rebuild", "kafka", "postgres"} <= set(spent)
    assert spent["rebuild"] > 0 and spent["postgres"] > 0
    assert "CPU during the rebuild (s): " in proc.stdout
