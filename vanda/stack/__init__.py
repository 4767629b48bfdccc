"""Start and stop real local infrastructure (Kafka KRaft broker, PostgreSQL), without Docker unless asked."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from . import state as state_file
from .kafka import KafkaNode, fetch_jars, wait_kafka
from .ports import free_port, port_answers, split_host_port
from .postgres import PostgresNode, wait_postgres
from .procs import StackError

__all__ = ["StackError", "StackInfo", "down", "fetch_jars", "start_component", "status",
           "stop_component", "up"]

Component = Literal["kafka", "postgres"]
COMPONENTS: tuple[Component, ...] = ("kafka", "postgres")
ENV_VARS: dict[str, str] = {"kafka": "KAFKA_BOOTSTRAP_SERVERS", "postgres": "DATABASE_URL"}
Saver = Callable[[str, dict[str, Any]], None]
ADDRESS_KEYS: dict[str, str] = {"kafka": "bootstrap_servers", "postgres": "database_url"}
DEFAULT_PORTS: dict[str, int] = {"kafka": 9092, "postgres": 5432}


@dataclass(frozen=True)
class StackInfo:
    """Where the running stack can be reached."""

    kafka_bootstrap_servers: str
    database_url: str


def _node(home: Path, name: str, rec: dict[str, Any] | None) -> KafkaNode | PostgresNode:
    """Build the node for ``name``, reusing recorded ports and pid (fresh ports if none)."""
    rec = rec if rec and not rec.get("external") else {}
    data, logs = home / "data" / name, home / "logs"
    if name == "kafka":
        node = KafkaNode(data, logs, 0, 0, rec.get("pid"))
        # Without a record, reuse the ports of an earlier config: KRaft stores the voter endpoint.
        ports = node.configured_ports() or (0, 0)
        port, cport = (rec.get("port"), rec.get("controller_port")) if rec else ports
        while not port or not cport or port == cport:  # two OS picks can collide
            port, cport = free_port(), free_port()
        node.port, node.controller_port = int(port), int(cport)
        return node
    if name == "postgres":
        return PostgresNode(data, logs, int(rec.get("port") or free_port()), rec.get("pid"))
    raise ValueError(f"unknown stack component {name!r}; expected one of {COMPONENTS}")


def _ensure(home: Path, name: str, records: state_file.State, save: Saver, timeout: float) -> str:
    """Make ``name`` answer (reusing, restarting or starting it) and return its address."""
    deadline = time.monotonic() + timeout
    external = os.environ.get(ENV_VARS[name])
    if external:
        previous = _node(home, name, records.get(name))
        if previous.is_running():  # our own node would otherwise keep running untracked
            previous.stop()
        waiter = wait_kafka if name == "kafka" else wait_postgres
        waiter(external, timeout)
        save(name, {"external": True, ADDRESS_KEYS[name]: external})
        return external
    node = _node(home, name, records.get(name))
    if not node.is_running():
        node.start()
        save(name, node.record())  # record the pid at once, so down() can stop a failed start
    node.wait_ready(max(1.0, deadline - time.monotonic()))
    save(name, node.record())
    return str(node.record()[ADDRESS_KEYS[name]])


def _refuse_docker(records: state_file.State) -> None:
    """Raise if this home's stack runs in Docker: the local commands would not see it."""
    if state_file.uses_docker(records):
        raise StackError("this home's stack runs in Docker (started with --docker); "
                         "pass --docker, or run `vanda stack down` first")


def _saver(home: Path, records: state_file.State) -> Saver:
    """Return a thread-safe ``save(name, record)`` that persists the whole state file."""
    lock = threading.Lock()

    def save(name: str, rec: dict[str, Any]) -> None:
        with lock:
            records[name] = rec
            state_file.save(home, records)

    return save


def up(home: Path, *, docker: bool = False, timeout: float = 120) -> StackInfo:
    """Start (or reuse) Kafka and PostgreSQL under ``home`` (in Docker if asked); return where they listen."""
    home = Path(home).resolve()
    if docker:
        from .containers import up_containers  # imported late: the docker SDK is slow to import

        return up_containers(home, timeout=timeout)
    with state_file.locked(home):
        records = state_file.load(home)
        _refuse_docker(records)
        save = _saver(home, records)
        # Both at once: the JVM start dominates and PostgreSQL fits in its shadow.
        with ThreadPoolExecutor(2) as pool:
            futures = {n: pool.submit(_ensure, home, n, records, save, timeout) for n in COMPONENTS}
            addresses = {n: f.result() for n, f in futures.items()}
    return StackInfo(addresses["kafka"], addresses["postgres"])


def down(home: Path) -> None:
    """Stop every process (or container) this home started; external components are left alone."""
    home = Path(home).resolve()
    if state_file.uses_docker(state_file.load(home)):
        from .containers import down_containers

        down_containers(home)
        return
    with state_file.locked(home):
        records = state_file.load(home)
        for name in COMPONENTS:
            rec = records.get(name)
            if rec and rec.get("external"):
                continue
            # Even without a record this finds strays by their home-specific command line.
            node = _node(home, name, rec)
            node.stop()
            if rec:
                records[name] = node.record()
        if records:
            state_file.save(home, records)


def stop_component(home: Path, name: Component) -> bool:
    """Stop one managed component (ports and data kept); return True if it was running."""
    home = Path(home).resolve()
    with state_file.locked(home):
        records = state_file.load(home)
        _refuse_docker(records)
        rec = records.get(name)
        if rec and rec.get("external"):
            raise StackError(f"{name} is external ({ENV_VARS[name]}); vanda does not manage it")
        node = _node(home, name, rec)
        was_running = node.stop()
        if rec:
            records[name] = node.record()
            state_file.save(home, records)
        return was_running


def start_component(home: Path, name: Component, *, timeout: float = 120) -> str:
    """Start one component on its recorded ports and data; return its connection string."""
    home = Path(home).resolve()
    _node(home, name, None)  # validates the name before anything is started
    with state_file.locked(home):
        records = state_file.load(home)
        _refuse_docker(records)
        return _ensure(home, name, records, _saver(home, records), timeout)


def status(home: Path) -> dict[str, dict[str, Any]]:
    """Return per component: running, pid, address (host:port), url, external, data_dir."""
    home = Path(home).resolve()
    records = state_file.load(home)
    if state_file.uses_docker(records):
        from .containers import status_containers

        return status_containers(home)
    out: dict[str, dict[str, Any]] = {}
    for name in COMPONENTS:
        rec = records.get(name) or {}
        url = os.environ.get(ENV_VARS[name]) or (rec.get(ADDRESS_KEYS[name]) if rec.get("external") else None)
        if url:
            host, port = split_host_port(url.split("@")[-1].split("/")[0], DEFAULT_PORTS[name])
            out[name] = {"running": port_answers(host, port), "pid": None, "address": f"{host}:{port}",
                         "url": url, "external": True, "data_dir": None}
            continue
        node = _node(home, name, rec) if rec else None
        running = bool(node and node.is_running())
        out[name] = {"running": running, "pid": node.pid if running and node else None,
                     "address": f"127.0.0.1:{node.port}" if node else None,
                     "url": rec.get(ADDRESS_KEYS[name]), "external": False,
                     "data_dir": str(home / "data" / name)}
    return out
