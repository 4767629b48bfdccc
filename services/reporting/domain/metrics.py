"""Metric definitions: what each board count means, as pure folds over fact rows.

Incidents count in the local calendar month they happened (`occurred_at`); sanction
decisions in the month they were decided (`decided_at`). Withdrawn incidents count nowhere.
What is not yet known when the figures are computed (`Inputs.now`) is not counted as if it
were: a RIDDOR report still within its 15 days, a ban's state after now.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from statistics import median
from uuid import UUID
from zoneinfo import ZoneInfo

from schemas.incidents import Category
from schemas.reporting import ReferralCriterion
from services.reporting.domain.facts import CHARACTERISTICS, STATED_IF_RECORDED, DecisionFact, IncidentFact
from services.reporting.domain.police import DEFAULT_CRITERIA, criteria_met

MINORITY = ("asian", "black", "mixed", "other")  # ONS 2021 groups other than White; Not stated is neither
CARDS = ("yellow_card_1", "yellow_card_2", "red_card_proposed")
BAN_ENDINGS = ("rescinded", "ban_expired")
DAY = 86_400.0
RIDDOR_DAYS = 15  # over-7-day incapacity: reported to HSE within 15 days of the incident
BOARD_ZONE = ZoneInfo("Europe/London")  # REPORTING_TIMEZONE's default

Count = tuple[str, str]  # (measure, dimension)
# The measure breaking staff affected down by each characteristic: staff_affected_by_ethnic_group...
BY_CHARACTERISTIC = {c: f"staff_affected_by_{c}" for c in CHARACTERISTICS}
# Ethnicity crossed with each other characteristic, so that Black women, say, are seen apart
# from Black staff and from women: staff_affected_by_ethnic_group_and_sex, dimension "black/female".
CROSSED = {c: f"staff_affected_by_ethnic_group_and_{c}" for c in STATED_IF_RECORDED}
CROSS = "/"
SEXUAL = "sexual_misconduct"
# Sexual safety at staff level (Sexual Safety Charter, commitment 10): whom unwanted sexual
# behaviour fell on, by sex, ethnic group and staff group, as the staff survey reports it.
SEXUAL_SAFETY_BY = {c: f"sexual_safety_staff_by_{c}" for c in ("sex", "ethnic_group", "staff_group")}


@dataclass(frozen=True)
class Window:
    """One row of the board: a label and its [start, end) instants."""

    label: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Inputs:
    incidents: Sequence[IncidentFact]
    decisions: Sequence[DecisionFact]
    related: Mapping[UUID, IncidentFact]  # incidents that decisions name, wherever they happened
    criteria: frozenset[ReferralCriterion] = DEFAULT_CRITERIA
    zone: tzinfo = BOARD_ZONE  # the board's calendar: RIDDOR's days are its dates
    now: datetime | None = None  # when the figures are computed; None counts every deadline and window as past


def incident_counts(facts: Iterable[IncidentFact], criteria: Iterable[ReferralCriterion] = DEFAULT_CRITERIA,
                    zone: tzinfo = BOARD_ZONE, now: datetime | None = None) -> Counter[Count]:
    """Every incident and staff count for a set of (already windowed) incidents, as known at `now`."""
    counts: Counter[Count] = Counter()
    for f in facts:
        if f.withdrawn:
            continue
        counts.update(_incident(f, criteria, zone, now))
    return counts


def _incident(f: IncidentFact, criteria: Iterable[ReferralCriterion], zone: tzinfo,
              now: datetime | None) -> list[Count]:
    rows = [("incidents", "all"), ("incidents_by_category", f.category), ("incidents_by_harm", f.harm),
            ("incidents_by_perpetrator", f.perpetrator_kind), ("incidents_by_location", f.location_type),
            ("incidents_by_site", f.site), ("medical_factors", "yes" if f.medical_factors else "no"),
            ("body_worn_camera", "used" if f.body_worn_camera else "not_used")]
    rows += [("body_worn_camera_by_site", f.site)] if f.body_worn_camera else []
    rows += [("sexual_safety", "sexual_assault")] if f.sexual_assault else []
    # A hate incident is aggravated by definition, ticked or not (as for the police criteria).
    rows += [("hate_aggravated", "all")] if f.hate_aggravation or f.category == Category.HATE_INCIDENT else []
    rows += [("hate_aggravation", a) for a in f.hate_aggravation]
    rows += _staff(f) if by_the_public(f) else []
    off_work = sum(s.over_7_day_incapacity for s in f.staff)
    # RIDDOR reports are made per incident; the dimension names the reason it is reportable.
    rows += [("riddor_reportable", "over_7_day_incapacity")] if off_work else []
    rows += _riddor_reported(f, zone, now) if off_work else []
    if f.subject_id is not None:
        rows += [("incidents_identified", "all")]
        rows += [("perpetrator_vulnerability", v) for v in f.vulnerabilities or ("none",)]
    return rows + _police(f, criteria)


def by_the_public(f: IncidentFact) -> bool:
    """Whether the incident's staff count in the staff figures: abuse from patients, relatives,
    visitors, the public or someone unknown. The equality figures built on them (WRES indicator
    5, WDES metric 4a, the Sexual Safety Charter's prevalence) are about abuse from the public;
    abuse from a colleague is an HR matter (WRES indicator 6), counted as an incident only."""
    return f.perpetrator_kind != "staff"


def _staff(f: IncidentFact) -> list[Count]:
    """Each member of staff affected, counted once in every breakdown of staff."""
    rows = [("staff_affected", "all")] * len(f.staff) + [("staff_affected_by_category", f.category)] * len(f.staff)
    rows += [("staff_affected", "injured")] * sum(s.injured for s in f.staff)
    rows += [("staff_affected", "over_7_day_incapacity")] * sum(s.over_7_day_incapacity for s in f.staff)
    rows += [("staff_affected_by_staff_group", s.staff_group) for s in f.staff]
    rows += [(BY_CHARACTERISTIC[c], getattr(s, c)) for s in f.staff for c in CHARACTERISTICS]
    if f.category == SEXUAL:
        rows += [(m, getattr(s, c)) for s in f.staff for c, m in SEXUAL_SAFETY_BY.items()]
    return rows


def crossed_counts(facts: Iterable[IncidentFact]) -> Counter[Count]:
    """Staff affected by ethnic group and each other characteristic together."""
    return Counter((m, f"{s.ethnic_group}{CROSS}{getattr(s, c)}")
                   for f in facts if not f.withdrawn and by_the_public(f) for s in f.staff for c, m in CROSSED.items())


def riddor_last_day(occurred_at: datetime, zone: tzinfo) -> date:
    """The last day a RIDDOR report is on time: "within 15 days of the incident" counts calendar
    days, the board's, so the incident's date plus 15, whatever the hour of either."""
    return occurred_at.astimezone(zone).date() + timedelta(days=RIDDOR_DAYS)


def _riddor_reported(f: IncidentFact, zone: tzinfo, now: datetime | None) -> list[Count]:
    """A reportable incident reported to HSE, and whether within the 15 days RIDDOR allows; or,
    not yet reported, still within them at `now`: not yet late, and not yet known to be on time."""
    last_day = riddor_last_day(f.occurred_at, zone)
    if f.riddor_reported_at is None:
        pending = now is not None and now.astimezone(zone).date() <= last_day
        return [("riddor_pending", "within_15_days")] if pending else []
    on_time = f.riddor_reported_at.astimezone(zone).date() <= last_day
    return [("riddor_reported", "all")] + ([("riddor_reported", "within_15_days")] if on_time else [])


def _police(f: IncidentFact, criteria: Iterable[ReferralCriterion]) -> list[Count]:
    """The referral funnel runs over incidents meeting the criteria only."""
    if not criteria_met(f, criteria):
        return [("police", "referred_outside_criteria")] if f.referred else []
    rows = [("police", "meeting_criteria")]
    if f.referred:
        rows.append(("police", "referred"))
        if f.police_outcome:
            rows += [("police", "outcome_known"), ("police_outcomes", f.police_outcome)]
    return rows


def decision_counts(decisions: Iterable[DecisionFact], related: Mapping[UUID, IncidentFact]) -> Counter[Count]:
    """Sanction decisions by kind, and red cards proposed by the perpetrator's vulnerability flags."""
    counts: Counter[Count] = Counter()
    for d in decisions:
        counts[("sanctions", d.kind)] += 1
        if d.kind == "red_card_proposed":
            incident = related.get(d.incident_id)
            flags = ("unknown",) if incident is None else incident.vulnerabilities or ("none",)
            counts.update(("red_cards_by_vulnerability", v) for v in flags)
    return counts


def active_bans(decisions: Iterable[DecisionFact], at: datetime) -> int:
    """Bans in force at an instant: imposed before it, not yet ended, rescinded or expired."""
    ended = {d.sanction_id for d in decisions if d.kind in BAN_ENDINGS and d.decided_at < at}
    return sum(1 for d in decisions if d.kind == "ban_imposed" and d.sanction_id not in ended
               and d.starts_at is not None and d.ends_at is not None and d.starts_at < at <= d.ends_at)


def period_end(window: Window, now: datetime | None) -> datetime:
    """The instant a row's figures at its end are taken at: the window's end, or now for a
    window not yet over, whose end is still to come (a ban ending before it is still in force)."""
    return window.end if now is None else min(window.end, now)


def repeat_perpetrators(facts: Iterable[IncidentFact]) -> int:
    """Identified perpetrators with two or more incidents in the window."""
    per_subject = Counter(f.subject_id for f in facts if f.subject_id and not f.withdrawn)
    return sum(1 for n in per_subject.values() if n >= 2)


def days_to_referral(facts: Iterable[IncidentFact]) -> list[float]:
    """Days from incident to referral, for incidents with a recorded referral date. A date
    before the incident (intake refuses them now; history may hold some) says nothing."""
    return [days for f in facts if not f.withdrawn and f.referred_at is not None
            if (days := (f.referred_at - f.occurred_at).total_seconds() / DAY) >= 0]


def days_to_card(decisions: Iterable[DecisionFact]) -> list[float]:
    """Days from an incident to its first card (yellow 1, yellow 2, red proposed): how quickly
    cards go out. A card issued again after a re-derivation is months late by construction."""
    return [(d.decided_at - d.occurred_at).total_seconds() / DAY for d in decisions
            if d.kind in CARDS and not d.reissued]


def middle(samples: Sequence[float]) -> float | None:
    return round(median(samples), 1) if samples else None


def row_counts(inputs: Inputs, window: Window, crossed: bool = False, counted: Counter[Count] | None = None
               ) -> tuple[Counter[Count], dict[str, list[float]], Counter[Count]]:
    """All counts for one board row, the samples its medians come from, and its incident counts
    alone. `crossed` adds the crossed characteristics, which the board gives for the whole
    period only; `counted` is the window's incident counts where already made: every incident
    falls in one month, so the period's are the months' summed, and counting each incident
    once instead of twice halves the work of a board."""
    incidents = [f for f in inputs.incidents if window.start <= f.occurred_at < window.end]
    decided = [d for d in inputs.decisions if window.start <= d.decided_at < window.end]
    counted = incident_counts(incidents, inputs.criteria, inputs.zone, inputs.now) if counted is None else counted
    counts = counted + decision_counts(decided, inputs.related)
    counts += crossed_counts(incidents) if crossed else Counter()
    counts[("sanctions_at_period_end", "active_bans")] = active_bans(inputs.decisions, period_end(window, inputs.now))
    counts[("repeat_perpetrators", "subjects")] = repeat_perpetrators(incidents)
    samples = {"days_to_referral": days_to_referral(incidents), "days_to_card": days_to_card(decided)}
    return +counts, samples, counted
