"""Incident contracts: the report upstream systems send, the event intake publishes."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import (AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ModelWrapValidatorHandler,
                      StringConstraints, ValidationError, ValidationInfo, field_validator, model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from schemas.base import EventData


class LocationType(StrEnum):
    EMERGENCY_DEPARTMENT = "emergency_department"
    WARD = "ward"
    OUTPATIENTS = "outpatients"
    MENTAL_HEALTH_UNIT = "mental_health_unit"
    COMMUNITY = "community"
    PATIENT_HOME = "patient_home"
    AMBULANCE = "ambulance"
    PUBLIC_PLACE = "public_place"
    OTHER = "other"


class Category(StrEnum):
    PHYSICAL_ASSAULT = "physical_assault"
    VERBAL_ABUSE = "verbal_abuse"
    THREATENING_BEHAVIOUR = "threatening_behaviour"
    SEXUAL_MISCONDUCT = "sexual_misconduct"
    HATE_INCIDENT = "hate_incident"
    WEAPON = "weapon"
    DAMAGE_TO_PROPERTY = "damage_to_property"


class Harm(StrEnum):
    NONE = "none"
    LOW = "low"
    MODERATE = "moderate"
    SEVERE = "severe"
    DEATH = "death"


class PerpetratorKind(StrEnum):
    PATIENT = "patient"
    RELATIVE = "relative"
    VISITOR = "visitor"
    MEMBER_OF_PUBLIC = "member_of_public"
    STAFF = "staff"
    UNKNOWN = "unknown"


class AgeBand(StrEnum):
    UNDER_18 = "under_18"
    ADULT = "18_to_64"
    OLDER = "65_and_over"


class StaffGroup(StrEnum):
    MEDICAL_DENTAL = "medical_dental"
    NURSING_MIDWIFERY = "nursing_midwifery"
    ALLIED_HEALTH = "allied_health"
    AMBULANCE = "ambulance"
    HEALTHCARE_SUPPORT = "healthcare_support"
    ADMIN_CLERICAL = "admin_clerical"
    ESTATES_SECURITY = "estates_security"
    OTHER = "other"


class EthnicGroup(StrEnum):
    """ONS 2021 high-level ethnic groups, as WRES reports them."""

    ASIAN = "asian"
    BLACK = "black"
    MIXED = "mixed"
    WHITE = "white"
    OTHER = "other"
    NOT_STATED = "not_stated"


# The other protected characteristics a board watches beside ethnicity, in the categories of
# the NHS Staff Survey and ESR. Each defaults to not stated: few reporting systems record them.
class Disability(StrEnum):
    """As the Workforce Disability Equality Standard (WDES) reports it."""

    DISABLED = "disabled"
    NOT_DISABLED = "not_disabled"
    NOT_STATED = "not_stated"


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    NOT_STATED = "not_stated"


class GenderIdentity(StrEnum):
    """Whether their gender identity is the same as the sex registered at their birth."""

    SAME = "same_as_registered_at_birth"
    DIFFERENT = "different_from_registered_at_birth"
    NOT_STATED = "not_stated"


class SexualOrientation(StrEnum):
    HETEROSEXUAL = "heterosexual"
    GAY_OR_LESBIAN = "gay_or_lesbian"
    BISEXUAL = "bisexual"
    OTHER = "other"
    NOT_STATED = "not_stated"


class Religion(StrEnum):
    """ONS 2021 religion groups."""

    NO_RELIGION = "no_religion"
    BUDDHIST = "buddhist"
    CHRISTIAN = "christian"
    HINDU = "hindu"
    JEWISH = "jewish"
    MUSLIM = "muslim"
    SIKH = "sikh"
    OTHER = "other"
    NOT_STATED = "not_stated"


class HateAggravation(StrEnum):
    RACE = "race"
    RELIGION = "religion"
    DISABILITY = "disability"
    SEXUAL_ORIENTATION = "sexual_orientation"
    TRANSGENDER_IDENTITY = "transgender_identity"
    SEX = "sex"


EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; refuse it here, naming the field, not deep in a query.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character")
    return value


NoNul = AfterValidator(_no_nul)


# A few minutes' clock skew between the sending system and this one is allowed.
CLOCK_SKEW = timedelta(minutes=5)


def _not_in_the_future(value: datetime) -> datetime:
    if value > datetime.now(UTC) + CLOCK_SKEW:
        raise ValueError("must not be in the future")
    return value


# A time something already happened at: with an offset, and not in the future.
Past = Annotated[AwareDatetime, AfterValidator(_not_in_the_future)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
# Either case: the pattern is checked before the code is upper-cased, so `rj1` is RJ1, not refused.
OdsCode = Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z0-9]{3,6}$")]
# As intake publishes it: always upper case, which an event's schema says so subscribers can rely on it.
PublishedOdsCode = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{3,6}$")]


def nhs_digits(value: str) -> str:
    """An NHS number as written ("943 476 5919", "943-476-5919") as its digits alone."""
    return value.replace(" ", "").replace("-", "")


def nhs_number_is_valid(digits: str) -> bool:
    """Check an NHS number's modulus 11 check digit (ASCII digits only: other scripts' digits
    would give one person a second pseudonym)."""
    if len(digits) != 10 or not (digits.isascii() and digits.isdigit()):
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def as_a_set(values: list[StrEnum]) -> list:
    """A list whose order carries no meaning, in one canonical form, each value once: so that
    retries and amendments compare equal, and a flag given twice is not counted twice."""
    return sorted(set(values))


class Vulnerability(StrEnum):
    """Recorded for equality impact monitoring only: never a reason to excuse or to sanction."""

    HOMELESSNESS = "homelessness"
    CARE_LEAVER = "care_leaver"
    CRIMINAL_JUSTICE = "criminal_justice"


class PoliceOutcome(StrEnum):
    CHARGED = "charged"
    CAUTION = "caution"
    COMMUNITY_RESOLUTION = "community_resolution"
    NO_FURTHER_ACTION = "no_further_action"
    VICTIM_DECLINED = "victim_declined"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PerpetratorReport(Strict):
    kind: PerpetratorKind
    nhs_number: str | None = Field(None, description="10-digit NHS number; never leaves intake.")
    local_id: Text | None = Field(None, description="Local patient id; never leaves intake.")
    medical_factors: bool = Field(False, description="Behaviour arose from a clinical condition.")
    age_band: AgeBand | None = None
    vulnerabilities: list[Vulnerability] = Field(default_factory=list, max_length=3)

    @field_validator("nhs_number")
    @classmethod
    def _valid_nhs_number(cls, value: str | None) -> str | None:
        if value is None:
            return None
        digits = nhs_digits(value)
        if not nhs_number_is_valid(digits):
            raise ValueError("not a valid NHS number (10 digits with a modulus 11 check digit)")
        if len(set(digits)) == 1:
            # Every repeated digit passes the check, and systems use them for "not known": taken
            # as a number, they would pool unrelated people into one subject who collects cards.
            raise ValueError("a placeholder, not an NHS number: leave it out when the number is not known")
        return digits

    @field_validator("nhs_number", "local_id")
    @classmethod
    def _identifies_someone_known(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Sealed and kept for letters an unknown perpetrator never gets: say which is wrong.
        if value is not None and info.data.get("kind") == PerpetratorKind.UNKNOWN:
            raise ValueError("given for a perpetrator of kind unknown: leave it out, or give the kind they are"
                             " (patient, relative, visitor, member_of_public, staff)")
        return value

    @field_validator("vulnerabilities")
    @classmethod
    def _vulnerabilities_as_a_set(cls, values: list[Vulnerability]) -> list[Vulnerability]:
        return as_a_set(values)


class StaffAffected(Strict):
    staff_group: StaffGroup
    ethnic_group: EthnicGroup
    injured: bool = False
    wishes_police_action: bool = False
    # Left out of events while false, so a subscriber validating against the schema it had
    # before this field existed goes on accepting every event that does not set it.
    over_7_day_incapacity: bool = Field(
        False, exclude_if=lambda v: v is False,
        description="The injury kept them off work, or off their normal duties, for more than seven consecutive"
                    " days, not counting the day of the incident: reportable to HSE under RIDDOR within 15 days."
                    " Usually known only later, so usually set by amendment.")

    # Special category data about staff, for the board's equality figures only. Each is left
    # out of events while not stated, like the flag above.
    disability: Disability = Field(Disability.NOT_STATED, exclude_if=lambda v: v == Disability.NOT_STATED)
    sex: Sex = Field(Sex.NOT_STATED, exclude_if=lambda v: v == Sex.NOT_STATED)
    gender_identity: GenderIdentity = Field(GenderIdentity.NOT_STATED,
                                            exclude_if=lambda v: v == GenderIdentity.NOT_STATED)
    sexual_orientation: SexualOrientation = Field(SexualOrientation.NOT_STATED,
                                                  exclude_if=lambda v: v == SexualOrientation.NOT_STATED)
    religion: Religion = Field(Religion.NOT_STATED, exclude_if=lambda v: v == Religion.NOT_STATED)

    @field_validator("over_7_day_incapacity")
    @classmethod
    def _incapacity_needs_an_injury(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("injured"):
            raise ValueError("may be true only when injured is true")
        return value


class PoliceDetails(Strict):
    informed: bool
    crime_reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40), NoNul] | None = None
    referred_at: AwareDatetime | None = Field(None, description="When the trust referred it to the police.")
    outcome: PoliceOutcome | None = Field(None, description="The police outcome, once known.")


class IncidentFacts(Strict):
    """What happened: the part of a report that travels beyond intake."""

    # Not in the future is checked where intake takes a report (IncidentReport), not on events:
    # a consumer whose clock runs behind intake's would dead-letter an event as unparseable.
    occurred_at: AwareDatetime = Field(description="When it happened, ISO 8601 with offset.")
    organisation: OdsCode = Field(description="ODS code of the organisation.")
    site: Text
    location_type: LocationType
    category: Category
    sexual_assault: bool = Field(False, description="Sexual misconduct amounting to sexual assault.")
    harm: Harm
    staff_affected: list[StaffAffected] = Field(min_length=1, max_length=50)
    body_worn_camera_used: bool
    police: PoliceDetails | None = None
    hate_aggravation: list[HateAggravation] = Field(default_factory=list, max_length=6)
    # Left out of events while unset, like the staff flags: known only once the trust reports.
    riddor_reported_at: AwareDatetime | None = Field(
        None, exclude_if=lambda v: v is None,
        description="When the trust reported the incident to HSE under RIDDOR: within 15 days of the incident for"
                    " an over-7-day incapacity. Usually set by amendment.")

    @field_validator("occurred_at")
    @classmethod
    def _plausible_time(cls, value: datetime) -> datetime:
        # Not before 2000 (and, on a report, not in the future).
        if value < EARLIEST:
            raise ValueError("must be on or after 2000-01-01")
        return value

    @field_validator("hate_aggravation")
    @classmethod
    def _as_a_set(cls, values: list[HateAggravation]) -> list[HateAggravation]:
        return as_a_set(values)

    # Rules across fields are checked on the later field, with the earlier one already
    # validated in `info.data`, so that an error names the field it is about.
    @field_validator("sexual_assault")
    @classmethod
    def _assault_flag_needs_sexual_category(cls, value: bool, info: ValidationInfo) -> bool:
        category = info.data.get("category")
        if value and category is not None and category != Category.SEXUAL_MISCONDUCT:
            raise ValueError("may be true only when category is sexual_misconduct")
        return value

    @field_validator("riddor_reported_at")
    @classmethod
    def _reported_after_it_happened(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        occurred = info.data.get("occurred_at")
        if value is not None and occurred is not None and value < occurred:
            raise ValueError("must not be before occurred_at")
        return value


# Request examples for the OpenAPI documents: obviously fake data only (an NHS number in
# the 999 test range that no test uses, an invented ODS code and site, no names).
REPORT_EXAMPLE = {
    "source_system": "example-system",
    "source_ref": "EXAMPLE-0001",
    "occurred_at": "2025-01-15T14:30:00+00:00",
    "organisation": "ZZZ99",
    "site": "Example General Hospital",
    "location_type": "emergency_department",
    "category": "verbal_abuse",
    "harm": "none",
    "perpetrator": {"kind": "patient", "nhs_number": "9990000999", "medical_factors": False,
                    "age_band": "18_to_64"},
    "staff_affected": [{"staff_group": "nursing_midwifery", "ethnic_group": "not_stated", "injured": False,
                        "wishes_police_action": False}],
    "body_worn_camera_used": False,
    "narrative": "Example text: shouted at the triage nurse while waiting.",
}
AMENDMENT_EXAMPLE = {"harm": "low", "police": {"informed": True, "crime_reference": "EXAMPLE/0001"}}


def _blank_is_none(value: object) -> object:
    # Upstream systems often send "" for "none": stored, it would read as a crime reference.
    return None if isinstance(value, str) and not value.strip() else value


class PoliceReport(PoliceDetails):
    """Police details as a report gives them: a blank crime reference means there is none."""

    _blank_reference = field_validator("crime_reference", mode="before")(_blank_is_none)


class PoliceAmendment(Strict):
    """A correction to the police details: only the fields given change, and a field given as
    null is cleared (a blank crime reference too)."""

    informed: bool | None = None
    crime_reference: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40), NoNul] | None = None
    referred_at: AwareDatetime | None = None
    outcome: PoliceOutcome | None = None

    _blank_reference = field_validator("crime_reference", mode="before")(_blank_is_none)
WITHDRAWAL_EXAMPLE = {"reason": "entered_in_error"}


class IncidentReport(IncidentFacts):
    """An incident report as an upstream system submits it to intake."""

    model_config = ConfigDict(json_schema_extra={"examples": [REPORT_EXAMPLE]})

    source_system: Text = Field(description="Name of the submitting system.")
    source_ref: Text = Field(description="The submitting system's own id for this report.")
    perpetrator: PerpetratorReport
    police: PoliceReport | None = None
    narrative: Annotated[str, StringConstraints(max_length=10_000), NoNul] | None = Field(
        None, description="Free text; stored in intake only, never published."
    )

    @field_validator("occurred_at", "riddor_reported_at")
    @classmethod
    def _happened_already(cls, value: datetime | None) -> datetime | None:
        return None if value is None else _not_in_the_future(value)

    @model_validator(mode="wrap")
    @classmethod
    def _no_identifier_in_what_is_published(cls, data: object, handler: ModelWrapValidatorHandler[IncidentReport],
                                            ) -> IncidentReport:
        # The identifiers never leave intake; copied by mistake into a free-text field that is
        # published (and kept for ever on the incidents topic), they would. The source's own
        # reference is not published, but is kept in clear past the retention purge.
        try:
            report = handler(data)
        except ValidationError as invalid:
            # Named with the report's other errors, so that the sender mends them all at once.
            found = _identifiers_in_raw(data, {e["loc"] for e in invalid.errors()})
            if not found:
                raise
            raise ValidationError.from_exception_data(cls.__name__, [
                *(InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"]),  # as rendered
                                   loc=e["loc"], input=e["input"]) for e in invalid.errors()),
                *found]) from None
        perpetrator = report.perpetrator
        if found := _identifiers_in(report._kept_text(), perpetrator.nhs_number, perpetrator.local_id):
            raise ValidationError.from_exception_data(cls.__name__, found)
        return report

    def _kept_text(self) -> list[tuple[tuple[str, ...], str]]:
        reference = self.police.crime_reference if self.police else None
        return [(("site",), self.site), (("source_system",), self.source_system),
                (("source_ref",), self.source_ref)] + (
            [(("police", "crime_reference"), reference)] if reference else [])

    @field_validator("police")
    @classmethod
    def _referred_after_it_happened(cls, value: PoliceReport | None, info: ValidationInfo) -> PoliceReport | None:
        # Raised as an error of referred_at, so that it is named police.referred_at (as an
        # amendment names it), not police: the whole object.
        if reason := referral_date_problem(value, info.data.get("occurred_at")):
            raise ValidationError.from_exception_data(cls.__name__, [InitErrorDetails(
                type=PydanticCustomError("value_error", "Value error, {reason}", {"reason": reason}),
                loc=("referred_at",), input=value.referred_at if value else None)])
        return value


def _identifiers_in(texts: list[tuple[tuple[str | int, ...], str]], nhs_number: str | None,
                    local_id: str | None) -> list[InitErrorDetails]:
    """An error for each text that holds the perpetrator's NHS number or local id."""
    return [InitErrorDetails(type=PydanticCustomError("value_error", "Value error, {reason}", {"reason": holds(what)}),
                             loc=loc, input="")
            for loc, text in texts if (what := identifier_in(text, nhs_number, local_id))]


