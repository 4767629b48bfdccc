"""Run a service under uvicorn so that SIGTERM drains in-flight work and exits 0."""

from __future__ import annotations

import signal
import sys
from types import FrameType

import uvicorn


class DrainingServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after a graceful shutdown, so the process dies "by signal";
    orchestrators then report a crash. A drained stop is a clean one: exit 0."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and sig in self._captured_signals:
            self._captured_signals.remove(sig)


def serve(app: str, *, host: str, port: int, graceful_timeout: int) -> None:
    """Serve an app factory path until stopped; a failed startup exits non-zero."""
    config = uvicorn.Config(app, factory=True, host=host, port=port, log_config=None,
                            timeout_graceful_shutdown=graceful_timeout, access_log=False)
    server = DrainingServer(config)
    server.run()
    if not server.started:
        sys.exit(3)
