"""`vanda sanctions simulate` against the live sanctions database: a candidate policy weighed
against the running one, reading only."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from services.sanctions.config import DEFAULT_POLICY
from tests.conftest import vanda
from tests.factories import report
from tests.integration.kafka_reader import poll
from tests.integration.test_reporting_board import submit_all
from tests.integration.test_reporting_footage import patient

pytestmark = pytest.mark.integration
SPACED = "9990002029"  # a test-range NHS number: three incidents 100 days apart


async def stored(pipeline, incidents: list[str]) -> tuple[list[str], int, int]:
    """The statuses of the cards on these incidents, decisions made under the candidate policy,
    and every subject sanctions holds."""
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        return ([r["status"] for r in await conn.fetch(
                    "SELECT status FROM sanctions.cards WHERE incident_id = ANY($1::uuid[]) ORDER BY kind",
                    incidents)],
                await conn.fetchval("SELECT count(*) FROM sanctions.decisions WHERE policy_version = 'short-window'"),
                await conn.fetchval("SELECT count(*) FROM sanctions.subjects"))
    finally:
        await conn.close()


def simulate(pipeline, policy: Path, out: Path, *extra: str) -> dict:
    vanda("sanctions", "simulate", "--policy", str(policy), "--json", str(out), *extra, home=Path(pipeline["HOME_DIR"]))
    return json.loads(out.read_text())


async def test_a_shorter_window_is_weighed_against_the_running_policy_without_writing_anything(pipeline, tmp_path):
    now, organisation = datetime.now(UTC), "S" + uuid.uuid4().hex[:4].upper()
    ids = await submit_all(pipeline, [report(occurred_at=(now - timedelta(days=d)).isoformat(), organisation=organisation,
                                             perpetrator=patient(SPACED)) for d in (250, 150, 50)])
    # Sanctions has decided all three: two warnings and a proposal.
    before = await poll(lambda: stored(pipeline, ids), lambda found: len(found[0]) == 3, timeout=60)
    assert before[0] == ["proposed", "issued", "issued"] and before[1] == 0

    same = simulate(pipeline, DEFAULT_POLICY, tmp_path / "same.json")
    assert all(row["current"] == row["candidate"] for row in same["rows"].values()), same
    assert same["rows"]["people"]["current"] == before[2]

    shipped = DEFAULT_POLICY.read_text()
    short = tmp_path / "short.toml"
    short.write_text(re.sub(r"(?m)^window_days = \d+$", "window_days = 90",
                            re.sub(r'(?m)^version = ".*"$', 'version = "short-window"', shipped)))
    weighed = simulate(pipeline, short, tmp_path / "short.json", "--approve-all")
    rows = weighed["rows"]
    assert weighed["candidate"] == "short-window" and weighed["current"] == same["current"] != "short-window"
    # The spaced subject's second and third incidents fall outside a 90-day window: fewer final
    # warnings and proposals, as many people warned, and some warnings lapse.
    assert rows["yellow_card_2"]["candidate"] < rows["yellow_card_2"]["current"]
    assert rows["red_card_proposed"]["candidate"] < rows["red_card_proposed"]["current"]
    assert rows["people_warned"]["candidate"] >= rows["people_warned"]["current"]
    assert rows["warning_lapsed"]["candidate"] > rows["warning_lapsed"]["current"]
    proposals = rows["red_card_proposed"]["current"] + rows["red_card_proposed:red.extension"]["current"]
    assert rows["ban_imposed"]["current"] == proposals  # every proposal approved
    # For that subject's trust alone the figures are exact: under a 90-day window each
    # incident is a first warning, and each lapses 90 days on (the last one not yet).
    trust = simulate(pipeline, short, tmp_path / "trust.json", "--organisation", organisation.lower())["rows"]
    assert {k: (v["current"], v["candidate"]) for k, v in trust.items() if v["current"] or v["candidate"]} == {
        "people": (1, 1), "people_warned": (1, 1), "people_proposed_a_ban": (1, 0),
        "yellow_card_1": (1, 3), "yellow_card_2": (1, 0), "red_card_proposed": (1, 0), "warning_lapsed": (0, 2),
        "red_card_proposed (patient)": (1, 0), "red_card_proposed (none)": (1, 0)}
    assert await stored(pipeline, ids) == before  # read only: no card, decision or subject written