def _identifiers_in_raw(data: object, failed: set[tuple[str | int, ...]]) -> list[InitErrorDetails]:
    """`_identifiers_in` for a report that failed validation, read from what was sent: the
    texts and identifiers that are strings, a text only where no other error names it, and an
    identifier only if its own field took it (the NHS number normalised as the field does)."""
    if not isinstance(data, dict):
        return []
    police, perpetrator = data.get("police"), data.get("perpetrator")
    police = police if isinstance(police, dict) else {}
    perpetrator = perpetrator if isinstance(perpetrator, dict) else {}
    nhs, local = (None if ("perpetrator", field) in failed else perpetrator.get(field)
                  for field in ("nhs_number", "local_id"))
    digits = nhs_digits(nhs) if isinstance(nhs, str) else ""
    texts = [(("site",), data.get("site")), (("source_system",), data.get("source_system")),
             (("source_ref",), data.get("source_ref")), (("police", "crime_reference"), police.get("crime_reference"))]
    return _identifiers_in([(loc, text) for loc, text in texts if isinstance(text, str) and loc not in failed],
                           digits if nhs_number_is_valid(digits) else None,
                           local.strip() if isinstance(local, str) else None)


REFERRAL_DATE = "police.referred_at"


MIN_LOCAL_ID = 6  # shorter ones ("12") are in too much free text by chance


