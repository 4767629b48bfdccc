"""The sanctions domain: card policy as pure functions over a subject's state."""

from services.sanctions.domain.decide import (
    Agree,
    Approve,
    Conflict,
    DecideAppeal,
    IncidentGone,
    IncidentSeen,
    Input,
    LodgeAppeal,
    NotFound,
    Reject,
    SanctionsError,
    Stale,
    Tick,
    decide,
)
from services.sanctions.domain.model import (
    AppealState,
    Card,
    CardKind,
    CardStatus,
    IncidentRecord,
    Policy,
    SubjectState,
)

__all__ = [
    "Agree", "Approve", "AppealState", "Card", "CardKind", "CardStatus", "Conflict", "DecideAppeal", "IncidentGone",
    "IncidentRecord", "IncidentSeen", "Input", "LodgeAppeal", "NotFound", "Policy", "Reject", "SanctionsError",
    "Stale", "SubjectState", "Tick", "decide",
]
