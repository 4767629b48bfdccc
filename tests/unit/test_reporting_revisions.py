"""A closed month's figures go out once, and again (a revision) only when they change."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime

import pytest
from pydantic import ValidationError

from schemas.events import decode, encode
from services.reporting.config import ReportingSettings
from services.reporting.domain.board import Disclosure
from services.reporting.domain.revisions import Published, digest, next_published
from services.reporting.handlers import IDS
from services.reporting.publishing import event_for, figures_of
from tests.unit.test_reporting_board import build, sample
from vanda.runtime.settings import explain

NOW = datetime(2025, 3, 5, tzinfo=UTC)


@pytest.mark.parametrize(("last", "figures", "expected"), [
    (None, "a", (Published(1, "a"), True)),  # first time: revision 1 goes out
    (Published(1, "a"), "a", None),  # unchanged: nothing
    (Published(1, "a"), "b", (Published(2, "b"), True)),
    (Published(4, "b"), "c", (Published(5, "c"), True)),
    (Published(3, "c"), "c", None),
    # Published before digests were kept: what went out is unknown, so the figures now become
    # the baseline without going out; a later change is then a revision.
    (Published(1, None), "a", (Published(1, "a"), False)),
])
def test_what_a_month_s_figures_lead_to(last, figures, expected):
    assert next_published(last, figures) == expected


def test_the_digest_is_of_the_figures_whatever_their_order():
    assert digest({"a": 1, "b": {"x": 2, "y": None}}) == digest({"b": {"y": None, "x": 2}, "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})


def test_a_revision_carries_its_number_and_an_id_of_its_own_and_compares_on_the_figures_alone():
    body = build(sample())
    first = event_for(date(2025, 1, 1), "RZA", body, Disclosure(5), NOW)
    later = event_for(date(2025, 1, 1), "RZA", body, Disclosure(5), datetime(2025, 4, 1, tzinfo=UTC), revision=3)
    # The first keeps the id and the shape subscribers knew before revisions existed.
    assert first.event.id == str(uuid.uuid5(IDS, "board-metrics:2025-01-01:RZA"))
    assert "revision" not in json.loads(encode(first.event))["data"]
    assert json.loads(encode(later.event))["data"]["revision"] == 3 and decode(encode(later.event)).data.revision == 3
    assert later.event.id != first.event.id and later.key == first.key == "RZA"
    # Worked out again later, the same figures compare equal: no revision for the clock alone.
    assert digest(figures_of(first)) == digest(figures_of(later))
    fewer = event_for(date(2025, 1, 1), "RZA", build(sample()[1:]), Disclosure(5), NOW)
    assert digest(figures_of(fewer)) != digest(figures_of(first))


def test_revisions_are_off_by_default_and_refused_over_exact_counts():
    assert ReportingSettings().revise_months == 0
    with pytest.raises(ValidationError) as refused:
        ReportingSettings(revise_months=3)
    [problem] = explain(refused.value)
    assert problem.startswith("REPORTING_REVISE_MONTHS: needs REPORTING_ROUNDING_BASE of at least 5 (it is 1)")
    assert ReportingSettings(revise_months=3, rounding_base=5).revise_months == 3
