"""Kafka and PostgreSQL in Docker containers via testcontainers, for `vanda stack up --docker`."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import docker
import psutil
from docker.errors import NotFound
from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.docker_client import DockerClient

try:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.postgres import PostgresContainer
except ImportError:  # testcontainers before 4.15 kept these modules at the top level
    from testcontainers.kafka import KafkaContainer  # type: ignore[no-redef]
    from testcontainers.postgres import PostgresContainer  # type: ignore[no-redef]

from . import ADDRESS_KEYS, COMPONENTS, StackInfo
from . import state as state_file
from .procs import StackError

KAFKA_IMAGE = "apache/kafka:4.1.1"
POSTGRES_IMAGE = "postgres:18"
DB_NAME = DB_USER = DB_PASSWORD = "vanda"
HOME_LABEL = "vanda.home"  # lets `docker ps --filter label=vanda.home=...` find a lost stack
SECTION = state_file.DOCKER_SECTION
NO_DOCKER_HINT = "run without --docker to start Kafka and PostgreSQL locally"
# Same broker settings as the local node (kafka.render_server_properties), as KAFKA_* variables.
KAFKA_ENV = {
    "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
    "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
    "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
    "KAFKA_NUM_PARTITIONS": "6",
    "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",  # services create their own topics
}


class ApacheKafkaContainer(KafkaContainer):
    """testcontainers' KafkaContainer, started through the ``apache/kafka`` image's own scripts."""

    def _verify_min_kraft_version(self) -> None:
        """Accept any tag: apache/kafka tags are Kafka versions, and 4.x only runs KRaft."""
        # The base check compares the tag with Confluent Platform 7.0.0 and so rejects 4.1.1.

    def configure(self) -> None:
        """Set the KRaft combined-node variables, then the settings the local broker uses."""
        super().configure()
        self.env.pop("KAFKA_BROKER_ID", None)  # ZooKeeper-era name; KRaft identifies by node.id
        self.with_envs(**KAFKA_ENV)

    def tc_start(self) -> None:
        """Write the script the container waits for: advertise the mapped port, then start Kafka."""
        # The base script drives Confluent's /etc/confluent/docker/*; apache/kafka has /etc/kafka/docker/run.
        host, port = self.get_container_host_ip(), self.get_exposed_port(self.port)
        listeners = f"{self.listener_name}://{host}:{port},BROKER://localhost:9092"
        script = f"#!/bin/sh\nexport KAFKA_ADVERTISED_LISTENERS={listeners}\nexec /etc/kafka/docker/run\n"
        self.create_file(script.encode(), self.TC_START_SCRIPT)


def plain_dsn(url: str) -> str:
    """Drop a SQLAlchemy driver suffix: ``postgresql+psycopg2://`` becomes ``postgresql://``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+", 1)[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return f"postgresql://{rest}"


def docker_client(hint: str = NO_DOCKER_HINT) -> docker.DockerClient:
    """Return a client of the engine testcontainers would use, or raise StackError saying why not."""
    try:
        # testcontainers' wrapper resolves the host exactly as the containers will (DOCKER_HOST,
        # ~/.testcontainers.properties, docker context); building it already asks for the API version.
        client = DockerClient().client
        client.ping()
    except Exception as exc:  # docker-py wraps most failures, but requests/OS errors can escape
        raise StackError(f"Docker is not reachable ({exc}); {hint}") from exc
    return client


def _container_status(client: docker.DockerClient | None, container_id: str | None) -> str | None:
    """Return the engine's status of ``container_id`` ("running", "exited", ...) or None if unknown."""
    if client is None or not container_id:
        return None
    try:
        return str(client.containers.get(container_id).status)
    except NotFound:
        return None


def _remove(client: docker.DockerClient, ids: list[str]) -> None:
    """Force-remove each container and its anonymous volumes; one already gone is fine."""
    for container_id in ids:
        with contextlib.suppress(NotFound):
            client.containers.get(container_id).remove(force=True, v=True)


def recorded_ids(records: state_file.State) -> list[str]:
    """Return the container ids recorded in the docker section, kafka first."""
    section = records.get(SECTION) or {}
    return [cid for name in COMPONENTS if (cid := (section.get(name) or {}).get("container_id"))]


def _postgres(home: Path, **kwargs: Any) -> DockerContainer:
    """Return (unstarted) the PostgreSQL container, database ``vanda``."""
    pg = PostgresContainer(POSTGRES_IMAGE, username=DB_USER, password=DB_PASSWORD, dbname=DB_NAME, **kwargs)
    return pg.with_kwargs(labels={HOME_LABEL: str(home)})


