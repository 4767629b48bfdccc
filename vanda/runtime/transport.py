"""Transport security for production: Kafka SASL/SCRAM and TLS, PostgreSQL TLS.

The same settings reach every client a service opens (FastStream's broker, the outbox
producer, the topic admin, the asyncpg pool) and every client the command line opens
(dead-letter replay, rebuild, migrations), so one misconfiguration cannot leave a side
channel in plain text.
"""

from __future__ import annotations

import ssl
from typing import Any, Literal
from urllib.parse import urlencode

from faststream.security import BaseSecurity, SASLScram256, SASLScram512
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TransportSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: str | None = Field(None, description="CA bundle that signed the brokers' certificates.")
    database_ssl: Literal["disable", "require", "verify-full"] = Field(
        "disable", description="TLS to PostgreSQL; verify-full checks the certificate and host name.")
    database_ssl_rootcert: str | None = None


def _kafka_tls(s: TransportSettings) -> ssl.SSLContext | None:
    if "SSL" not in s.kafka_security_protocol:
        return None
    return ssl.create_default_context(cafile=s.kafka_ssl_cafile)


def kafka_options(s: TransportSettings) -> dict[str, Any]:
    """Keyword arguments for aiokafka producers, consumers and admin clients."""
    options: dict[str, Any] = {"security_protocol": s.kafka_security_protocol}
    if context := _kafka_tls(s):
        options["ssl_context"] = context
    if s.kafka_security_protocol.startswith("SASL"):
        options |= {"sasl_mechanism": s.kafka_sasl_mechanism, "sasl_plain_username": s.kafka_sasl_username,
                    "sasl_plain_password": s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else None}
    return options


def kafka_client_options() -> dict[str, Any]:
    """`kafka_options` from the environment, for a command-line tool's own clients."""
    return kafka_options(TransportSettings())


def faststream_security(s: TransportSettings) -> BaseSecurity | None:
    """The same settings in the form FastStream's broker takes."""
    context = _kafka_tls(s)
    if s.kafka_security_protocol.startswith("SASL"):
        scram = SASLScram256 if s.kafka_sasl_mechanism == "SCRAM-SHA-256" else SASLScram512
        password = s.kafka_sasl_password.get_secret_value() if s.kafka_sasl_password else ""
        return scram(s.kafka_sasl_username or "", password, ssl_context=context, use_ssl=context is not None)
    return BaseSecurity(ssl_context=context) if context else None


def postgres_ssl(s: TransportSettings) -> ssl.SSLContext | bool:
    """The `ssl` argument for asyncpg."""
    if s.database_ssl == "disable":
        return False
    context = ssl.create_default_context(cafile=s.database_ssl_rootcert)
    if s.database_ssl == "require":
        # Encrypted, but the certificate is not checked: only for networks you already trust.
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def libpq_url(database_url: str, s: TransportSettings) -> str:
    """The URL with `sslmode` (and `sslrootcert`) for libpq clients (migrations), unless it
    already says them: asyncpg takes an SSL context, libpq takes these parameters."""
    if s.database_ssl == "disable" or "sslmode=" in database_url:
        return database_url
    params = {"sslmode": s.database_ssl} | ({"sslrootcert": s.database_ssl_rootcert} if s.database_ssl_rootcert else {})
    separator = "&" if "?" in database_url else "?"
    return database_url + separator + urlencode(params)
