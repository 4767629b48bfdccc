"""Body-worn camera footage: which incidents' footage is evidence, and which may be deleted.

Footage not used as evidence is deleted after a set period (30 days by default), counted
from the incident or from its report if later. vanda holds no footage; it tells whoever
manages it which incidents' footage a police referral or a sanction rests on, and which is
past its period with no such use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.reporting import FootageUse
from services.reporting.domain.facts import IncidentFact

# Sanction decisions that rest on an incident: the card it triggered, or evidence attached to one.
CARD_KINDS = ("yellow_card_1", "yellow_card_2", "red_card_proposed", "evidence_attached")
# Decisions after which a card rests on nothing: overturned, or declined by a reviewer.
CARD_UNDONE = ("rescinded", "red_card_rejected")


Use = FootageUse  # why footage is evidence: the contract's names


class Status(StrEnum):
    EVIDENCE = "evidence"  # keep, under the rules for evidence
    HELD = "held"  # no use yet, within the period: a referral or card may still need it
    DELETE_DUE = "delete_due"  # the period is over and nothing rests on it
    DELETED = "deleted"  # someone recorded that it was deleted


@dataclass(frozen=True, slots=True)
class Footage:
    """What vanda knows about one incident's footage, beyond the incident itself."""

    fact: IncidentFact
    referral_claimed: bool  # the incident met the police referral criteria
    card_stands: bool  # a card decision on it has not been rescinded or rejected
    deleted_at: datetime | None = None
    deletion_unplanned: bool = False  # deleted in error, lost, or by a camera system on its own


def uses(f: Footage) -> list[Use]:
    """Every use the footage is evidence for. A withdrawn incident has none: it was entered in
    error or duplicates another, whose own record carries the footage's use."""
    fact = f.fact
    if fact.withdrawn:
        return []
    police = fact.referred
    found = [Use.POLICE] if police else []
    if f.referral_claimed and not police:
        found.append(Use.REFERRAL_PENDING)
    if f.card_stands:
        found.append(Use.SANCTION)
    return found


def delete_from(fact: IncidentFact, retention: timedelta) -> datetime:
    """When footage with no use may be deleted: the period runs from the incident, when it was
    recorded, or from its report if that came later. The period is the time a referral or
    card has to claim the footage, and neither can before anyone knows of the incident: a
    report made 40 days late would otherwise be due for deletion the moment it arrived."""
    start = fact.occurred_at if fact.reported_at is None else max(fact.occurred_at, fact.reported_at)
    return start + retention


def status(f: Footage, now: datetime, retention: timedelta) -> Status:
    if f.deleted_at is not None:
        return Status.DELETED
    if uses(f):
        return Status.EVIDENCE
    return Status.DELETE_DUE if now >= delete_from(f.fact, retention) else Status.HELD


class Refused(ValueError):
    """Recording this deletion would go against the retention rules; the message says why."""


class BadTime(ValueError):
    """A deletion dated before the footage could exist."""


def check_deletion(f: Footage, at: datetime, retention: timedelta, unplanned: bool = False) -> None:
    """A planned deletion is recorded only once it is due: never while something rests on the
    footage, nor before its period ends, when a referral or card may still come to need it.
    An unplanned one (in error, lost, or by a camera system on its own) already happened: it
    is recorded whatever the status, and the audit says what the footage was."""
    if at < f.fact.occurred_at:
        raise BadTime("must not be before the incident the footage was recorded at")
    if unplanned or f.deleted_at is not None:
        return
    found = uses(f)
    if found:
        raise Refused(f"the footage is evidence ({', '.join(found)}): keep it under the rules for evidence,"
                      " or record a deletion that already happened with unplanned: true")
    if at < delete_from(f.fact, retention):
        raise Refused(f"the footage is held until {delete_from(f.fact, retention).isoformat()}:"
                      " a referral or card may still need it")
