"""What each service has applied, read from PostgreSQL, and the end-state exactness check."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from schemas.topics import INCIDENTS

QUERIES = {
    "intake": "SELECT count(*) FROM intake.incidents",
    "sanctions": f"SELECT count(*) FROM sanctions.inbox WHERE topic = '{INCIDENTS}'",
    "reporting": "SELECT count(*) FROM reporting.incidents",
}


@dataclass(frozen=True)
class Applied:
    """Incidents stored by intake, consumed by sanctions, projected by reporting."""

    intake: int
    sanctions: int
    reporting: int

    def __sub__(self, other: Applied) -> Applied:
        return Applied(self.intake - other.intake, self.sanctions - other.sanctions, self.reporting - other.reporting)

    @property
    def downstream(self) -> int:
        """Incidents both consumers have applied."""
        return min(self.sanctions, self.reporting)


async def applied(pool: asyncpg.Pool) -> Applied:
    async with pool.acquire() as conn:
        return Applied(**{name: await conn.fetchval(q) for name, q in QUERIES.items()})


async def by_source(pool: asyncpg.Pool, sources: list[str]) -> dict[str, int]:
    rows = await pool.fetch("SELECT source_system, count(*) AS n FROM intake.incidents"
                            " WHERE source_system = ANY($1::text[]) GROUP BY source_system", sources)
    return {s: 0 for s in sources} | {r["source_system"]: r["n"] for r in rows}


@dataclass(frozen=True)
class Check:
    name: str
    expected: Any
    actual: Any

    @property
    def passed(self) -> bool:
        return self.expected == self.actual


def checks(before: Applied, after: Applied, sent: dict[str, int], stored: dict[str, int], rejected: int,
           extra: dict[str, tuple[Any, Any]] | None = None) -> list[Check]:
    """Every accepted incident applied exactly once everywhere, and none of the bench's own refused.

    `sent` and `stored` are per source system (what the bench submitted, what intake holds);
    the inbox and fact tables are keyed by event and incident id, so equal counts mean once each.
    """
    new = after - before
    total = sum(sent.values())
    out = [Check(f"intake stored every {source} incident", n, stored.get(source)) for source, n in sent.items()]
    out += [Check("intake refused none of the bench's valid reports", 0, rejected),
            Check("intake: new incidents = incidents submitted", total, new.intake),
            Check("sanctions: incidents applied once = intake's", new.intake, new.sanctions),
            Check("reporting: incidents projected once = intake's", new.intake, new.reporting)]
    out += [Check(name, expected, actual) for name, (expected, actual) in (extra or {}).items()]
    return out


def summary(results: list[Check]) -> dict[str, Any]:
    return {"passed": all(c.passed for c in results),
            "checks": [asdict(c) | {"passed": c.passed} for c in results]}
