"""A realistic, seeded feed of synthetic incident reports for demos, tests and benchmarks.

NHS numbers are drawn from the 999 range reserved for testing, so no real person is named.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

SITES = {
    "RZA": ["Riverside Hospital", "Northgate Hospital", "Eastfield Community Centre"],
    "RZB": ["Southbank General", "Hillside Mental Health Unit"],
}
LOCATIONS = ["emergency_department", "ward", "outpatients", "mental_health_unit", "community",
             "patient_home", "ambulance", "public_place", "other"]
CATEGORIES = (["verbal_abuse"] * 8 + ["threatening_behaviour"] * 4 + ["physical_assault"] * 4
              + ["sexual_misconduct", "hate_incident", "damage_to_property", "weapon"])
HARMS = ["none"] * 6 + ["low"] * 3 + ["moderate", "severe"]
KINDS = ["patient"] * 6 + ["relative"] * 2 + ["visitor", "member_of_public", "staff", "unknown"]
STAFF_GROUPS = ["medical_dental", "nursing_midwifery", "allied_health", "ambulance", "healthcare_support",
                "admin_clerical", "estates_security", "other"]
# Rough shares, weighted by repetition; each list includes not stated.
CHARACTERISTICS = {
    "disability": ["disabled"] + ["not_disabled"] * 6 + ["not_stated"] * 2,
    "sex": ["female"] * 7 + ["male"] * 2 + ["not_stated"],
    "gender_identity": ["same_as_registered_at_birth"] * 18 + ["different_from_registered_at_birth", "not_stated"],
    "sexual_orientation": ["heterosexual"] * 16 + ["gay_or_lesbian", "bisexual", "other", "not_stated"],
    "religion": ["christian"] * 8 + ["no_religion"] * 5 + ["muslim"] * 2 + ["hindu", "sikh", "jewish", "buddhist",
                                                                          "other", "not_stated"],
}
ETHNIC_GROUPS = ["asian"] * 2 + ["black"] * 2 + ["mixed", "white", "white", "white", "other", "not_stated"]
AGGRAVATIONS = ["race", "religion", "disability", "sexual_orientation", "transgender_identity", "sex"]


def nhs_number(rng: random.Random) -> str:
    """A test-range NHS number with a valid modulus 11 check digit."""
    while True:
        body = "999" + "".join(str(rng.randrange(10)) for _ in range(6))
        check = 11 - sum(int(d) * w for d, w in zip(body, range(10, 1, -1))) % 11
        if check != 10:
            return body + str(0 if check == 11 else check)


def incidents(count: int, *, seed: int = 7, months: int = 6, people: int | None = None,
              end: datetime | None = None, source_system: str = "synthetic-feed",
              sites: dict[str, list[str]] | None = None) -> Iterator[dict[str, Any]]:
    """Yield `count` incident reports over `months` months; some people offend repeatedly."""
    rng = random.Random(seed)
    sites = sites or SITES
    pool = [nhs_number(rng) for _ in range(people or max(1, count // 3))]
    end = end or datetime.now(UTC).replace(microsecond=0)
    for n in range(count):
        organisation = rng.choice(sorted(sites))
        occurred = end - timedelta(minutes=rng.randrange(months * 30 * 24 * 60))
        report = {
            "source_system": source_system,
            "source_ref": f"{seed}-{n:07d}",
            "occurred_at": occurred.isoformat(),
            "organisation": organisation,
            "site": rng.choice(sites[organisation]),
            "location_type": rng.choice(LOCATIONS),
            "category": (category := rng.choice(CATEGORIES)),
            "harm": rng.choice(HARMS),
            "perpetrator": _perpetrator(rng, pool),
            "staff_affected": [_staff(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))],
            "body_worn_camera_used": rng.random() < 0.3,
            "police": {"informed": rng.random() < 0.25},
            "hate_aggravation": rng.sample(AGGRAVATIONS, 1) if category == "hate_incident" else [],
            "narrative": "Synthetic narrative: stays in intake.",
        }
        if any(s.get("over_7_day_incapacity") for s in report["staff_affected"]) and rng.random() < 0.8:
            # Most reportable incidents reported to HSE, a few after the 15 days allowed.
            report["riddor_reported_at"] = min(occurred + timedelta(days=rng.randrange(3, 25)), end).isoformat()
        yield report


def _perpetrator(rng: random.Random, pool: list[str]) -> dict[str, Any]:
    kind = rng.choice(KINDS)
    identified = kind not in ("unknown", "member_of_public") and rng.random() < 0.9
    return {
        "kind": kind,
        "nhs_number": _who(rng, pool) if identified else None,
        "medical_factors": rng.random() < 0.15,
        "age_band": rng.choice(["18_to_64"] * 7 + ["65_and_over"] * 2 + ["under_18"]),
    }


def _who(rng: random.Random, pool: list[str]) -> str:
    """A third of incidents come from the most frequent 5% of people (a dozen or two each over
    the feed), the rest from anyone: repeat perpetrators are few, but no one person is most of
    a trust's incidents."""
    if rng.random() < 1 / 3:
        return pool[rng.randrange(max(1, len(pool) // 20))]
    return rng.choice(pool)


def _staff(rng: random.Random) -> dict[str, Any]:
    staff = {
        "staff_group": rng.choice(STAFF_GROUPS),
        "ethnic_group": rng.choice(ETHNIC_GROUPS),
        "injured": rng.random() < 0.1,
        "wishes_police_action": rng.random() < 0.2,
    }
    if staff["injured"] and rng.random() < 0.15:  # some injuries keep staff off work over a week (RIDDOR)
        staff["over_7_day_incapacity"] = True
    if rng.random() < 0.6:  # the other characteristics, where the reporting system records them
        staff |= {name: rng.choice(values) for name, values in CHARACTERISTICS.items()}
    return staff