def identifier_in(text: str, nhs_number: str | None, local_id: str | None) -> str | None:
    """Which of the perpetrator's identifiers `text` holds ("NHS number", "local id"), if either.
    Spaces and punctuation are ignored; a local id shorter than 6 characters ("12" is in "Ward
    12") is not looked for."""
    found = letters_and_digits(text)
    if nhs_number and nhs_number in found:
        return "NHS number"
    local = letters_and_digits(local_id or "")
    return "local id" if len(local) >= MIN_LOCAL_ID and local in found else None


def holds(what: str) -> str:
    return f"holds the perpetrator's {what}, which never leaves intake"


def letters_and_digits(text: str) -> str:
    """Upper case, letters and digits only: "943 476 5919" reads 9434765919, "rx-123456" RX123456.
    Digits and letters written in other forms read as the plain ones (full-width "９４３", or
    Arabic-Indic "٩٤٣", read 943), or an NHS number so written would pass for other text."""
    plain = unicodedata.normalize("NFKC", text).upper()
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in plain if c.isalnum())


def referral_date_problem(police: PoliceDetails | None, occurred_at: datetime | None) -> str | None:
    """Why the recorded police referral date (`REFERRAL_DATE`) cannot be right, if it cannot:
    before the incident, or in the future. Checked where intake accepts a report or an
    amendment, not on events, so that history already published still replays."""
    when = police.referred_at if police else None
    if when is None:
        return None
    if occurred_at is not None and when < occurred_at:
        return "must not be before occurred_at"
    if when > datetime.now(UTC) + CLOCK_SKEW:
        return "must not be in the future"
    return None


