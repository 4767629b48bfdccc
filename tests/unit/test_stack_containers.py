"""Bookkeeping of the `--docker` stack: no Docker engine is needed (or used) by these tests."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from docker.errors import NotFound
from testcontainers.core.config import testcontainers_config
from typer.testing import CliRunner

import vanda.stack as stack
from vanda.cli import app
from vanda.stack import containers, state

KAFKA_ID, PG_ID = "k" * 64, "p" * 64
SECTION = {"kafka": {"container_id": KAFKA_ID, "image": containers.KAFKA_IMAGE,
                     "bootstrap_servers": "localhost:32801"},
           "postgres": {"container_id": PG_ID, "image": containers.POSTGRES_IMAGE,
                        "database_url": "postgresql://vanda:vanda@localhost:32802/vanda"}}


class FakeContainer:
    """Stands in for docker.models.containers.Container."""

    def __init__(self, client: FakeClient, container_id: str, status: str) -> None:
        self.client, self.id, self.status = client, container_id, status

    def remove(self, **kwargs: Any) -> None:
        self.client.removed.append((self.id, kwargs))


class FakeClient:
    """Stands in for docker.DockerClient: knows some containers, logs removals."""

    def __init__(self, statuses: dict[str, str]) -> None:
        self.statuses = statuses
        self.removed: list[tuple[str, dict[str, Any]]] = []
        self.containers = self

    def get(self, container_id: str) -> FakeContainer:
        if container_id not in self.statuses:
            raise NotFound(f"no such container: {container_id}")
        return FakeContainer(self, container_id, self.statuses[container_id])


@pytest.fixture
def no_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the Docker SDK (and testcontainers) at a unix socket nobody listens on."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'closed-docker.sock'}")
    monkeypatch.setattr(testcontainers_config, "tc_properties", {})  # a tc.host there would win
    monkeypatch.delenv("VANDA_DOCKER", raising=False)


def fake_docker(monkeypatch: pytest.MonkeyPatch, statuses: dict[str, str]) -> FakeClient:
    """Make containers.docker_client() return a fake client with ``statuses``."""
    client = FakeClient(statuses)
    monkeypatch.setattr(containers, "docker_client", lambda hint="": client)
    return client


def test_unreachable_docker_is_a_clear_error_and_records_nothing(tmp_path: Path, no_docker: None) -> None:
    home = tmp_path / "home"
    with pytest.raises(stack.StackError, match=r"^Docker is not reachable \(.+\); run without --docker to start"):
        stack.up(home, docker=True)
    assert not home.exists()  # no state file, not even the lock


@pytest.mark.parametrize("args,env", [(["--docker"], {}), ([], {"VANDA_DOCKER": "1"})])
def test_cli_flag_and_env_reach_the_docker_path(tmp_path: Path, no_docker: None, args: list[str],
                                                env: dict[str, str]) -> None:
    for command in (["stack", "up"], ["up"], ["demo"]):
        result = CliRunner().invoke(app, [*command, "--home", str(tmp_path / "h"), *args], env=env)
        # Said in a line, with where to look, not as a traceback.
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert "starting Kafka and PostgreSQL failed: Docker is not reachable" in result.output
        assert "Traceback" not in result.output and "vanda down --home" in result.output
    assert not (tmp_path / "h").exists()


@pytest.mark.parametrize("url,plain", [
    ("postgresql+psycopg2://test:te%2Bst@localhost:5432/vanda", "postgresql://test:te%2Bst@localhost:5432/vanda"),
    ("postgresql+psycopg://u:p@h:1/vanda", "postgresql://u:p@h:1/vanda"),
    ("postgresql://u:p@h:1/vanda", "postgresql://u:p@h:1/vanda"),
    ("postgres://u:p@h:1/vanda", "postgresql://u:p@h:1/vanda"),
])
def test_dsn_is_normalised(url: str, plain: str) -> None:
    assert containers.plain_dsn(url) == plain


def test_dsn_rejects_other_schemes() -> None:
    with pytest.raises(ValueError):
        containers.plain_dsn("mysql+pymysql://u:p@h:1/vanda")


def test_state_round_trip_with_docker_section(tmp_path: Path) -> None:
    data: state.State = {"kafka": {"pid": None, "port": 9092, "external": False}, "docker": SECTION}
    state.save(tmp_path, data)
    assert state.load(tmp_path) == data
    assert state.uses_docker(data) and not state.uses_docker({"kafka": {"pid": 1}})
    assert containers.recorded_ids(data) == [KAFKA_ID, PG_ID]


def test_down_removes_exactly_the_recorded_containers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = {"external": False, "pid": None, "port": 5432}
    state.save(tmp_path, {"postgres": local, "docker": SECTION})
    client = fake_docker(monkeypatch, {KAFKA_ID: "running", "other": "running"})  # postgres already gone
    stack.down(tmp_path)
    assert client.removed == [(KAFKA_ID, {"force": True, "v": True})]
    assert state.load(tmp_path) == {"postgres": local}  # docker section forgotten, the rest kept


def test_down_without_docker_keeps_the_record(tmp_path: Path, no_docker: None) -> None:
    state.save(tmp_path, {"docker": SECTION})
    with pytest.raises(stack.StackError, match="Docker is not reachable.*left as they are"):
        stack.down(tmp_path)
    assert state.load(tmp_path) == {"docker": SECTION}


def test_status_reports_the_containers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state.save(tmp_path, {"docker": SECTION})
    fake_docker(monkeypatch, {KAFKA_ID: "running", PG_ID: "exited"})
    result = stack.status(tmp_path)
    assert result["kafka"] == {"running": True, "pid": None, "address": "localhost:32801",
                               "url": "localhost:32801", "external": False, "data_dir": None,
                               "docker": True, "container_id": KAFKA_ID, "image": containers.KAFKA_IMAGE}
    assert result["postgres"]["running"] is False
    assert result["postgres"]["address"] == "localhost:32802"


def test_up_reuses_running_containers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state.save(tmp_path, {"docker": SECTION})
    client = fake_docker(monkeypatch, {KAFKA_ID: "running", PG_ID: "running"})
    monkeypatch.setattr(containers, "_start_all", lambda *a: pytest.fail("nothing should start"))
    info = stack.up(tmp_path, docker=True)
    assert info == stack.StackInfo("localhost:32801", "postgresql://vanda:vanda@localhost:32802/vanda")
    assert client.removed == []


def test_up_replaces_a_half_dead_pair(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state.save(tmp_path, {"docker": SECTION})
    client = fake_docker(monkeypatch, {KAFKA_ID: "running", PG_ID: "exited"})
    fresh = {"kafka": {**SECTION["kafka"], "container_id": "k2"},
             "postgres": {**SECTION["postgres"], "container_id": "p2"}}
    monkeypatch.setattr(containers, "_start_all", lambda home, timeout: fresh)
    stack.up(tmp_path, docker=True)
    assert [cid for cid, _ in client.removed] == [KAFKA_ID, PG_ID]
    assert state.load(tmp_path) == {"docker": fresh}


def test_failed_start_removes_what_started_and_records_nothing(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fake_docker(monkeypatch, {})
    stopped: list[str] = []

    class Box:
        def __init__(self, name: str, fails: bool) -> None:
            self.name, self.fails = name, fails

        def start(self, **kwargs: Any) -> None:
            assert testcontainers_config.ryuk_disabled  # the reaper must not take them at exit
            if self.fails:
                raise RuntimeError("image pull failed")

        def stop(self) -> None:
            stopped.append(self.name)

    monkeypatch.setattr(containers, "_postgres", lambda home: Box("postgres", False))
    monkeypatch.setattr(containers, "_kafka", lambda home: Box("kafka", True))
    before = testcontainers_config.ryuk_disabled
    with pytest.raises(stack.StackError, match="image pull failed"):
        stack.up(tmp_path, docker=True)
    assert stopped == ["postgres", "kafka"]
    assert testcontainers_config.ryuk_disabled == before
    assert state.load(tmp_path) == {}


def test_modes_do_not_mix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state.save(tmp_path, {"docker": SECTION})
    for call in (lambda: stack.up(tmp_path), lambda: stack.start_component(tmp_path, "kafka"),
                 lambda: stack.stop_component(tmp_path, "kafka")):
        with pytest.raises(stack.StackError, match="runs in Docker"):
            call()
    state.save(tmp_path, {"postgres": {"external": False, "pid": os.getpid(), "port": 1}})
    fake_docker(monkeypatch, {})
    with pytest.raises(stack.StackError, match="local postgres of this home still runs"):
        stack.up(tmp_path, docker=True)


def test_kafka_container_is_configured_for_the_apache_image(tmp_path: Path, no_docker: None,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # An explicit API version lets docker-py build its client without asking the (absent) engine.
    kafka = containers._kafka(tmp_path, docker_client_kw={"version": "1.44"})
    assert kafka.kraft_enabled and kafka.image == containers.KAFKA_IMAGE
    kafka.configure()
    env = kafka.env
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller" and "KAFKA_BROKER_ID" not in env
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@localhost:9094"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert kafka._kwargs == {"labels": {containers.HOME_LABEL: str(tmp_path)}}
    written: dict[str, bytes] = {}
    monkeypatch.setattr(kafka, "get_container_host_ip", lambda: "localhost")
    monkeypatch.setattr(kafka, "get_exposed_port", lambda port: 32801)
    monkeypatch.setattr(kafka, "create_file", lambda data, path: written.update({path: data}))
    kafka.tc_start()
    script = written[kafka.TC_START_SCRIPT].decode()
    assert "KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://localhost:32801,BROKER://localhost:9092" in script
    assert script.endswith("exec /etc/kafka/docker/run\n")
