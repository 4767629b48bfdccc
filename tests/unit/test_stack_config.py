"""Pure rendering/config bits of vanda.stack (no processes)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from vanda.stack import jars
from vanda.stack.kafka import new_cluster_id, render_log4j2, render_server_properties
from vanda.stack.postgres import database_url
from vanda.stack.procs import StackError


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_server_properties_single_node_kraft(tmp_path: Path) -> None:
    props = _props(render_server_properties(port=19092, controller_port=19093, log_dir=tmp_path / "kraft"))
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["advertised.listeners"].startswith("PLAINTEXT://127.0.0.1:19092")
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["log.dirs"] == str(tmp_path / "kraft")
    assert props["auto.create.topics.enable"] == "false"
    assert props["num.partitions"] == "6"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr", "share.coordinator.state.topic.replication.factor",
                "share.coordinator.state.topic.min.isr"):
        assert props[key] == "1", key


def test_log4j2_writes_info_to_file_only(tmp_path: Path) -> None:
    text = render_log4j2(tmp_path / "broker.log")
    assert f"appender.file.fileName = {tmp_path / 'broker.log'}" in text
    assert "rootLogger.level = INFO" in text
    assert "Console" not in text


def test_cluster_id_looks_like_kafka_uuid() -> None:
    ids = {new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for value in ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", value) and not value.startswith("-")


def test_kafka_version_comes_from_pom(tmp_path: Path) -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", jars.kafka_version())
    pom = tmp_path / "pom.xml"
    pom.write_text('<project xmlns="http://maven.apache.org/POM/4.0.0"><properties>'
                   "<kafka.version> 9.9.9 </kafka.version></properties></project>")
    assert jars.kafka_version(pom) == "9.9.9"
    pom.write_text("<project><properties/></project>")
    with pytest.raises(StackError):
        jars.kafka_version(pom)


def test_fetch_jars_uses_complete_cache_without_maven(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", "")  # any attempt to run mvn would fail loudly
    root = tmp_path / "vanda" / f"kafka-{jars.kafka_version()}"
    (root / "libs").mkdir(parents=True)
    (root / ".complete").write_text(hashlib.sha256(jars.POM_PATH.read_bytes()).hexdigest())
    assert jars.fetch_jars() == root / "libs"


def test_fetch_jars_redoes_incomplete_cache_and_names_missing_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("PATH", "")
    (tmp_path / "vanda" / f"kafka-{jars.kafka_version()}" / "libs").mkdir(parents=True)  # no marker
    with pytest.raises(StackError, match="mvn.*apt-get install -y openjdk-17-jre-headless maven"):
        jars.fetch_jars()


def test_java_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(StackError, match="`java` is not installed"):
        jars.java_bin()


def test_database_url() -> None:
    assert database_url(5433) == "postgresql://postgres@127.0.0.1:5433/vanda"


def test_ports_survive_a_lost_state_file(tmp_path: Path) -> None:
    from vanda.stack.kafka import KafkaNode

    node = KafkaNode(tmp_path, tmp_path / "logs", 0, 0)
    assert node.configured_ports() is None
    node.config_path.write_text(render_server_properties(port=19092, controller_port=19093, log_dir=tmp_path))
    assert node.configured_ports() == (19092, 19093)
