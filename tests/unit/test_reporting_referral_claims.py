"""Referral claims: a prompt when an incident first meets the criteria, a retraction when it no
longer does (withdrawn, or amended out), a fresh prompt when amended back; per batch, only
what changed the police side's view goes out."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import decode, encode
from schemas.reporting import (
    PoliceReferralRequired,
    PoliceReferralRetracted,
    RetractionReason,
)
from schemas.reporting import ReferralCriterion as C
from services.reporting.domain.police import (
    Claim,
    announcement,
    criteria_met,
    in_force,
    next_claim,
    settled,
)
from services.reporting.handlers import referral_event
from tests.unit.test_reporting_metrics import fact

WEAPON, ASSAULT = [C.WEAPON], [C.PHYSICAL_ASSAULT]


@pytest.mark.parametrize(("claim", "met", "expected"), [
    (None, [], None),  # never met: no claim
    (None, WEAPON, Claim(("weapon",))),
    (Claim(("weapon",)), WEAPON, Claim(("weapon",))),
    # Still met, for another reason: the prompt stands on what it was sent under.
    (Claim(("weapon",)), ASSAULT, Claim(("physical_assault",), prompted_under=("weapon",))),
    (Claim(("weapon",)), [], Claim(("weapon",), meets=False, prompted=False)),  # the criteria last met stay
    (Claim(("weapon",), meets=False, prompted=False), [], Claim(("weapon",), meets=False, prompted=False)),
    (Claim(("weapon",), meets=False, prompted=False), ASSAULT, Claim(("physical_assault",), round=2)),
    # Made before retractions: out of the criteria with its prompt standing. Any event settles it.
    (Claim(("weapon",), meets=False, prompted=True), [], Claim(("weapon",), meets=False, prompted=False)),
    (Claim(("weapon",), meets=False, prompted=True), WEAPON, Claim(("weapon",))),
])
def test_a_claim_follows_the_record(claim, met, expected):
    assert next_claim(claim, met) == expected


@pytest.mark.parametrize(("before", "after", "expected"), [
    (None, None, None),
    (None, Claim(("weapon",)), "required"),
    (None, Claim(("weapon",), meets=False, prompted=False), None),  # reported and withdrawn in one batch
    (Claim(("weapon",)), Claim(("weapon",), meets=False, prompted=False), "retracted"),
    (Claim(("weapon",), meets=False, prompted=False), Claim(("weapon",), round=2), "required"),
    (Claim(("weapon",)), Claim(("weapon",), round=2), None),  # out and back in within one batch
    (Claim(("weapon",)), Claim(("physical_assault",)), None),
])
def test_what_the_topic_must_say(before, after, expected):
    assert announcement(before, after) == expected


def test_settling_a_claim_made_before_retractions_existed():
    standing = Claim(("weapon",), meets=False, prompted=True)
    assert settled(standing) == Claim(("weapon",), meets=False, prompted=False)
    assert announcement(standing, settled(standing)) == "retracted"
    # A claim a rebuild made, that nothing was sent for (round 0): its first prompt.
    fresh = Claim(("weapon",), meets=True, prompted=False, round=0)
    assert settled(fresh) == Claim(("weapon",)) and announcement(fresh, settled(fresh)) == "required"


def _announced(history: list[bool], cuts: set[int]) -> list[str]:
    """Apply meets/not-meets in order, in batches split at `cuts`; what the topic says."""
    said, claim = [], None
    batch_start = None
    for n, meets in enumerate(history):
        if n == 0 or n in cuts:
            if n:
                said += [a] if (a := announcement(batch_start, claim)) else []
            batch_start = claim
        claim = next_claim(claim, WEAPON if meets else [])
    said += [a] if history and (a := announcement(batch_start, claim)) else []
    return said


@given(st.lists(st.booleans(), max_size=12), st.sets(st.integers(1, 11)))
def test_however_events_are_batched_the_topic_alternates_and_ends_where_the_record_does(history, cuts):
    said = _announced(history, cuts)
    # Never two prompts or two retractions in a row, and a retraction only after a prompt.
    assert all(a != b for a, b in zip(said, said[1:], strict=False))
    assert not said or said[0] == "required"
    # The police side ends holding a prompt exactly when the record calls for one.
    assert (said[-1:] == ["required"]) == (history[-1:] == [True])
    # One event at a time says everything; batching only ever leaves some out.
    assert len(said) <= len(_announced(history, set(range(1, len(history)))))


def test_the_events_carry_the_round_in_their_id_and_the_reason():
    withdrawn = fact(category="weapon", withdrawn=True)
    first = referral_event(fact(category="weapon", incident_id=withdrawn.incident_id), Claim(("weapon",)), "required")
    again = referral_event(withdrawn, Claim(("weapon",), round=2), "required")
    retracted = referral_event(withdrawn, Claim(("weapon",), meets=False, prompted=False, round=2), "retracted")
    # The first prompt keeps the id it had before rounds existed, so a re-send still matches.
    assert first.event.id == str(uuid.uuid5(uuid.UUID("5b0c4d1e-9a57-4c1b-8f7e-2a9d3c6b1e40"),
                                            f"police-referral:{withdrawn.incident_id}"))
    assert len({first.event.id, again.event.id, retracted.event.id}) == 3
    assert {first.key, retracted.key} == {str(withdrawn.incident_id)}
    data = decode(encode(retracted.event)).data
    assert isinstance(data, PoliceReferralRetracted) and data.reason == RetractionReason.WITHDRAWN
    assert isinstance(decode(encode(first.event)).data, PoliceReferralRequired)
    out = referral_event(fact(category="verbal_abuse"), Claim(("weapon",), meets=False, prompted=False), "retracted")
    assert out.event.data.reason == RetractionReason.CRITERIA_NO_LONGER_MET


def test_a_standing_prompt_keeps_the_criteria_it_was_sent_under():
    narrowed = frozenset({C.PHYSICAL_ASSAULT})
    standing, retracted = Claim(("weapon",)), Claim(("weapon",), meets=False, prompted=False)
    assert in_force(narrowed, None) == narrowed and in_force(narrowed, retracted) == narrowed
    assert in_force(narrowed, standing) == {C.PHYSICAL_ASSAULT, C.WEAPON}
    # Weapon dropped from the criteria, then an unrelated amendment: the prompt stands.
    weapon = fact(category="weapon")
    assert next_claim(standing, criteria_met(weapon, in_force(narrowed, standing))) == standing
    # Amended to something no criterion covers: retracted, and not prompted again under weapon.
    out = next_claim(standing, criteria_met(fact(), in_force(narrowed, standing)))
    assert out == retracted
    assert next_claim(out, criteria_met(weapon, in_force(narrowed, out))) == retracted


def test_a_standing_prompt_keeps_its_criteria_through_amendments_that_meet_others_meanwhile():
    # Prompted under weapon; weapon is then dropped from the criteria. Amended to a physical
    # assault (still met, under another criterion), then back to the weapon the police were
    # told of: the prompt stood throughout, and nothing is retracted.
    everything, narrowed = frozenset(C), frozenset(C) - {C.WEAPON}

    def amended(claim: Claim | None, category: str, enabled: frozenset[C]) -> Claim | None:
        return next_claim(claim, criteria_met(fact(category=category), in_force(enabled, claim)))

    prompted = amended(None, "weapon", everything)
    assault = amended(prompted, "physical_assault", narrowed)
    back = amended(assault, "weapon", narrowed)
    assert announcement(prompted, assault) is None and announcement(assault, back) is None
    assert back == Claim(("weapon",)) and back.prompted_under == ("weapon",)
    # Amended out of every criterion in force: retracted; a later prompt goes out under what it then meets.
    out = amended(back, "verbal_abuse", narrowed)
    assert announcement(back, out) == "retracted" and out.prompted_under == ()
    again = amended(out, "physical_assault", narrowed)
    assert announcement(out, again) == "required" and again.prompted_under == ("physical_assault",)
