"""The command line's own clients (dead-letter replay, rebuild, migrations, pools) take the
same transport security as the services: a replay against a SASL_SSL cluster must connect."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer

from vanda.runtime.transport import TransportSettings, kafka_client_options, libpq_url


def test_the_tools_kafka_clients_take_the_environment_s_security(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "vanda-ops")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "not-a-real-secret")
    options = kafka_client_options()
    assert options["security_protocol"] == "SASL_SSL" and options["sasl_plain_username"] == "vanda-ops"
    assert options["ssl_context"] is not None


async def test_the_rebuild_opens_its_consumers_with_it(monkeypatch):
    from services.reporting import rebuild

    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "vanda-ops")
    consumer = rebuild._consumer("127.0.0.1:1")
    assert isinstance(consumer, AIOKafkaConsumer) and consumer._client._security_protocol == "SASL_PLAINTEXT"


@pytest.mark.parametrize(("url", "ssl", "rootcert", "expected"), [
    ("postgresql://u@db/vanda", "disable", None, "postgresql://u@db/vanda"),
    ("postgresql://u@db/vanda", "require", None, "postgresql://u@db/vanda?sslmode=require"),
    ("postgresql://u@db/vanda?x=1", "verify-full", "/ca.pem",
     "postgresql://u@db/vanda?x=1&sslmode=verify-full&sslrootcert=%2Fca.pem"),
    ("postgresql://u@db/vanda?sslmode=verify-ca", "verify-full", None, "postgresql://u@db/vanda?sslmode=verify-ca"),
])
def test_migrations_connect_with_the_tls_the_services_use(url, ssl, rootcert, expected):
    assert libpq_url(url, TransportSettings(database_ssl=ssl, database_ssl_rootcert=rootcert)) == expected
