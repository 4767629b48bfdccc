"""A stop asked for while a service is still starting (waiting for its database) is honoured at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from vanda.runtime.settings import CommonSettings
from vanda.stack.ports import free_port

DB_WAIT_S = CommonSettings.model_fields["startup_wait_s"].default  # how long start-up waits for PostgreSQL


def _start_with_database_away(service: str) -> subprocess.Popen[bytes]:
    nowhere = free_port()  # nothing listens here: the pool keeps retrying
    env = os.environ | {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{nowhere}/vanda",
                        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{nowhere}"}
    return subprocess.Popen([sys.executable, "-m", "vanda", "serve", service, "--port", str(free_port())],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_for_line(proc: subprocess.Popen[bytes], text: str, timeout: float = 30) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline().decode()
        assert line, f"exited before logging {text!r}: {lines}"
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no {text!r} in {lines}")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_during_start_up_exits_cleanly_without_waiting_for_the_database(sig: signal.Signals) -> None:
    proc = _start_with_database_away("sanctions")
    try:
        wait_for_line(proc, "Waiting for application startup.")
        time.sleep(0.5)  # well inside the pool's retries
        proc.send_signal(sig)
        # Far less than the database wait: before the fix the process sat out all of it.
        code = proc.wait(timeout=DB_WAIT_S / 3)
        rest = proc.stdout.read().decode().splitlines() if proc.stdout else []
    finally:
        proc.kill()
        proc.wait()
    assert code == 0
    records = [json.loads(line) for line in rest if line.startswith("{")]
    assert any("stopped on request before start-up completed" in r["message"] for r in records), rest
    assert not [r for r in records if r["level"] == "ERROR"], "a requested stop is not an error"
