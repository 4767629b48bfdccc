"""Helpers for sanctions domain tests: records, a feeder, and a compact summary."""

from __future__ import annotations

import uuid
from datetime import timedelta

from services.sanctions.domain import IncidentRecord, IncidentSeen, Policy, SubjectState, decide
from tests.factories import T0

POLICY = Policy(version="test-1")
SUBJECT = "sub_" + "b" * 40


def record(days: float = 0, **kw) -> IncidentRecord:
    """An adult patient's verbal abuse `days` after T0, unless told otherwise."""
    fields = {"incident_id": uuid.uuid4(), "seq": 0, "occurred_at": T0 + timedelta(days=days), "kind": "patient",
              "medical_factors": False, "age_band": "18_to_64", "category": "verbal_abuse", "harm": "none",
              "organisation": "RZA", "site": "Riverside Hospital"}
    return IncidentRecord(**(fields | kw))


def feed(inputs, state=None, policy=POLICY, now=T0):
    """Apply inputs in order; return final state and every decision."""
    state = state or SubjectState(subject_id=SUBJECT)
    decisions = []
    for item in inputs:
        if isinstance(item, IncidentRecord):
            item = IncidentSeen(item)
        state, new = decide(state, item, policy, now)
        decisions += new
    return state, decisions


def names(decisions) -> list[str]:
    """'yellow_card_issued:1', 'red_card_proposed', ... for readable assertions."""
    out = []
    for d in decisions:
        name = d.event_type.split(".")[-2]
        out.append(f"{name}:{d.level}" if hasattr(d, "level") else name)
    return out
