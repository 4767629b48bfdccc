"""Sanctions use cases: apply the card policy to an incident; describe a subject."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from schemas.envelope import CloudEvent
from schemas.events import envelope
from schemas.incidents import IncidentReported
from schemas.topics import SANCTIONS
from services.sanctions import adapters
from services.sanctions.config import SOURCE
from services.sanctions.domain import Policy, decide
from vanda.runtime.outbox import Outgoing

CARD_LEVELS = {
    ("uk.nhs.vanda.sanction.yellow_card_issued.v1", 1): "yellow_1",
    ("uk.nhs.vanda.sanction.yellow_card_issued.v1", 2): "yellow_2",
    ("uk.nhs.vanda.sanction.red_card_proposed.v1", None): "red_proposed",
}
EMERGENCY_CARE = "Emergency care is never withheld: no card restricts emergency or life-threatening care."


async def on_incident(conn: asyncpg.Connection, event: CloudEvent[Any], policy: Policy,
                      now: datetime) -> list[Outgoing]:
    """Decide on one incident inside the consumer's transaction; return events to publish."""
    incident = event.data
    if not isinstance(incident, IncidentReported) or incident.subject_id is None:
        return []  # unidentified perpetrators cannot be carded; reporting still counts them
    await adapters.lock_subject(conn, incident.subject_id)
    outcome = decide(await adapters.load_history(conn, incident.subject_id), incident, policy, now)
    await adapters.record(conn, incident, outcome.qualifying, outcome.decisions)
    return [
        Outgoing(SANCTIONS, d.subject_id,
                 envelope(d, source=SOURCE, subject=d.subject_id, event_id=str(d.decision_id), time=now))
        for d in outcome.decisions
    ]


async def describe_subject(pool: asyncpg.Pool, subject_id: str) -> dict[str, Any] | None:
    """Card level, active ban and full history of one pseudonymous subject."""
    view = await adapters.subject_view(pool, subject_id)
    if view is None:
        return None
    decisions = [d["payload"] | {"type": d["event_type"], "status": d["status"]} for d in view["decisions"]]
    return {
        "subject_id": subject_id,
        "card_level": _card_level(decisions),
        "active_ban": None,  # bans take effect only on approval by an authorised reviewer
        "emergency_care": EMERGENCY_CARE,
        "incidents": view["incidents"],
        "history": decisions,
    }


def _card_level(decisions: list[dict[str, Any]]) -> str:
    level = "none"
    for d in decisions:
        level = CARD_LEVELS.get((d["type"], d.get("level")), level)
    return level
