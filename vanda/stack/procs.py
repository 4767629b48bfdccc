"""Detached process helpers that never touch a pid they cannot prove is ours."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import psutil

# Popen objects of children spawned by this interpreter: kept so they can be reaped
# (a dead child stays a zombie, and `pid_exists` would still say it is alive).
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}

INSTALL_HINT = "apt-get install -y openjdk-17-jre-headless maven"


class StackError(RuntimeError):
    """A local stack component could not be prepared, started, stopped or reached."""


def require_tool(name: str, path: str | None = None) -> str:
    """Return the executable for ``name`` or raise a StackError saying how to install it."""
    found = shutil.which(path or name)
    if found is None:
        raise StackError(
            f"`{name}` is not installed (or not on PATH); it is needed to run the local stack. "
            f"Install it with: {INSTALL_HINT}"
        )
    return found


def spawn(
    cmd: Sequence[str],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> int:
    """Start ``cmd`` in its own session with output appended to ``log_path``; return its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        # A new session detaches it from our terminal, so Ctrl-C / CLI exit does not kill it.
        proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
            close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _reap() -> None:
    """Collect exit status of our own dead children so they stop showing as zombies."""
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def matches(cmdline: Sequence[str], fragments: Sequence[str]) -> bool:
    """Return True if every fragment occurs in the joined command line."""
    line = " ".join(cmdline)
    return bool(line) and all(fragment in line for fragment in fragments)


def process(pid: int | None, fragments: Sequence[str]) -> psutil.Process | None:
    """Return the live process ``pid`` only if its command line contains all ``fragments``."""
    _reap()
    if not pid or pid <= 0:
        return None
    try:
        proc = psutil.Process(pid)
        if pid in _CHILDREN:
            # Our own child, not yet reaped: alive, and its pid cannot have been reused. Its
            # command line is not asked: while a JVM starts, /proc can answer it empty, and a
            # broker still starting was once taken for one that had exited.
            return proc
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        # The cmdline check is what keeps a recycled pid (some unrelated program) safe.
        return proc if matches(proc.cmdline(), fragments) else None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def is_alive(pid: int | None, fragments: Sequence[str]) -> bool:
    """Return True if ``pid`` runs and its command line contains all ``fragments``."""
    return process(pid, fragments) is not None


def find(fragments: Sequence[str]) -> list[int]:
    """Return pids of live processes whose command line contains all ``fragments``."""
    _reap()
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        info = proc.info
        if info["pid"] == os.getpid() or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        if matches(info["cmdline"] or [], fragments):
            found.append(int(info["pid"]))
    return found


def terminate(pid: int | None, fragments: Sequence[str], timeout: float = 30.0) -> bool:
    """SIGTERM ``pid`` (if it is ours), SIGKILL after ``timeout``; return True if it was running."""
    return stop_process(process(pid, fragments), timeout)


def gone(proc: psutil.Process) -> bool:
    """Return True once ``proc`` exited; a zombie counts (its reaper may be slow, e.g. pid 1)."""
    _reap()
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def stop_process(proc: psutil.Process | None, timeout: float = 30.0) -> bool:
    """SIGTERM an already-identified process, SIGKILL after ``timeout``; True if it was running."""
    if proc is None or gone(proc):
        return False
    try:
        # psutil re-checks the create time before signalling, so a reused pid is never hit.
        proc.terminate()
        if not wait_until(lambda: gone(proc), timeout, 0.05):
            proc.kill()
            wait_until(lambda: gone(proc), 10.0, 0.05)
    except psutil.NoSuchProcess:
        pass
    return True


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; return the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 40) -> str:
    """Return the last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])
