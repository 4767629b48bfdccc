"""Sanctions' state and policy: plain immutable values, serialisable as JSON."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.incidents import AgeBand, Category, Harm, PerpetratorKind, Vulnerability
from schemas.sanctions import Restriction

# "Never more than 12 months": 365 days is within 12 months from any start, 366 is not
# (1 March to 2 March the next year, with no 29 February between).
MAX_BAN = timedelta(days=365)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Stored(BaseModel):
    """What is kept in a subject's stored state. A field a later release adds is ignored, not
    refused: during a rolling upgrade, or after a rollback, an older replica still reads the
    state a newer one saved (and drops the field when it saves it again)."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Policy(Frozen):
    """The card policy a trust has adopted; every decision names its version."""

    version: str
    window_days: int = Field(365, ge=1)
    red_card_days: int = Field(180, ge=1)
    review_days_before_end: int = Field(28, ge=0)
    approval_required: bool = True
    immediate_red_categories: frozenset[Category] = frozenset({Category.WEAPON})
    immediate_red_harm: dict[Category, frozenset[Harm]] = {
        Category.PHYSICAL_ASSAULT: frozenset({Harm.MODERATE, Harm.SEVERE, Harm.DEATH})}
    immediate_red_on_sexual_assault: bool = True
    # A qualifying incident during a ban in force proposes a new ban (an extension), which
    # replaces the running one if approved; off, it only attaches to the ban as evidence.
    extend_on_reoffence: bool = False
    # A ban needs the security manager's approval and the clinical lead's agreement that it
    # is clinically safe, given by two different people in either order.
    clinical_agreement_required: bool = False
    # Children are never carded, so a card for someone whose age band was not recorded risks
    # carding a child. Off, such an incident earns no card until its age band is recorded;
    # on, the person is taken to be an adult (the behaviour before this setting existed).
    card_without_age_band: bool = True

    @field_validator("red_card_days")
    @classmethod
    def _never_over_twelve_months(cls, days: int) -> int:
        if timedelta(days=days) > MAX_BAN:
            raise ValueError("a red card lasts at most 12 months")
        return days

    @property
    def window(self) -> timedelta:
        return timedelta(days=self.window_days)

    @property
    def ban_length(self) -> timedelta:
        return timedelta(days=self.red_card_days)

    @property
    def review_window(self) -> timedelta:
        return timedelta(days=self.review_days_before_end)


class CardKind(StrEnum):
    YELLOW_1 = "yellow_1"
    YELLOW_2 = "yellow_2"
    RED = "red"


class CardStatus(StrEnum):
    ISSUED = "issued"  # a yellow card, in force
    PROPOSED = "proposed"  # a red card awaiting a reviewer
    ACTIVE = "active"  # an approved ban
    REJECTED = "rejected"
    EXPIRED = "expired"
    LAPSED = "lapsed"  # a yellow card whose incident left the window
    RESCINDED = "rescinded"


STANDING = frozenset({CardStatus.ISSUED, CardStatus.PROPOSED, CardStatus.ACTIVE})


class AppealState(StrEnum):
    NONE = "none"
    LODGED = "lodged"
    UPHELD = "upheld"
    DISMISSED = "dismissed"


class IncidentRecord(Stored):
    """The facts of one incident the policy needs; no identifiers, no narrative."""

    incident_id: UUID
    seq: int = Field(description="Arrival order, to break ties between equal times.")
    occurred_at: datetime
    kind: PerpetratorKind
    medical_factors: bool
    age_band: AgeBand | None
    category: Category
    sexual_assault: bool = False
    harm: Harm
    organisation: str
    site: str
    revision: int = 1
    withdrawn: bool = False
    excused: bool = Field(False, description="An upheld appeal: it no longer counts.")
    # When intake accepted the report: one made after the incident had left the window earns
    # no card. Absent for incidents recorded before it was kept, which count as timely.
    reported_at: datetime | None = Field(None, exclude_if=lambda v: v is None)
    # Equality monitoring only (weighing a policy's impact on vulnerable people): the policy
    # never reads it. Left out of the stored state while empty, as it mostly is.
    vulnerabilities: tuple[Vulnerability, ...] = Field((), exclude_if=lambda v: not v)


class Card(Stored):
    sanction_id: UUID
    kind: CardKind
    status: CardStatus
    incident_id: UUID
    evidence: tuple[UUID, ...]
    rule: str
    restriction: Restriction | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    review_sent: bool = False
    appeal: AppealState = AppealState.NONE
    closed_at_seq: int | None = Field(None, description="Incidents known when a reviewer rejected it.")
    approved_by: str | None = Field(None, description="Who approved it (the security manager).")
    agreed_by: str | None = Field(None, description="Who agreed it is clinically safe (the clinical lead).")
    # The ban that replaced this one (an extension): if that one falls, this one runs on.
    superseded_by: UUID | None = Field(None, exclude_if=lambda v: v is None)
    # A ban brought back when the extension that replaced it fell is in force from then, but
    # has been the ban since this: conduct in between was during it, and may extend it.
    in_force_since: datetime | None = Field(None, exclude_if=lambda v: v is None)
    # How many times the incidents it rests on were revised (`SanctionBasisRevised`): each
    # revision's decision id counts it, as a card can lose the same incident twice.
    basis_revisions: int = Field(0, exclude_if=lambda v: v == 0)

    @property
    def standing(self) -> bool:
        return self.status in STANDING


class SubjectState(Stored):
    """Everything sanctions knows about one pseudonymous subject."""

    subject_id: str
    incidents: tuple[IncidentRecord, ...] = ()
    cards: tuple[Card, ...] = ()
    # "rule:incident" for each referral sent (guard.child, guard.medical_factors); states kept
    # before they were told apart hold the bare incident id.
    guarded: frozenset[str] = frozenset()
    attached: frozenset[str] = frozenset()  # "incident:sanction" evidence attachments already announced

    def incident(self, incident_id: UUID) -> IncidentRecord | None:
        return next((i for i in self.incidents if i.incident_id == incident_id), None)

    def card(self, sanction_id: UUID) -> Card | None:
        return next((c for c in self.cards if c.sanction_id == sanction_id), None)

    def active_ban(self) -> Card | None:
        return next((c for c in self.cards if c.status == CardStatus.ACTIVE), None)

    def version(self) -> str:
        """What a reviewer saw, in short: changes with any incident reported, corrected,
        withdrawn or excused, any card's status, appeal, evidence or endorsement (a colleague's
        approval or agreement). A decision sent with the version it was made on is refused if
        the subject has moved on since."""
        seen = ([(str(i.incident_id), i.revision, i.withdrawn, i.excused) for i in self.incidents],
                [(str(c.sanction_id), c.status.value, c.appeal.value, [str(e) for e in c.evidence],
                  c.approved_by, c.agreed_by) for c in self.cards],
                sorted(self.attached))
        return hashlib.sha256(json.dumps(seen).encode()).hexdigest()[:16]