class PerpetratorFacts(Strict):
    """Perpetrator as other services see it: no identifier, only whether one exists."""

    kind: PerpetratorKind
    identified: bool
    medical_factors: bool
    age_band: AgeBand | None = None
    vulnerabilities: list[Vulnerability] = Field(default_factory=list, max_length=3)


class IncidentReported(EventData, IncidentFacts):
    """A validated, pseudonymised incident accepted by intake."""

    event_type = "uk.nhs.vanda.incident.reported.v1"

    organisation: PublishedOdsCode = Field(description="ODS code of the organisation, upper case.")
    incident_id: UUID
    subject_id: str | None = Field(None, description="Keyed pseudonym of the perpetrator, if identified.")
    source_system: Text
    reported_at: AwareDatetime
    perpetrator: PerpetratorFacts


class WithdrawalReason(StrEnum):
    ENTERED_IN_ERROR = "entered_in_error"
    DUPLICATE = "duplicate"
    NOT_AN_INCIDENT = "not_an_incident"


class PerpetratorAmendment(Strict):
    medical_factors: bool | None = None
    age_band: AgeBand | None = None
    vulnerabilities: list[Vulnerability] | None = Field(None, max_length=3)

    @field_validator("vulnerabilities")
    @classmethod
    def _as_a_set(cls, values: list[Vulnerability] | None) -> list[Vulnerability] | None:
        return None if values is None else as_a_set(values)