def _kafka(home: Path, **kwargs: Any) -> DockerContainer:
    """Return (unstarted) the single-node KRaft Kafka container."""
    return ApacheKafkaContainer(KAFKA_IMAGE, **kwargs).with_kraft().with_kwargs(labels={HOME_LABEL: str(home)})


def _start_all(home: Path, timeout: float) -> dict[str, dict[str, Any]]:
    """Start both containers and return their records; on any failure remove what was started."""
    started: list[DockerContainer] = []
    previous = testcontainers_config.ryuk_disabled
    # Ryuk would delete the containers as soon as this CLI process exits; `down` removes them instead.
    testcontainers_config.ryuk_disabled = True
    try:
        pg = _postgres(home)
        started.append(pg)
        pg.start()
        kafka = _kafka(home)
        started.append(kafka)
        kafka.start(timeout=int(timeout))
        return {
            "kafka": {"container_id": kafka.get_container_id(), "image": KAFKA_IMAGE,
                      "bootstrap_servers": kafka.get_bootstrap_server()},
            "postgres": {"container_id": pg.get_container_id(), "image": POSTGRES_IMAGE,
                         "database_url": plain_dsn(pg.get_connection_url())},
        }
    except BaseException as exc:  # Ctrl-C too: without Ryuk nothing else would clean up
        for container in started:
            with contextlib.suppress(Exception):
                container.stop()
        if isinstance(exc, Exception):
            raise StackError(f"starting Kafka and PostgreSQL in Docker failed: {exc}") from exc
        raise
    finally:
        testcontainers_config.ryuk_disabled = previous


def _refuse_local(records: state_file.State) -> None:
    """Raise if a local process recorded for this home may still run (it would hold the home)."""
    for name in COMPONENTS:
        rec = records.get(name) or {}
        pid = rec.get("pid")
        if not rec.get("external") and pid and psutil.pid_exists(pid):
            raise StackError(f"the local {name} of this home still runs (pid {pid}); "
                             "stop it with `vanda stack down` first")


def _info(section: dict[str, Any]) -> StackInfo:
    """Return the StackInfo of a docker section."""
    return StackInfo(section["kafka"]["bootstrap_servers"], section["postgres"]["database_url"])


def up_containers(home: Path, *, timeout: float = 120) -> StackInfo:
    """Start (or reuse) Kafka and PostgreSQL containers for ``home`` and record them."""
    home = Path(home).resolve()
    client = docker_client()  # before the lock: a home without Docker gets no files at all
    with state_file.locked(home):
        records = state_file.load(home)
        _refuse_local(records)
        section = records.get(SECTION) or {}
        if section and all(_container_status(client, (section.get(n) or {}).get("container_id")) == "running"
                           for n in COMPONENTS):
            return _info(section)
        if section:  # a half-dead pair is replaced whole, and forgotten before anything new starts
            _remove(client, recorded_ids(records))
            del records[SECTION]
            state_file.save(home, records)
        records[SECTION] = _start_all(home, timeout)
        state_file.save(home, records)
        return _info(records[SECTION])


def down_containers(home: Path) -> list[str]:
    """Stop and remove exactly the containers recorded for ``home``; return their ids."""
    home = Path(home).resolve()
    with state_file.locked(home):
        records = state_file.load(home)
        ids = recorded_ids(records)
        if ids:
            hint = f"the containers recorded in {state_file.state_path(home)} were left as they are"
            _remove(docker_client(hint), ids)
        if records.pop(SECTION, None) is not None:
            state_file.save(home, records)
        return ids


def status_containers(home: Path) -> dict[str, dict[str, Any]]:
    """Return per component: running, address, url and container id (as `status` does locally)."""
    section = state_file.load(Path(home).resolve()).get(SECTION) or {}
    try:
        client: docker.DockerClient | None = docker_client()
    except StackError:  # status must answer even when the engine is down: nothing runs then
        client = None
    out: dict[str, dict[str, Any]] = {}
    for name in COMPONENTS:
        rec = section.get(name) or {}
        url = rec.get(ADDRESS_KEYS[name])
        out[name] = {"running": _container_status(client, rec.get("container_id")) == "running", "pid": None,
                     "address": url.split("@")[-1].split("/")[0] if url else None, "url": url,
                     "external": False, "data_dir": None, "docker": True,
                     "container_id": rec.get("container_id"), "image": rec.get("image")}
    return out
