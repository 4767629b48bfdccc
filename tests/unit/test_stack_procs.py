"""The pid + command-line guard that keeps a reused pid from ever being signalled."""

from __future__ import annotations

import os
from pathlib import Path

import psutil

from vanda.stack import procs


def _own_fragment() -> str:
    return psutil.Process(os.getpid()).cmdline()[0]


def test_matches_requires_every_fragment() -> None:
    cmd = ["java", "-cp", "/x/libs/*", "kafka.Kafka", "/home/a/server.properties"]
    assert procs.matches(cmd, ["kafka.Kafka", "/home/a/server.properties"])
    assert not procs.matches(cmd, ["kafka.Kafka", "/home/b/server.properties"])
    assert not procs.matches([], ["anything"])


def test_is_alive_checks_pid_and_cmdline() -> None:
    assert procs.is_alive(os.getpid(), [_own_fragment()])
    assert not procs.is_alive(os.getpid(), ["kafka.Kafka", "/no/such/server.properties"])
    assert not procs.is_alive(None, ["x"])
    assert not procs.is_alive(0, ["x"])
    assert not procs.is_alive(2**22 + 12345, ["x"])  # above pid_max: never a process


def test_terminate_refuses_a_pid_with_foreign_cmdline() -> None:
    # Our own pid stands in for "a recycled pid now owned by something else".
    assert procs.terminate(os.getpid(), ["kafka.Kafka", "/no/such/server.properties"], 0.1) is False
    assert psutil.pid_exists(os.getpid())


def test_find_skips_self_and_non_matching() -> None:
    assert procs.find(["/definitely/not/a/real/path/vanda-stack"]) == []
    assert os.getpid() not in procs.find([_own_fragment()])


def test_wait_until_and_tail(tmp_path: Path) -> None:
    assert procs.wait_until(lambda: True, 0)
    assert not procs.wait_until(lambda: False, 0.05, 0.01)
    log = tmp_path / "x.log"
    assert procs.tail(log) == ""
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert procs.tail(log, 2) == "line 98\nline 99"


def test_our_own_child_is_alive_until_it_exits_while_its_cmdline_reads_empty(tmp_path: Path, monkeypatch) -> None:
    pid = procs.spawn(["sleep", "30"], tmp_path / "sleep.log")
    try:
        # As /proc can answer while a JVM starts: the child is still ours, and still running.
        monkeypatch.setattr(psutil.Process, "cmdline", lambda self: [])
        assert procs.is_alive(pid, ["sleep", "30"])
        monkeypatch.undo()
        assert procs.terminate(pid, ["sleep", "30"], 5.0)
        assert not procs.is_alive(pid, ["sleep", "30"])
    finally:
        procs.terminate(pid, ["sleep", "30"], 1.0)