class IncidentAmendment(Strict):
    """A correction to a stored incident: only the fields given change."""

    model_config = ConfigDict(json_schema_extra={"examples": [AMENDMENT_EXAMPLE]})

    category: Category | None = None
    sexual_assault: bool | None = None
    harm: Harm | None = None
    perpetrator: PerpetratorAmendment | None = None
    police: PoliceAmendment | None = None
    hate_aggravation: list[HateAggravation] | None = Field(None, max_length=6)
    staff_affected: list[StaffAffected] | None = Field(
        None, min_length=1, max_length=50,
        description="Replaces the whole list: give every member of staff affected, as they now stand.")
    riddor_reported_at: Past | None = Field(None, description="When the trust reported it to HSE.")

    @field_validator("hate_aggravation")
    @classmethod
    def _as_a_set(cls, values: list[HateAggravation] | None) -> list[HateAggravation] | None:
        return None if values is None else as_a_set(values)


class IncidentWithdrawal(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [WITHDRAWAL_EXAMPLE]})

    reason: WithdrawalReason = WithdrawalReason.ENTERED_IN_ERROR


class IncidentAmended(EventData, IncidentFacts):
    """The full corrected incident, replacing the earlier version for every consumer."""

    event_type = "uk.nhs.vanda.incident.amended.v1"

    organisation: PublishedOdsCode = Field(description="ODS code of the organisation, upper case.")
    incident_id: UUID
    subject_id: str | None = None
    source_system: Text
    reported_at: AwareDatetime
    perpetrator: PerpetratorFacts
    revision: int = Field(ge=2, description="1 is the report; each amendment adds one.")
    changed_fields: list[str] = Field(description="Dotted names of the fields this amendment changed.")
    amended_at: AwareDatetime


class IncidentWithdrawn(EventData):
    """The incident was withdrawn (e.g. entered in error): consumers undo its effects."""

    event_type = "uk.nhs.vanda.incident.withdrawn.v1"

    incident_id: UUID
    subject_id: str | None = None
    reason: WithdrawalReason
    withdrawn_at: AwareDatetime
