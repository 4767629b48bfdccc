"""Run a service under uvicorn so that SIGTERM drains in-flight work and exits 0."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from types import FrameType

import uvicorn
from pydantic import ValidationError

from vanda.runtime.settings import explain

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    """uvicorn re-raises SIGTERM after a graceful shutdown, so the process dies "by signal";
    orchestrators then report a crash. A drained stop is a clean one: exit 0.

    uvicorn also only looks at a stop request once the app has started, and start-up waits
    up to STARTUP_WAIT_S each for PostgreSQL and Kafka: a stop asked for meanwhile interrupts it.
    """

    _loop: asyncio.AbstractEventLoop | None = None
    _main: asyncio.Task | None = None
    stopped_while_starting = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop, self._main = asyncio.get_running_loop(), asyncio.current_task()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and sig in self._captured_signals:
            self._captured_signals.remove(sig)
        if not self.started and not self.stopped_while_starting and self._main and self._loop:
            self.stopped_while_starting = True
            # A signal handler may run in the middle of the loop's own work: hand it the cancel.
            self._loop.call_soon_threadsafe(self._main.cancel)


class _QuietWhenStopped(logging.Filter):
    """A start-up cut short on request is not an error: drop uvicorn's traceback of the cancellation."""

    def __init__(self, server: DrainingServer) -> None:
        super().__init__()
        self._server = server

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self._server.stopped_while_starting and record.levelno >= logging.ERROR
                    and "CancelledError" in record.getMessage())


def serve(app: str, *, host: str, port: int, graceful_timeout: int) -> None:
    """Serve an app factory path until stopped; a failed startup exits non-zero."""
    config = uvicorn.Config(app, factory=True, host=host, port=port, log_config=None,
                            timeout_graceful_shutdown=graceful_timeout, access_log=False)
    server = DrainingServer(config)
    logging.getLogger("uvicorn.error").addFilter(_QuietWhenStopped(server))
    try:
        server.run()
    except ValidationError as exc:
        problems = explain(exc)
        if problems is None:
            raise
        for problem in problems:
            log.error("configuration: %s", problem)
        sys.exit(2)
    except asyncio.CancelledError:
        if not server.stopped_while_starting:
            raise
        log.info("stopped on request before start-up completed")
        return
    if not server.started:
        sys.exit(3)
