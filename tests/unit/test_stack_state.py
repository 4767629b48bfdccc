"""State file round-trip and status of an empty home (no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

import vanda.stack as stack
from vanda.stack import state
from vanda.stack.ports import free_port, port_is_free, split_host_port


def test_state_round_trip(tmp_path: Path) -> None:
    data: state.State = {"kafka": {"pid": 12, "port": 9092, "external": False},
            "postgres": {"external": True, "database_url": "postgresql://x@h:1/db"}}
    state.save(tmp_path, data)
    assert state.load(tmp_path) == data
    assert [p.name for p in tmp_path.iterdir()] == ["stack.json"]  # no temp file left behind


def test_missing_or_corrupt_state_is_empty(tmp_path: Path) -> None:
    assert state.load(tmp_path) == {}
    (tmp_path / "stack.json").write_text("{not json")
    assert state.load(tmp_path) == {}
    (tmp_path / "stack.json").write_text('["a list"]')
    assert state.load(tmp_path) == {}


def test_lock_is_reusable(tmp_path: Path) -> None:
    for _ in range(2):
        with state.locked(tmp_path / "home"):
            pass


def test_status_of_empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = stack.status(tmp_path)
    assert set(result) == {"kafka", "postgres"}
    for comp in result.values():
        assert comp["running"] is False and comp["pid"] is None and comp["external"] is False


def test_status_and_stop_of_external_component(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:p@127.0.0.1:{port}/db")
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    pg = stack.status(tmp_path)["postgres"]
    assert pg == {"running": False, "pid": None, "address": f"127.0.0.1:{port}",
                  "url": f"postgresql://u:p@127.0.0.1:{port}/db", "external": True, "data_dir": None}
    state.save(tmp_path, {"postgres": {"external": True, "database_url": "postgresql://u@h:1/d"}})
    with pytest.raises(stack.StackError, match="external"):
        stack.stop_component(tmp_path, "postgres")


def test_unknown_component_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        stack.start_component(tmp_path, "redis")  # type: ignore[arg-type]


def test_ports() -> None:
    port = free_port()
    assert 0 < port < 65536 and port_is_free(port)
    assert split_host_port("kafka:9093,other:1", 9092) == ("kafka", 9093)
    assert split_host_port("kafka", 9092) == ("kafka", 9092)
