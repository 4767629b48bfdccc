"""Metric definitions pinned on hand-computed fixtures."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.reporting.domain.facts import DecisionFact, IncidentFact, Staff
from services.reporting.domain.metrics import (
    Inputs,
    Window,
    active_bans,
    crossed_counts,
    days_to_card,
    days_to_referral,
    decision_counts,
    incident_counts,
    middle,
    repeat_perpetrators,
    row_counts,
)

T = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
NURSE_BLACK = Staff("nursing_midwifery", "black", False, False)


def fact(**kw) -> IncidentFact:
    base = dict(incident_id=uuid.uuid4(), subject_id="sub_1", occurred_at=T, organisation="RZA", site="North",
                location_type="ward", category="verbal_abuse", sexual_assault=False, harm="none",
                perpetrator_kind="patient", medical_factors=False, age_band="18_to_64", vulnerabilities=(),
                staff=(NURSE_BLACK,), hate_aggravation=(), body_worn_camera=False, police_informed=False,
                crime_reference=None, referred_at=None, police_outcome=None, revision=1)
    return IncidentFact(**base | kw)


def decision(kind: str, decided: datetime = T, **kw) -> DecisionFact:
    d = uuid.uuid4()
    base = dict(decision_id=d, kind=kind, sanction_id=d, incident_id=uuid.uuid4(), subject_id="sub_1",
                organisation="RZA", site="North", occurred_at=decided - timedelta(days=2), decided_at=decided)
    return DecisionFact(**base | kw)


def test_incident_breakdowns_count_each_incident_once():
    counts = incident_counts([fact(), fact(category="weapon", harm="low"), fact(withdrawn=True)])
    assert counts[("incidents", "all")] == 2
    assert counts[("incidents_by_category", "verbal_abuse")] == 1 and counts[("incidents_by_category", "weapon")] == 1
    assert counts[("incidents_by_harm", "none")] == 1 and counts[("incidents_by_site", "North")] == 2


def test_staff_are_counted_per_person_affected():
    two = (NURSE_BLACK, Staff("ambulance", "white", True, False))
    counts = incident_counts([fact(staff=two), fact()])
    assert counts[("staff_affected", "all")] == 3 and counts[("staff_affected", "injured")] == 1
    assert counts[("staff_affected_by_ethnic_group", "black")] == 2
    assert counts[("staff_affected_by_staff_group", "ambulance")] == 1


def test_staff_abused_by_a_colleague_count_as_an_incident_never_in_the_staff_and_equality_figures():
    # WRES indicator 5, WDES 4a and the sexual safety figures are about abuse from the public.
    off = Staff("ambulance", "white", True, False, True, sex="female")
    colleague = [fact(perpetrator_kind="staff", staff=(NURSE_BLACK, off)),
                 fact(perpetrator_kind="staff", category="sexual_misconduct", staff=(off,))]
    public = [fact(perpetrator_kind=kind, staff=(off,)) for kind in ("patient", "relative", "member_of_public",
                                                                       "unknown")]
    counts = incident_counts(colleague + public)
    assert counts[("incidents", "all")] == 6 and counts[("incidents_by_perpetrator", "staff")] == 2
    assert counts[("staff_affected", "all")] == 4 and counts[("staff_affected_by_ethnic_group", "black")] == 0
    assert counts[("staff_affected", "over_7_day_incapacity")] == 4
    assert not [k for k in counts if k[0].startswith("sexual_safety_staff")]
    # RIDDOR is about the workplace, whoever the assailant: the incident is still reportable.
    assert counts[("riddor_reportable", "over_7_day_incapacity")] == 6
    assert sum(crossed_counts(colleague).values()) == 0 and sum(crossed_counts(public).values()) > 0


def test_riddor_over_7_day_incapacity_counts_people_not_incidents():
    off = Staff("ambulance", "white", True, False, True)
    counts = incident_counts([fact(staff=(off, off, Staff("ambulance", "white", True, False))), fact(),
                              fact(staff=(off,), withdrawn=True)])
    assert counts[("staff_affected", "over_7_day_incapacity")] == 2 and counts[("staff_affected", "injured")] == 3
    assert counts[("riddor_reportable", "over_7_day_incapacity")] == 1


def test_riddor_reports_count_for_reportable_incidents_and_on_time_within_15_days():
    off = Staff("ambulance", "white", True, False, True)
    counts = incident_counts([
        fact(staff=(off,), riddor_reported_at=T + timedelta(days=15, hours=11)),  # the last day allowed, 23:00
        fact(staff=(off,), riddor_reported_at=T + timedelta(days=15, hours=12)),  # late: midnight, 26 March
        fact(staff=(off,)),  # not reported
        fact(riddor_reported_at=T + timedelta(days=2)),  # reported, but not for an over-7-day incapacity
    ])
    assert counts[("riddor_reportable", "over_7_day_incapacity")] == 3
    assert counts[("riddor_reported", "all")] == 2 and counts[("riddor_reported", "within_15_days")] == 1


OFF = Staff("ambulance", "white", True, False, True)
LONDON = ZoneInfo("Europe/London")


def _on_time(occurred: datetime, reported: datetime, zone=LONDON) -> bool:
    counts = incident_counts([fact(occurred_at=occurred, staff=(OFF,), riddor_reported_at=reported)], zone=zone)
    assert counts[("riddor_reported", "all")] == 1
    return counts[("riddor_reported", "within_15_days")] == 1


@pytest.mark.parametrize(("occurred", "reported", "on_time"), [
    # 14:00 BST on 1 April: the 15 days run to the end of 16 April, whatever the hour.
    ("2025-04-01T13:00Z", "2025-04-16T13:00Z", True),
    ("2025-04-01T13:00Z", "2025-04-16T13:01Z", True),   # 14:01 BST, 16 April
    ("2025-04-01T13:00Z", "2025-04-16T22:00Z", True),   # 23:00 BST
    ("2025-04-01T13:00Z", "2025-04-16T22:59Z", True),   # 23:59 BST
    ("2025-04-01T13:00Z", "2025-04-16T23:00Z", False),  # midnight BST: 17 April
    # 00:30 BST on 2 April is still 1 April in UTC: the board's date is 2 April, so 17 April is in time.
    ("2025-04-01T23:30Z", "2025-04-17T21:00Z", True),
    ("2025-04-01T23:30Z", "2025-04-17T23:00Z", False),
    # Across the change to summer time: 20 March (GMT) to the end of 4 April (BST).
    ("2025-03-20T12:00Z", "2025-04-04T22:30Z", True),
    ("2025-03-20T12:00Z", "2025-04-04T23:00Z", False),
])
def test_a_riddor_report_is_on_time_to_the_end_of_the_fifteenth_day_after_the_incident_s_date(occurred, reported,
                                                                                            on_time):
    assert _on_time(datetime.fromisoformat(occurred), datetime.fromisoformat(reported)) is on_time


def test_riddor_days_are_the_board_s_calendar_days():
    occurred, reported = datetime(2025, 4, 1, 23, 30, tzinfo=UTC), datetime(2025, 4, 17, 21, tzinfo=UTC)
    assert _on_time(occurred, reported, LONDON) and not _on_time(occurred, reported, ZoneInfo("UTC"))


def _pending(occurred: datetime, now: datetime | None, reported: datetime | None = None) -> dict:
    counts = incident_counts([fact(occurred_at=occurred, staff=(OFF,), riddor_reported_at=reported)],
                             zone=LONDON, now=now)
    return {k: n for k, n in counts.items() if k[0].startswith("riddor")}


JUNE_24 = datetime(2025, 6, 24, 9, tzinfo=UTC)  # 10:00 BST: its 15 days run to the end of 9 July
REPORTABLE = {("riddor_reportable", "over_7_day_incapacity"): 1}


@pytest.mark.parametrize(("now", "reported", "expected"), [
    # Not reported, its deadline still to come: not yet late, not yet known to be on time.
    (datetime(2025, 7, 4, 9, tzinfo=UTC), None, REPORTABLE | {("riddor_pending", "within_15_days"): 1}),
    (datetime(2025, 7, 9, 22, 59, tzinfo=UTC), None, REPORTABLE | {("riddor_pending", "within_15_days"): 1}),
    # Its last day over (midnight BST, 10 July): late, like any reportable incident not reported.
    (datetime(2025, 7, 9, 23, tzinfo=UTC), None, REPORTABLE),
    # No clock given: every deadline taken as past.
    (None, None, REPORTABLE),
    # Reported: on time or late as it was, whenever the figures are computed.
    (datetime(2025, 7, 4, 9, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC),
     REPORTABLE | {("riddor_reported", "all"): 1, ("riddor_reported", "within_15_days"): 1}),
    (datetime(2025, 7, 20, tzinfo=UTC), datetime(2025, 7, 10, 8, tzinfo=UTC),
     REPORTABLE | {("riddor_reported", "all"): 1}),
])
def test_an_unreported_riddor_incident_is_pending_until_its_fifteen_days_run_out(now, reported, expected):
    assert _pending(JUNE_24, now, reported) == expected


def test_hate_aggravations_are_multi_label_and_race_is_not_alone():
    counts = incident_counts([fact(hate_aggravation=("race", "religion")), fact(hate_aggravation=("disability",)), fact()])
    assert counts[("hate_aggravated", "all")] == 2
    assert [counts[("hate_aggravation", a)] for a in ("race", "religion", "disability")] == [1, 1, 1]
    # A hate incident is aggravated by definition, whether or not an aggravation is ticked.
    assert incident_counts([fact(category="hate_incident"), fact()])[("hate_aggravated", "all")] == 1


def test_medical_factors_sexual_safety_and_body_worn_camera():
    counts = incident_counts([fact(medical_factors=True), fact(category="sexual_misconduct", sexual_assault=True),
                              fact(body_worn_camera=True, site="South")])
    assert counts[("medical_factors", "yes")] == 1 and counts[("medical_factors", "no")] == 2
    assert counts[("sexual_safety", "sexual_assault")] == 1
    assert counts[("body_worn_camera_by_site", "South")] == 1 and counts[("body_worn_camera", "not_used")] == 2


def test_police_funnel_runs_over_incidents_meeting_the_criteria():
    counts = incident_counts([
        fact(category="physical_assault"),                                           # met, not referred
        fact(category="weapon", police_informed=True),                               # met, referred
        fact(category="weapon", referred_at=T, police_outcome="charged"),            # met, referred, charged
        fact(category="physical_assault", police_informed=True, police_outcome="victim_declined"),
        fact(police_informed=True),                                                  # verbal abuse: outside criteria
    ])
    assert counts[("police", "meeting_criteria")] == 4 and counts[("police", "referred")] == 3
    assert counts[("police", "outcome_known")] == 2 and counts[("police", "referred_outside_criteria")] == 1
    assert counts[("police_outcomes", "charged")] == 1 and counts[("police_outcomes", "victim_declined")] == 1


def test_an_outcome_or_a_crime_reference_means_the_police_were_told():
    # Not ticked as informed, no referral date: an outcome or a crime reference still says they were.
    counts = incident_counts([fact(category="physical_assault", crime_reference="MET/1", police_outcome="charged"),
                              fact(category="weapon", crime_reference="MET/2")])
    assert counts[("police", "meeting_criteria")] == counts[("police", "referred")] == 2
    assert counts[("police", "outcome_known")] == counts[("police_outcomes", "charged")] == 1


def test_days_to_referral_and_its_median():
    facts = [fact(referred_at=T + timedelta(days=d)) for d in (1, 2, 10)] + [fact(police_informed=True)]
    assert days_to_referral(facts) == [1.0, 2.0, 10.0] and middle(days_to_referral(facts)) == 2.0
    # A referral dated before the incident (history from before intake refused them) says nothing.
    assert days_to_referral(facts + [fact(referred_at=T - timedelta(days=30))]) == [1.0, 2.0, 10.0]


def test_sanction_counts_and_red_cards_by_vulnerability():
    homeless = fact(vulnerabilities=("care_leaver", "homelessness"))
    decisions = [decision("yellow_card_1"), decision("yellow_card_2"), decision("red_card_proposed"),
                 decision("red_card_proposed", incident_id=homeless.incident_id), decision("ban_imposed"),
                 decision("red_card_rejected"), decision("rescinded")]
    counts = decision_counts(decisions, {homeless.incident_id: homeless})
    assert counts[("sanctions", "red_card_proposed")] == 2 and counts[("sanctions", "ban_imposed")] == 1
    assert counts[("red_cards_by_vulnerability", "homelessness")] == 1
    assert counts[("red_cards_by_vulnerability", "care_leaver")] == 1
    assert counts[("red_cards_by_vulnerability", "unknown")] == 1


def test_active_bans_at_period_end_exclude_ended_and_rescinded():
    end = datetime(2025, 4, 1, tzinfo=UTC)
    running = decision("ban_imposed", starts_at=T, ends_at=T + timedelta(days=180))
    over = decision("ban_imposed", starts_at=T - timedelta(days=200), ends_at=T - timedelta(days=20))
    rescinded = decision("ban_imposed", starts_at=T, ends_at=T + timedelta(days=180))
    later = decision("ban_imposed", starts_at=end + timedelta(days=1), ends_at=end + timedelta(days=100))
    undo = decision("rescinded", decided=T + timedelta(days=5), sanction_id=rescinded.sanction_id)
    assert active_bans([running, over, rescinded, later, undo], end) == 1
    assert active_bans([running, over, rescinded, later, undo], T + timedelta(days=1)) == 2


MARCH = Window("2025-03", datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))


def _bans_at_end(now: datetime | None) -> int:
    bans = [decision("ban_imposed", T, starts_at=T, ends_at=datetime(2025, 3, 20, tzinfo=UTC)),  # ends this month
            decision("ban_imposed", T, starts_at=T, ends_at=T + timedelta(days=180))]
    counts, *_ = row_counts(Inputs([], bans, {}, now=now), MARCH)
    return counts[("sanctions_at_period_end", "active_bans")]


@pytest.mark.parametrize(("now", "in_force"), [
    (datetime(2025, 3, 15, tzinfo=UTC), 2),  # the month not yet over: both are in force now
    (datetime(2025, 3, 20, tzinfo=UTC), 2),  # its last moment
    (datetime(2025, 3, 25, tzinfo=UTC), 1),
    (datetime(2025, 5, 1, tzinfo=UTC), 1),   # the month over: as at its end
    (None, 1),
])
def test_bans_in_force_at_the_end_of_a_month_not_yet_over_are_those_in_force_now(now, in_force):
    assert _bans_at_end(now) == in_force


def test_repeat_perpetrators_are_identified_subjects_with_two_or_more_incidents():
    facts = [fact(subject_id="sub_1"), fact(subject_id="sub_1"), fact(subject_id="sub_2"),
             fact(subject_id=None), fact(subject_id=None), fact(subject_id="sub_3", withdrawn=True),
             fact(subject_id="sub_3")]
    assert repeat_perpetrators(facts) == 1


def test_days_to_card_counts_cards_only():
    assert days_to_card([decision("yellow_card_1"), decision("ban_imposed"), decision("red_card_proposed")]) == [2.0, 2.0]


def test_days_to_card_leaves_out_a_card_issued_again_after_a_re_derivation():
    # Its incident's first card went out in time; the card re-issued months later says nothing
    # of how quickly cards go out.
    first, again = decision("yellow_card_2"), decision("yellow_card_1", reissued=True)
    assert days_to_card([first, again]) == [2.0]


@pytest.mark.parametrize(("moment", "counted"), [
    (datetime(2025, 3, 31, 22, 59, tzinfo=UTC), False),  # 23:59 BST on 31 March: previous financial year
    (datetime(2025, 3, 31, 23, 0, tzinfo=UTC), True),    # 00:00 BST on 1 April: this one
    (datetime(2026, 3, 31, 22, 59, tzinfo=UTC), True),
    (datetime(2026, 3, 31, 23, 0, tzinfo=UTC), False),
])
def test_financial_year_window_edges(moment, counted):
    window = Window("FY2025-26", datetime(2025, 3, 31, 23, tzinfo=UTC), datetime(2026, 3, 31, 23, tzinfo=UTC))
    counts, *_ = row_counts(Inputs([fact(occurred_at=moment)], [], {}), window)
    assert counts[("incidents", "all")] == (1 if counted else 0)


def test_withdrawn_incidents_count_nowhere():
    gone = replace(fact(category="weapon", subject_id="sub_9"), withdrawn=True)
    assert incident_counts([gone]) == {}
