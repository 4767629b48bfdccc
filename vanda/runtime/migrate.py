"""Apply each service's SQL migrations with yoyo; each schema keeps its own history.

A service owns one PostgreSQL schema. yoyo's bookkeeping tables live inside that schema
(through search_path), so services migrate independently and never share history.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations

from vanda.runtime.transport import TransportSettings, libpq_url

SERVICES_DIR = Path(__file__).resolve().parents[2] / "services"
SERVICES = ("intake", "sanctions", "reporting")


def _yoyo_uri(database_url: str, schema: str) -> str:
    # yoyo picks its driver from the scheme; psycopg 3 is the maintained one.
    _, rest = database_url.split("://", 1)
    separator = "&" if "?" in rest else "?"
    return f"postgresql+psycopg://{rest}{separator}options=-csearch_path%3D{schema}"


def apply(database_url: str, service: str) -> int:
    """Apply a service's pending migrations; return how many ran."""
    database_url = libpq_url(database_url, TransportSettings())
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {service}")
    backend = get_backend(_yoyo_uri(database_url, service))
    migrations = read_migrations(str(SERVICES_DIR / service / "migrations"))
    with backend.lock():
        pending = backend.to_apply(migrations)
        backend.apply_migrations(pending)
    return len(pending)


def apply_all(database_url: str) -> dict[str, int]:
    """Apply every service's migrations; return how many ran for each."""
    return {service: apply(database_url, service) for service in SERVICES}
