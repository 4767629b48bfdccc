"""A single-node Apache Kafka KRaft broker run straight from Maven Central jars."""

from __future__ import annotations

import base64
import functools
import re
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import probes, procs
from .jars import POM_PATH, fetch_jars, java_bin, kafka_version, render_log4j2
from .ports import LOOPBACK, port_answers, port_is_free, split_host_port
from .procs import StackError

__all__ = ["POM_PATH", "KafkaNode", "fetch_jars", "kafka_version", "render_log4j2", "wait_kafka"]

MAIN_CLASS = "kafka.Kafka"
JVM_OPTS = ["-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
# The one-shot StorageTool needs neither a big heap nor the optimising JIT.
TOOL_OPTS = ["-Xmx256m", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true"]


def new_cluster_id() -> str:
    """Return a Kafka cluster id, exactly as ``StorageTool random-uuid`` would (minus a JVM start)."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not value.startswith("-"):  # Kafka rejects ids that look like CLI flags
            return value


def render_server_properties(*, port: int, controller_port: int, log_dir: Path) -> str:
    """Render ``server.properties`` for a combined broker+controller node on loopback."""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{LOOPBACK}:{controller_port}",
        "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        # Kafka 4.x wants the controller endpoint advertised too (KIP-853 dynamic quorum).
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.partitions": "6",
        "auto.create.topics.enable": "false",  # services create their own topics
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


@dataclass
class KafkaNode:
    """One KRaft broker+controller whose files all live under ``data_dir``."""

    data_dir: Path
    log_dir: Path
    port: int
    controller_port: int
    pid: int | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def broker_log(self) -> Path:
        return self.data_dir / "broker.log"

    @property
    def out_log(self) -> Path:
        return self.log_dir / "kafka.out"

    @property
    def fragments(self) -> tuple[str, str]:
        # The absolute config path is unique per home, so this never matches another broker.
        return (MAIN_CLASS, str(self.config_path))

    def is_running(self) -> bool:
        """Return True if the recorded pid is still this broker."""
        return procs.is_alive(self.pid, self.fragments)

    def _prepare(self, libs: Path) -> list[str]:
        """Write the config files, format storage once, and return the java base command."""
        kraft_dir = self.data_dir / "kraft"
        kraft_dir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_server_properties(
            port=self.port, controller_port=self.controller_port, log_dir=kraft_dir))
        log4j = self.data_dir / "log4j2.properties"
        log4j.write_text(render_log4j2(self.broker_log))
        base = [java_bin(), "-cp", f"{libs}/*", f"-Dlog4j2.configurationFile={log4j}"]
        if not (kraft_dir / "meta.properties").exists():
            cmd = [*base, *TOOL_OPTS, "kafka.tools.StorageTool", "format", "--standalone",
                   "-t", new_cluster_id(), "-c", str(self.config_path)]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
            if res.returncode != 0:
                raise StackError(f"formatting Kafka storage failed:\n{res.stdout}{res.stderr}")
        return base

    def configured_ports(self) -> tuple[int, int] | None:
        """Return (port, controller_port) from an existing ``server.properties``, if any."""
        try:
            text = self.config_path.read_text()
        except OSError:
            return None
        props = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        found = dict(re.findall(r"(PLAINTEXT|CONTROLLER)://[^,]*:(\d+)", props.get("listeners", "")))
        if "PLAINTEXT" in found and "CONTROLLER" in found:
            return int(found["PLAINTEXT"]), int(found["CONTROLLER"])
        return None

    def start(self) -> int:
        """Spawn the broker (without waiting for it to be ready) and return its pid."""
        if self.is_running():
            return int(self.pid or 0)
        strays = procs.find(self.fragments)
        if strays:  # running but unrecorded (lost state file): adopt it, ports included
            self.pid = strays[0]
            self.port, self.controller_port = self.configured_ports() or (self.port, self.controller_port)
            return self.pid
        base = self._prepare(fetch_jars())
        for port in (self.port, self.controller_port):
            # A just-stopped broker may hold its ports for a moment; anything longer is a clash.
            if not procs.wait_until(functools.partial(port_is_free, port), 10.0):
                raise StackError(f"port {LOOPBACK}:{port} is taken by another process; "
                                 "stop it or remove this stack's home directory")
        cmd = [*base, *JVM_OPTS, MAIN_CLASS, str(self.config_path)]
        self.pid = procs.spawn(cmd, self.out_log, cwd=self.data_dir)
        return self.pid

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Block until a client can fetch cluster metadata; raise with the log tail otherwise."""
        wait_kafka(self.bootstrap_servers, timeout, node=self)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM the broker (a clean KRaft shutdown), SIGKILL after ``timeout``."""
        stopped = procs.terminate(self.pid, self.fragments, timeout)
        for pid in procs.find(self.fragments):  # strays from a lost or stale state file
            stopped = procs.terminate(pid, self.fragments, timeout) or stopped
        self.pid = None
        return stopped

    def record(self) -> dict[str, Any]:
        """Return the JSON-able state entry for this node."""
        return {"external": False, "pid": self.pid, "port": self.port,
                "controller_port": self.controller_port, "bootstrap_servers": self.bootstrap_servers,
                "data_dir": str(self.data_dir), "log": str(self.broker_log)}


def wait_kafka(bootstrap: str, timeout: float = 90.0, node: KafkaNode | None = None) -> None:
    """Poll ``bootstrap`` until it serves metadata; fail fast if ``node`` dies meanwhile."""
    deadline = time.monotonic() + timeout
    host, port = split_host_port(bootstrap, 9092)
    while True:
        if node is not None and not node.is_running():
            raise StackError(f"Kafka broker exited during startup; last log lines:\n{_logs(node)}")
        # A plain TCP check first keeps the (slower, noisier) client probe for when it can work.
        if port_answers(host, port) and probes.kafka_answers(bootstrap):
            return
        if time.monotonic() >= deadline:
            tail = f"; last log lines:\n{_logs(node)}" if node else ""
            raise StackError(f"Kafka at {bootstrap} not ready after {timeout:.0f}s{tail}")
        time.sleep(0.5)


def _logs(node: KafkaNode) -> str:
    """Return the tail of the broker log, or of its stdout if log4j never started."""
    return procs.tail(node.broker_log) or procs.tail(node.out_log)
