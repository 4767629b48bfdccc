"""API keys for upstream systems: shown once, stored as a digest, revocable, scoped to sources.

A key reads `vk_<key id>_<secret>`. The id finds the row; the secret is compared with
its stored SHA-256 digest in constant time. `*` in a key's sources allows any source
(meant for a development stack only).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg

ANY_SOURCE = "*"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    sources: frozenset[str]

    def allows(self, source_system: str) -> bool:
        return ANY_SOURCE in self.sources or source_system in self.sources


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def parse(full: str) -> tuple[str, str] | None:
    """(key id, secret) from a presented key, or None if it is not shaped like one."""
    prefix, _, rest = full.partition("_")
    key_id, _, secret = rest.partition("_")
    return (key_id, secret) if prefix == "vk" and key_id and len(secret) >= 20 else None


async def create(conn: asyncpg.Connection, name: str, sources: list[str]) -> str:
    """Store a new key and return it; this is the only time the secret is visible."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    await conn.execute("INSERT INTO intake.api_keys (key_id, name, secret_sha256, sources) VALUES ($1, $2, $3, $4)",
                       key_id, name, _digest(secret), sorted(set(sources)))
    return f"vk_{key_id}_{secret}"


async def listing(conn: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT key_id, name, sources, created_at, revoked_at FROM intake.api_keys"
                            " ORDER BY created_at")
    return [dict(r) for r in rows]


async def revoke(conn: asyncpg.Connection, key_id: str) -> bool:
    """Revoke a key; False if no such live key."""
    status = await conn.execute("UPDATE intake.api_keys SET revoked_at = now()"
                                " WHERE key_id = $1 AND revoked_at IS NULL", key_id)
    return status.endswith(" 1")


async def authenticate(conn: asyncpg.Connection | asyncpg.Pool, full: str) -> ApiKey | None:
    """The live key a presented value belongs to, or None."""
    parsed = parse(full)
    if parsed is None:
        return None
    row = await conn.fetchrow("SELECT key_id, name, secret_sha256, sources FROM intake.api_keys"
                              " WHERE key_id = $1 AND revoked_at IS NULL", parsed[0])
    if row is None or not hmac.compare_digest(bytes(row["secret_sha256"]), _digest(parsed[1])):
        return None
    return ApiKey(row["key_id"], row["name"], frozenset(row["sources"]))
