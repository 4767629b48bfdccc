"""The board reads the period's decisions and the bans still running into it, not the whole history,
and reads them a chunk at a time, converting each chunk off the event loop."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.reporting import adapters
from services.reporting.domain.facts import DecisionFact
from services.reporting.domain.metrics import active_bans
from tests.unit.test_reporting_metrics import fact
from vanda.runtime.db import create_pool

pytestmark = pytest.mark.integration

START, END = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)


def _at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


class History:
    """Decisions for one organisation of its own, so other tests' rows never mix in."""

    def __init__(self) -> None:
        self.organisation = f"T{uuid.uuid4().hex[:8]}"
        self.facts: list[DecisionFact] = []

    def decide(self, kind: str, day: str, sanction_id: uuid.UUID | None = None,
               ends: str | None = None, incident_id: uuid.UUID | None = None) -> DecisionFact:
        decision_id = uuid.uuid4()
        fact = DecisionFact(decision_id=decision_id, kind=kind, sanction_id=sanction_id or decision_id,
                            incident_id=incident_id or uuid.uuid4(), subject_id="sub_history", organisation=self.organisation,
                            site="Riverside", occurred_at=_at(day) - timedelta(days=3), decided_at=_at(day),
                            starts_at=_at(day) if ends else None, ends_at=_at(ends) if ends else None)
        self.facts.append(fact)
        return fact

    async def stored_and_read(self, pipeline) -> list[DecisionFact]:
        """Store the decisions, then read the period as the board does."""
        pool = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                await adapters.save_decisions(conn, self.facts)
            return await adapters.decisions_before(pool, START, END, self.organisation, None)
        finally:
            await pool.close()

    def ban(self, imposed: str, ends: str) -> DecisionFact:
        return self.decide("ban_imposed", imposed, uuid.uuid4(), ends)


async def test_a_month_reads_its_decisions_and_the_bans_running_into_it(pipeline):
    h = History()
    wanted = [
        h.ban("2025-11-01", ends="2026-04-15"),  # in force at the period's end
        h.ban("2025-10-01", ends="2026-03-20"),  # running into the period, over before its end
        running_but_rescinded := h.ban("2025-12-01", ends="2026-05-01"),
        h.decide("rescinded", "2026-01-10", running_but_rescinded.sanction_id),  # ended before the period
        h.ban("2026-03-05", ends="2026-09-01"),  # imposed in the period
        h.decide("yellow_card_1", "2026-03-10"),
    ]
    over = h.ban("2025-06-01", ends="2025-12-01")  # ended before the period: cannot be in force in it
    unwanted = [
        over,
        h.decide("ban_expired", "2025-12-01", over.sanction_id),
        h.decide("yellow_card_1", "2025-05-01"),
        h.decide("rescinded", "2025-07-01"),  # a yellow card withdrawn long ago
        h.decide("yellow_card_2", "2026-04-02"),  # after the period
    ]
    read = await h.stored_and_read(pipeline)

    assert {d.decision_id for d in read} == {d.decision_id for d in wanted}
    assert not {d.decision_id for d in read} & {d.decision_id for d in unwanted}
    # The same bans in force at every instant of the period as with the whole history.
    for at in (START + timedelta(days=n) for n in range(32)):
        assert active_bans(read, at) == active_bans(h.facts, at), at
    assert active_bans(read, END) == 2


async def test_a_card_is_read_as_reissued_where_its_incident_held_one_before(pipeline):
    h = History()
    earlier, within = h.decide("yellow_card_2", "2026-01-05"), h.decide("yellow_card_1", "2026-03-02")
    again_after_earlier = h.decide("yellow_card_1", "2026-03-10", incident_id=earlier.incident_id)
    again_within = h.decide("red_card_proposed", "2026-03-20", incident_id=within.incident_id)
    # Not a card: a ban or evidence naming the incident does not make its card a second one.
    h.decide("ban_imposed", "2026-03-25", incident_id=within.incident_id, ends="2026-09-01")
    evidence = h.decide("evidence_attached", "2026-03-01")
    first_card = h.decide("yellow_card_1", "2026-03-05", incident_id=evidence.incident_id)
    read = await h.stored_and_read(pipeline)

    assert {d.decision_id for d in read if d.reissued} == {again_after_earlier.decision_id, again_within.decision_id}
    assert {d.decision_id for d in read if not d.reissued} == {
        within.decision_id, evidence.decision_id, first_card.decision_id} | {
        d.decision_id for d in h.facts if d.kind == "ban_imposed"}


async def test_a_period_is_read_in_chunks_each_converted_off_the_event_loop(pipeline, monkeypatch):
    h = History()
    for n in range(7):
        h.decide("yellow_card_1", f"2026-03-{n + 2:02d}")
    incidents = [fact(organisation=h.organisation, vulnerabilities=("homelessness",) * (n % 2))
                 for n in range(4)]
    monkeypatch.setattr(adapters, "READ_CHUNK", 3)
    chunks: list[tuple[int, threading.Thread]] = []
    convert_all = adapters._convert_all

    def recording(convert, rows):
        chunks.append((len(rows), threading.current_thread()))
        return convert_all(convert, rows)

    monkeypatch.setattr(adapters, "_convert_all", recording)
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=1)  # with the services' JSON codecs
    try:
        async with pool.acquire() as conn:
            await adapters.save_decisions(conn, h.facts)
            await adapters.save_incidents(conn, incidents)
        read = await adapters.decisions_before(pool, START, END, h.organisation, None)
        related = await adapters.incidents_by_id(pool, [i.incident_id for i in incidents] + [uuid.uuid4()])
    finally:
        await pool.close()

    assert related == {i.incident_id: i for i in incidents}
    assert {d.decision_id: d for d in read} == {d.decision_id: d for d in h.facts}  # every field round-trips
    assert [n for n, _ in chunks] == [3, 3, 1, 3, 1]  # the decisions, then the incidents
    assert all(thread is not threading.main_thread() for _, thread in chunks)
