"""The pipeline's services as child processes the fault suite can kill and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from vanda.stack.ports import free_port


class Service:
    """One service process on a fixed port, so a restart comes back at the same address."""

    def __init__(self, name: str, env: dict[str, str], logs: Path, port: int | None = None) -> None:
        self.name, self.env, self.logs = name, env, logs
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        log = open(self.logs / f"{self.name}-{self.port}.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vanda", "serve", self.name, "--port", str(self.port), "--graceful-timeout", "15"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, f"{self.name} exited during start"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"{self.name} not ready after {timeout}s")

    def kill(self) -> None:
        """kill -9: no chance to finish anything."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(20)
            except subprocess.TimeoutExpired:
                self.kill()
