"""Against servers of one's own, the command line plants nothing a development stack would."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

import vanda.stack as stack
from vanda.cli import app


def test_demo_refuses_to_stream_synthetic_incidents_into_a_database_of_one_s_own(tmp_path: Path, monkeypatch) -> None:
    started: list[Path] = []
    monkeypatch.setattr(stack, "up", lambda home, **kw: started.append(home))  # must never be reached
    result = CliRunner().invoke(app, ["demo", "--home", str(tmp_path / "h")],
                                env={"DATABASE_URL": "postgresql://vanda@db.example:5432/vanda"})
    assert result.exit_code == 2 and "synthetic incidents" in result.output
    assert started == []


def test_the_readiness_probes_connect_as_the_transport_settings_say(monkeypatch) -> None:
    import aiokafka.admin
    import asyncpg

    from vanda.stack import probes

    seen: dict[str, dict] = {}

    class Admin:
        def __init__(self, **kwargs) -> None:
            seen["kafka"] = kwargs

        async def start(self) -> None:
            raise ConnectionError("not here")

        async def close(self) -> None:
            pass

    async def connect(url, **kwargs):
        seen["postgres"] = kwargs
        raise ConnectionError("not here")

    monkeypatch.setattr(aiokafka.admin, "AIOKafkaAdminClient", Admin)
    monkeypatch.setattr(asyncpg, "connect", connect)
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "vanda")
    monkeypatch.setenv("DATABASE_SSL", "verify-full")
    assert probes.kafka_answers("broker.example:9093", timeout=1) is False
    assert probes.run_sync(lambda: probes._pg_select_one("postgresql://db.example/vanda", 1)) is False
    assert seen["kafka"]["security_protocol"] == "SASL_SSL" and seen["kafka"]["sasl_plain_username"] == "vanda"
    assert seen["postgres"]["ssl"].verify_mode.name == "CERT_REQUIRED"
