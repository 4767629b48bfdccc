"""The bench's input: seeded synthetic reports, how they are split, and their pseudonymised events.

The limit and the naive peer consume IncidentReported events shaped exactly as intake
publishes them (no NHS number, no narrative), built here with intake's own pure rules and
a bench-only pseudonym key, so every phase works on the same incidents.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.envelope import new_id
from schemas.events import encode, envelope
from schemas.incidents import IncidentReport
from vanda import synthetic

KAFKA_SOURCE = "bench-kafka"
HTTP_SOURCE = "bench-http"
SINGLE_SOURCE = "bench-http-single"
LATENCY_SOURCE = "bench-latency"
BENCH_PSEUDONYM_KEY = b"bench-only pseudonym key: never a trust's"
INTAKE_SOURCE = "/vanda/intake"


@dataclass(frozen=True)
class Split:
    """How many of the pipeline's incidents go through each intake entry point."""

    kafka: int
    http: int

    @property
    def total(self) -> int:
        return self.kafka + self.http


def split(total: int, kafka_share: float = 0.5) -> Split:
    """Divide `total` between the Kafka ingestion topic and the HTTP batch endpoint."""
    if total < 0 or not 0 <= kafka_share <= 1:
        raise ValueError("total must be >= 0 and kafka_share within [0, 1]")
    kafka = round(total * kafka_share)
    return Split(kafka=kafka, http=total - kafka)


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive slices of at most `size` items (the batch endpoint takes at most 5000 lines)."""
    if size < 1:
        raise ValueError("size must be >= 1")
    for start in range(0, len(items), size):
        yield items[start:start + size]


def reports(count: int, *, seed: int, source_system: str, end: datetime | None = None) -> list[dict[str, Any]]:
    """`count` realistic reports (repeat perpetrators, every category) from one upstream system."""
    return list(synthetic.incidents(count, seed=seed, source_system=source_system, end=end))


def concentration(items: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """How repeat perpetrators are spread: subjects the card policy can act on, and the busiest one's share."""
    counted: dict[str, int] = {}
    for r in items:
        p = r["perpetrator"]
        if p.get("nhs_number") and p["kind"] in ("patient", "relative", "visitor"):
            counted[p["nhs_number"]] = counted.get(p["nhs_number"], 0) + 1
    total = sum(counted.values())
    top = sorted(counted.values(), reverse=True)[:3]
    return {"carded_incidents": total, "subjects": len(counted),
            "busiest_subjects_share": [round(n / total, 3) for n in top] if total else []}


def with_source(items: Iterable[dict[str, Any]], source_system: str) -> list[dict[str, Any]]:
    """The same reports as submitted by another upstream system (so source_refs never collide)."""
    return [r | {"source_system": source_system} for r in items]


def submission_key(report: dict[str, Any]) -> bytes:
    """Key of a record on intake's ingestion topic."""
    return f"{report['source_system']}:{report['source_ref']}".encode()


def ndjson(items: Iterable[dict[str, Any]]) -> bytes:
    """An NDJSON body: one report per line."""
    return b"".join(orjson.dumps(r) + b"\n" for r in items)


def pseudonym(identifier: str) -> str:
    return hmac.new(BENCH_PSEUDONYM_KEY, identifier.encode(), hashlib.sha256).hexdigest()


def reported_event(report: dict[str, Any], now: datetime | None = None) -> tuple[bytes, bytes]:
    """(key, value) of the IncidentReported CloudEvent intake would publish for `report`."""
    from services.intake.domain import accept, normalised_identifier

    valid = IncidentReport.model_validate(report)
    identifier = normalised_identifier(valid.perpetrator, valid.organisation)
    subject = pseudonym(identifier) if identifier else None
    accepted = accept(valid, incident_id=new_id(), subject_id=subject, now=now or datetime.now(UTC))
    key = subject or str(accepted.event.incident_id)
    value = encode(envelope(accepted.event, source=INTAKE_SOURCE, subject=key))
    # orjson's buffer is several times the JSON's length; an exact copy keeps 200,000 events small.
    return key.encode(), bytes(memoryview(value))
