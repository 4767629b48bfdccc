"""The synthetic feed is valid, reproducible and names no real person."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from schemas.incidents import IncidentReport, nhs_number_is_valid
from vanda import synthetic


def test_every_synthetic_report_is_valid_and_uses_test_range_nhs_numbers():
    reports = [IncidentReport(**r) for r in synthetic.incidents(500, seed=3)]
    numbers = [r.perpetrator.nhs_number for r in reports if r.perpetrator.nhs_number]
    assert numbers and all(n.startswith("999") and nhs_number_is_valid(n) for n in numbers)


def test_feed_is_reproducible_and_has_repeat_perpetrators_and_guards():
    end = datetime(2026, 6, 1, tzinfo=UTC)
    first = list(synthetic.incidents(300, seed=5, end=end))
    assert first == list(synthetic.incidents(300, seed=5, end=end))
    assert first != list(synthetic.incidents(300, seed=6, end=end))
    repeats = Counter(r["perpetrator"]["nhs_number"] for r in first if r["perpetrator"]["nhs_number"])
    assert repeats.most_common(1)[0][1] >= 5
    assert any(r["perpetrator"]["medical_factors"] for r in first)
    assert any(r["perpetrator"]["age_band"] == "under_18" for r in first)
    staff = [s for r in first for s in r["staff_affected"]]
    assert any(s.get("over_7_day_incapacity") for s in staff)
    assert all(s["injured"] for s in staff if s.get("over_7_day_incapacity"))
    reported = [r for r in first if "riddor_reported_at" in r]
    assert reported and all(any(s.get("over_7_day_incapacity") for s in r["staff_affected"]) for r in reported)
    for name in synthetic.CHARACTERISTICS:  # every value of every characteristic, and staff with none
        assert {s[name] for s in staff if name in s} == set(synthetic.CHARACTERISTICS[name])
    assert any(not synthetic.CHARACTERISTICS.keys() & s.keys() for s in staff)
    assert len({r["source_ref"] for r in first}) == 300
