"""Transport settings reach the clients in the shape each library takes."""

from __future__ import annotations

import ssl

from faststream.security import SASLScram512

from vanda.runtime.transport import TransportSettings, faststream_security, kafka_options, postgres_ssl


def test_plaintext_by_default_for_a_local_stack():
    s = TransportSettings()
    assert kafka_options(s) == {"security_protocol": "PLAINTEXT"}
    assert faststream_security(s) is None and postgres_ssl(s) is False


def test_sasl_scram_over_tls_is_passed_to_aiokafka_and_faststream():
    s = TransportSettings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="intake",
                          kafka_sasl_password="pw", kafka_sasl_mechanism="SCRAM-SHA-512")
    options = kafka_options(s)
    assert options["sasl_mechanism"] == "SCRAM-SHA-512" and options["sasl_plain_password"] == "pw"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert isinstance(faststream_security(s), SASLScram512)


def test_postgres_verify_full_checks_the_certificate():
    context = postgres_ssl(TransportSettings(database_ssl="verify-full"))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert postgres_ssl(TransportSettings(database_ssl="require")).verify_mode == ssl.CERT_NONE


def test_a_value_asyncpg_refuses_is_not_mistaken_for_an_outage():
    import asyncpg

    from vanda.runtime.db import is_transient

    assert not is_transient(asyncpg.exceptions._base.DataError("invalid input for query argument $1"))
    assert is_transient(asyncpg.exceptions.ConnectionDoesNotExistError("gone"))
    assert is_transient(ConnectionRefusedError())
