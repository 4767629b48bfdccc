"""Body-worn camera footage: what rests on it, whether it may be deleted, and when."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reporting.domain.footage import (
    BadTime,
    Footage,
    Refused,
    Status,
    Use,
    check_deletion,
    delete_from,
    status,
    uses,
)
from tests.unit.test_reporting_metrics import fact

T = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
PERIOD = timedelta(days=30)
BEFORE, ON, AFTER = T + PERIOD - timedelta(seconds=1), T + PERIOD, T + PERIOD + timedelta(days=400)
REFERRED = dict(police_informed=True)


def footage(referral_claimed: bool = False, card_stands: bool = False, deleted_at: datetime | None = None,
            **incident) -> Footage:
    return Footage(fact(occurred_at=T, body_worn_camera=True, **incident), referral_claimed, card_stands, deleted_at)


CASES = [
    # (what, footage, now, its uses, its status)
    ("nothing rests on it, within the period", footage(), BEFORE, [], Status.HELD),
    ("nothing rests on it, the day the period ends", footage(), ON, [], Status.DELETE_DUE),
    ("nothing rests on it, long after", footage(), AFTER, [], Status.DELETE_DUE),
    ("the police were informed", footage(**REFERRED), AFTER, [Use.POLICE], Status.EVIDENCE),
    ("a referral date alone", footage(referred_at=T), AFTER, [Use.POLICE], Status.EVIDENCE),
    ("a crime reference alone", footage(crime_reference="CR/1"), AFTER, [Use.POLICE], Status.EVIDENCE),
    ("a police outcome alone", footage(police_outcome="charged"), AFTER, [Use.POLICE], Status.EVIDENCE),
    ("meets the criteria, not yet referred", footage(referral_claimed=True), AFTER, [Use.REFERRAL_PENDING],
     Status.EVIDENCE),
    ("meets the criteria and referred: the police use only", footage(referral_claimed=True, **REFERRED), AFTER,
     [Use.POLICE], Status.EVIDENCE),
    ("a card stands on it", footage(card_stands=True), AFTER, [Use.SANCTION], Status.EVIDENCE),
    ("a card and the police", footage(card_stands=True, **REFERRED), BEFORE, [Use.POLICE, Use.SANCTION],
     Status.EVIDENCE),
    ("withdrawn: its uses are the surviving record's", footage(card_stands=True, referral_claimed=True,
                                                              withdrawn=True, **REFERRED), AFTER, [],
     Status.DELETE_DUE),
    ("withdrawn, within the period", footage(withdrawn=True), BEFORE, [], Status.HELD),
    ("recorded deleted", footage(deleted_at=ON), AFTER, [], Status.DELETED),
    ("recorded deleted, then referred: still deleted, and the use shows", footage(deleted_at=ON, **REFERRED),
     AFTER, [Use.POLICE], Status.DELETED),
]


@pytest.mark.parametrize(("what", "item", "now", "expected_uses", "expected"), CASES, ids=[c[0] for c in CASES])
def test_uses_and_status(what, item, now, expected_uses, expected):
    assert uses(item) == expected_uses
    assert status(item, now, PERIOD) == expected


LATE = T + timedelta(days=40)  # reported 40 days after it happened: past the period from the incident


@pytest.mark.parametrize(("what", "reported_at", "expected"), [
    ("reported the same day: from the incident", T + timedelta(hours=3), T + timedelta(hours=3) + PERIOD),
    ("reported late: from the report, the whole period for a referral or card", LATE, LATE + PERIOD),
    ("no time of report (kept before one was): from the incident", None, T + PERIOD),
    ("a report stamped before the incident (a skewed clock): from the incident", T - timedelta(hours=1),
     T + PERIOD),
])
def test_the_period_runs_from_the_incident_or_its_report_if_later(what, reported_at, expected):
    assert delete_from(fact(occurred_at=T, reported_at=reported_at), PERIOD) == expected


def test_footage_reported_late_is_held_for_the_period_from_its_report_then_falls_due():
    late = footage(reported_at=LATE)
    assert status(late, LATE, PERIOD) == Status.HELD  # not due the moment it arrives
    assert status(late, LATE + PERIOD - timedelta(seconds=1), PERIOD) == Status.HELD
    assert status(late, LATE + PERIOD, PERIOD) == Status.DELETE_DUE
    with pytest.raises(Refused, match=re.escape(f"held until {(LATE + PERIOD).isoformat()}")):
        check_deletion(late, LATE + timedelta(days=1), PERIOD)
    check_deletion(late, LATE + PERIOD, PERIOD)


@pytest.mark.parametrize(("item", "now", "reason"), [
    (footage(**REFERRED), AFTER, "evidence (police)"),
    (footage(referral_claimed=True, card_stands=True), AFTER, "evidence (referral_pending, sanction)"),
    (footage(), BEFORE, "held until 2025-04-09T12:00:00+00:00"),
])
def test_deletion_is_refused_for_evidence_and_within_the_period(item, now, reason):
    with pytest.raises(Refused, match=re.escape(reason)):
        check_deletion(item, now, PERIOD)


@pytest.mark.parametrize("item", [footage(), footage(withdrawn=True, **REFERRED), footage(deleted_at=ON, **REFERRED)])
def test_deletion_is_recorded_once_due_and_a_repeat_is_not_refused(item):
    check_deletion(item, ON, PERIOD)  # no exception


@given(police=st.booleans(), claimed=st.booleans(), card=st.booleans(), withdrawn=st.booleans(),
       deleted=st.booleans(), days=st.integers(min_value=0, max_value=400),
       late=st.none() | st.integers(min_value=0, max_value=400))
def test_evidence_is_never_due_for_deletion_and_deletion_is_allowed_exactly_when_due(
        police, claimed, card, withdrawn, deleted, days, late):
    reported_at = None if late is None else T + timedelta(days=late)
    item = footage(claimed, card, ON if deleted else None, withdrawn=withdrawn, police_informed=police,
                   reported_at=reported_at)
    now = T + timedelta(days=days)
    state = status(item, now, PERIOD)
    assert (state == Status.EVIDENCE) == (not deleted and bool(uses(item)))
    assert state != Status.DELETE_DUE or not uses(item)
    try:
        check_deletion(item, now, PERIOD)
        allowed = True
    except Refused:
        allowed = False
    assert allowed == (state in (Status.DELETE_DUE, Status.DELETED))


@pytest.mark.parametrize("item", [footage(**REFERRED), footage(card_stands=True), footage()])
def test_an_unplanned_deletion_is_recorded_whatever_the_footage_was(item):
    check_deletion(item, BEFORE, PERIOD, unplanned=True)  # evidence or held: it already happened


def test_a_deletion_dated_before_the_incident_is_refused_planned_or_not():
    for unplanned in (False, True):
        with pytest.raises(BadTime):
            check_deletion(footage(), T - timedelta(seconds=1), PERIOD, unplanned)


def test_a_planned_deletion_is_judged_at_the_time_it_happened():
    with pytest.raises(Refused, match="held until"):
        check_deletion(footage(), BEFORE, PERIOD)  # dated within the period, whenever it is recorded
    check_deletion(footage(), ON, PERIOD)


def test_each_notice_has_an_id_of_its_own_that_a_second_round_repeats():
    from services.reporting.publishing import notice_for

    item = footage(**REFERRED)
    hold, again = notice_for("hold", item, PERIOD, AFTER), notice_for("hold", item, PERIOD, BEFORE)
    release = notice_for("release", footage(), PERIOD, AFTER)
    assert hold.event.id == again.event.id != notice_for("release", item, PERIOD, AFTER).event.id
    assert hold.topic == "vanda.footage.v1" and hold.key == str(item.fact.incident_id)
    assert hold.event.data.uses == [Use.POLICE] and release.event.data.delete_from == T + PERIOD
    late = notice_for("release", footage(reported_at=LATE), PERIOD, AFTER)
    assert late.event.data.delete_from == LATE + PERIOD  # the release says when the worklist said


def test_a_hold_sent_again_after_a_release_has_an_id_of_its_own_for_its_round():
    from services.reporting.publishing import notice_for

    item = footage(**REFERRED)
    first, second = notice_for("hold", item, PERIOD, AFTER, 1), notice_for("hold", item, PERIOD, AFTER, 2)
    assert first.event.id == notice_for("hold", item, PERIOD, AFTER).event.id  # as before rounds existed
    assert second.event.id != first.event.id
    assert second.event.id == notice_for("hold", item, PERIOD, BEFORE, 2).event.id
