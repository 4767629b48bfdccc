"""Builders for valid contracts, so each test states only what it varies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.incidents import IncidentReported

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
# The live services read the real clock, and the card policy counts only incidents within a
# rolling year of it: reports sent to them happen this long ago, whenever the suite runs.
RECENT = datetime.now(UTC).replace(hour=9, minute=30, second=0, microsecond=0) - timedelta(days=60)
TEST_NHS_NUMBER = "9434765919"  # valid check digit


def report(**overrides: Any) -> dict[str, Any]:
    """A valid incident report as an upstream system would POST it."""
    body: dict[str, Any] = {
        "source_system": "datix",
        "source_ref": f"ref-{uuid.uuid4()}",
        "occurred_at": RECENT.isoformat(),
        "organisation": "RZA",
        "site": "Riverside Hospital",
        "location_type": "ward",
        "category": "verbal_abuse",
        "harm": "none",
        "perpetrator": {"kind": "patient", "nhs_number": TEST_NHS_NUMBER, "medical_factors": False,
                        "age_band": "18_to_64"},
        "staff_affected": [{"staff_group": "nursing_midwifery", "ethnic_group": "black",
                            "injured": False, "wishes_police_action": False}],
        "body_worn_camera_used": False,
        "narrative": "He shouted at the nurse.",
    }
    body.update(overrides)
    return body


def incident(subject: str | None = "sub_" + "a" * 40, *, days: float = 0, kind: str = "patient",
             category: str = "verbal_abuse", harm: str = "none", medical_factors: bool = False,
             age_band: str | None = "18_to_64", site: str = "Riverside Hospital") -> IncidentReported:
    """An IncidentReported event `days` after T0."""
    return IncidentReported(
        incident_id=uuid.uuid4(),
        subject_id=subject,
        source_system="datix",
        reported_at=T0 + timedelta(days=days),
        occurred_at=T0 + timedelta(days=days),
        organisation="RZA",
        site=site,
        location_type="ward",
        category=category,
        harm=harm,
        perpetrator={"kind": kind, "identified": subject is not None, "medical_factors": medical_factors,
                     "age_band": age_band},
        staff_affected=[{"staff_group": "nursing_midwifery", "ethnic_group": "asian"}],
        body_worn_camera_used=True,
    )
