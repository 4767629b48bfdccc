"""A scripted scenario through the running services ends with exactly the expected sanctions."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest

from services.sanctions.handlers import purge
from tests.conftest import bearer, source_key
from tests.factories import RECENT, report
from tests.integration.kafka_reader import poll, read_until

pytestmark = pytest.mark.integration

# Test-range NHS numbers (999...), one per person in the scenario.
BANNED, WITHDRAWN, REJECTED, APPEALED, CHILD = "9990000042", "9990000050", "9990000069", "9990000077", "9990000085"
LAPSED, EXTENDED, UPGRADED, TOO_OLD = "9990001006", "9990001030", "9990001049", "9990001057"
STALE, AGELESS, WAITED, REVISED = "9990002045", "9990003017", "9990004005", "9990006032"
MIGRATIONS = Path(__file__).parents[2] / "services" / "sanctions" / "migrations"


def patient(nhs: str, **extra) -> dict:
    return {"kind": "patient", "nhs_number": nhs, "medical_factors": False, "age_band": "18_to_64"} | extra


def on_day(day: int) -> datetime:
    """A day of a recent month: the live service counts incidents within a year of its clock."""
    return RECENT - timedelta(days=40 - day)


async def send(pipeline, body: dict) -> dict:
    """Report an incident to intake; its receipt."""
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30, headers=source_key(pipeline)) as client:
        response = await client.post("/v1/incidents", json=body)
    assert response.status_code == 202, response.text
    return response.json()


async def submit(pipeline, nhs: str, day: int, **extra) -> dict:
    return await send(pipeline, report(perpetrator=patient(nhs, **extra.pop("perpetrator", {})),
                                       occurred_at=on_day(day).isoformat(), **extra))


async def sanctions_call(pipeline, method: str, path: str, role: str | None = None, subject: str = "tester-1",
                         **body) -> httpx.Response:
    headers = bearer(pipeline, role, subject) if role else {}
    async with httpx.AsyncClient(base_url=pipeline["SANCTIONS_URL"], timeout=30) as client:
        return await client.request(method, path, json=body or None, headers=headers)


async def events_for(pipeline, subject: str, count: int, timeout: float = 60) -> list[dict]:
    records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.sanctions.v1",
                               lambda r: r.key == subject.encode(), count, timeout=timeout)
    return [json.loads(r.value) for r in records]


def kinds(events: list[dict]) -> list[str]:
    return [e["type"].split(".")[-2] + (f":{e['data']['level']}" if "level" in e["data"] else "") for e in events]


async def test_ladder_approval_review_and_expiry(pipeline):
    receipts = [await submit(pipeline, BANNED, day) for day in (1, 2, 3)]
    subject = receipts[0]["subject_id"]
    events = await events_for(pipeline, subject, 3)
    assert kinds(events) == ["yellow_card_issued:1", "yellow_card_issued:2", "red_card_proposed"]
    red = events[2]["data"]["decision_id"]

    yellow = events[0]["data"]["decision_id"]
    refused = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{yellow}/approve", "sanction_approver",
                                   reason="x")
    assert refused.status_code == 409 and refused.json()["errors"][0]["field"] == "sanction_id"
    assert (await sanctions_call(pipeline, "GET", "/v1/sanctions/pending")).status_code == 401
    assert (await sanctions_call(pipeline, "GET", "/v1/sanctions/pending", "board_viewer")).status_code == 403
    pending = (await sanctions_call(pipeline, "GET", "/v1/sanctions/pending", "sanction_approver")).json()["pending"]
    assert {p["sanction_id"]: p["awaiting"] for p in pending}[red] == ["security", "clinical"]

    # A person who acts for other trusts of a region sees neither the proposal nor the subject,
    # and cannot decide on it; one who acts for the trust whose incident it answers can.
    async def as_of(orgs: list[str], method: str, path: str, role: str, **body) -> httpx.Response:
        async with httpx.AsyncClient(base_url=pipeline["SANCTIONS_URL"], timeout=30) as client:
            return await client.request(method, path, json=body or None,
                                        headers=bearer(pipeline, role, "regional-1", orgs=orgs))
    elsewhere = (await as_of(["RXX"], "GET", "/v1/sanctions/pending", "sanction_approver")).json()["pending"]
    here = (await as_of(["rza"], "GET", "/v1/sanctions/pending", "sanction_approver")).json()["pending"]
    assert red not in {p["sanction_id"] for p in elsewhere}
    assert {p["sanction_id"]: p["organisation"] for p in here}[red] == "RZA"
    assert (await as_of(["RXX"], "GET", f"/v1/subjects/{subject}", "correspondence")).status_code == 404
    assert (await as_of(["RZA"], "GET", f"/v1/subjects/{subject}", "correspondence")).status_code == 200
    assert (await as_of(["RXX"], "POST", f"/v1/sanctions/{red}/approve", "sanction_approver",
                        reason="x")).status_code == 404
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:  # the attempt on another trust's card is audited, as any refused decision is
        assert await conn.fetchval("SELECT action FROM sanctions.audit WHERE actor = 'regional-1'"
                                   " AND sanction_id = $1", uuid.UUID(red)) == "approve_refused"
    finally:
        await conn.close()

    unauthenticated = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{red}/approve", reason="x")
    wrong_role = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{red}/approve", "appeals_officer", reason="x")
    not_clinical = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{red}/agree", "sanction_approver", reason="x")
    assert unauthenticated.status_code == 401 and wrong_role.status_code == 403 and not_clinical.status_code == 403
    # The security manager approves; the ban waits for the clinical lead, a different person.
    approved = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{red}/approve", "sanction_approver",
                                    "sec-1", reason="Third incident, investigated")
    assert approved.status_code == 200 and approved.json()["events"] == [
        "uk.nhs.vanda.sanction.red_card_endorsed.v1"]
    pending = (await sanctions_call(pipeline, "GET", "/v1/sanctions/pending", "clinical_lead")).json()["pending"]
    assert {p["sanction_id"]: p["awaiting"] for p in pending}[red] == ["clinical"]
    same_person = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{red}/agree", "clinical_lead", "sec-1",
                                       reason="x")
    assert same_person.status_code == 409 and "two people" in same_person.text
    # Refused, nothing changed; the attempt is kept in the audit, with why it was refused.
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        tried = await conn.fetch("SELECT action, subject_id, reason FROM sanctions.audit WHERE actor = 'sec-1'"
                                 " AND sanction_id = $1 ORDER BY id", uuid.UUID(red))
    finally:
        await conn.close()
    assert [r["action"] for r in tried] == ["approve", "agree_refused"] and tried[1]["subject_id"] == subject
    assert "two people" in tried[1]["reason"]
    agreed = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{red}/agree", "clinical_lead", "doc-1",
                                  reason="Clinically safe: no ongoing treatment that cannot wait")
    assert agreed.status_code == 200 and agreed.json()["events"] == ["uk.nhs.vanda.sanction.ban_imposed.v1"]
    # The answer lost on the way and the request sent again: the same card, nothing done twice.
    again = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{red}/agree", "clinical_lead", "doc-1",
                                 reason="Clinically safe: no ongoing treatment that cannot wait")
    assert again.status_code == 200 and again.json()["replayed"] and again.json()["events"] == []
    assert again.json()["sanction"] == agreed.json()["sanction"] and not agreed.json()["replayed"]
    assert (await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}")).status_code == 401
    assert (await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}", "police_liaison")).status_code == 403
    view = (await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}", "correspondence")).json()
    assert view["card_level"] == "red_active" and view["active_ban"]["restriction"] == "non_emergency_care"
    ends_at = datetime.fromisoformat(view["active_ban"]["ends_at"])

    for now in (ends_at - timedelta(days=28), ends_at):
        run = await sanctions_call(pipeline, "POST", "/v1/scheduler/run", "operations", now=now.isoformat())
        assert run.status_code == 200 and run.json()["events"] >= 1
    # The warnings lapse on the way if their incidents leave the window before the ban ends.
    lapses = sum(datetime.fromisoformat(e["data"]["occurred_at"]) + timedelta(days=365) <= ends_at
                 for e in events[:2])
    events = await events_for(pipeline, subject, 7 + lapses)
    assert [k for k in kinds(events)[3:] if k != "warning_lapsed"] == [
        "red_card_endorsed", "ban_imposed", "ban_review_due", "ban_expired"]
    assert kinds(events).count("warning_lapsed") == lapses
    endorsed, imposed = events[3]["data"], events[4]["data"]
    assert (endorsed["endorsement"], endorsed["endorsed_by"], endorsed["awaiting"]) == ("security", "sec-1", "clinical")
    assert (imposed["reviewer"], imposed["clinical_lead"]) == ("sec-1", "doc-1")
    assert "Third incident" not in json.dumps(events) and "Clinically safe" not in json.dumps(events)
    view = (await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}", "operations")).json()
    assert view["active_ban"] is None and "never" in view["emergency_care"]


async def test_withdrawal_rescinds_and_re_derives_the_ladder(pipeline):
    first = await submit(pipeline, WITHDRAWN, 5)
    second = await submit(pipeline, WITHDRAWN, 6)
    subject = first["subject_id"]
    assert kinds(await events_for(pipeline, subject, 2)) == ["yellow_card_issued:1", "yellow_card_issued:2"]
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30, headers=source_key(pipeline)) as client:
        response = await client.post(f"/v1/incidents/{first['incident_id']}/withdraw",
                                     json={"reason": "entered_in_error"})
    assert response.status_code == 202, response.text
    events = await events_for(pipeline, subject, 5)
    assert kinds(events)[2:] == ["rescinded", "rescinded", "yellow_card_issued:1"]
    assert events[4]["data"]["incident_id"] == second["incident_id"]
    assert {e["data"]["reason"] for e in events[2:4]} == {"incident_withdrawn"}


async def test_a_ban_that_loses_an_incident_but_keeps_its_count_is_published_on_its_new_basis(pipeline):
    a, b, c = [await submit(pipeline, REVISED, day) for day in (1, 2, 4)]
    subject = a["subject_id"]
    proposal = (await events_for(pipeline, subject, 3))[2]["data"]["decision_id"]
    for path, role, who in (("agree", "clinical_lead", "doc-1"), ("approve", "sanction_approver", "tester-1")):
        response = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{proposal}/{path}", role, who, reason="ok")
        assert response.status_code == 200, response.text
    late = await submit(pipeline, REVISED, 3)  # before the ban's incident: evidence for it
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30, headers=source_key(pipeline)) as client:
        response = await client.post(f"/v1/incidents/{a['incident_id']}/withdraw", json={"reason": "entered_in_error"})
    assert response.status_code == 202, response.text

    events = await events_for(pipeline, subject, 11)
    assert kinds(events)[3:] == ["red_card_endorsed", "ban_imposed", "evidence_attached", "rescinded", "rescinded",
                                 "yellow_card_issued:1", "yellow_card_issued:2", "basis_revised"]
    revised = events[-1]["data"]
    assert revised["sanction_id"] == proposal and revised["reason"] == "incident_withdrawn"
    assert revised["evidence_incident_ids"] == [b["incident_id"], late["incident_id"], c["incident_id"]]
    assert revised["no_longer_counted"] == [a["incident_id"]] and revised["basis_rule"] == "ladder.third_or_later"
    view = (await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}", "sanction_approver")).json()
    assert view["card_level"] == "red_active" and view["active_ban"]["sanction_id"] == proposal
    assert view["active_ban"]["evidence"] == revised["evidence_incident_ids"]

    async def recorded():  # reporting read it, rather than dead-lettering a type it did not know
        conn = await asyncpg.connect(pipeline["DATABASE_URL"])
        try:
            return await conn.fetchval("SELECT count(*) FROM reporting.decisions WHERE subject_id = $1"
                                       " AND kind = 'basis_revised' AND sanction_id = $2", subject, uuid.UUID(proposal))
        finally:
            await conn.close()
    assert await poll(recorded, lambda n: n == 1) == 1


async def test_rejected_red_card_and_upheld_appeal(pipeline):
    weapon = await submit(pipeline, REJECTED, 7, category="weapon")
    red = (await events_for(pipeline, weapon["subject_id"], 1))[0]["data"]["decision_id"]
    rejected = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{red}/reject", "sanction_approver",
                                    "lead-2", reason="Disproportionate in context")
    assert rejected.status_code == 200
    assert kinds(await events_for(pipeline, weapon["subject_id"], 2)) == ["red_card_proposed", "red_card_rejected"]

    shouted = await submit(pipeline, APPEALED, 8)
    y1 = (await events_for(pipeline, shouted["subject_id"], 1))[0]["data"]["decision_id"]
    lodged = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{y1}/appeal", "appeals_officer", "pals-1",
                                  grounds="Was not there")
    decided = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{y1}/appeal/decide", "appeals_officer",
                                   "appeals-1", outcome="upheld", reason="CCTV shows someone else")
    assert lodged.status_code == decided.status_code == 200
    assert (await sanctions_call(pipeline, "POST", f"/v1/sanctions/{y1}/appeal/decide", "appeals_officer",
                                 outcome="upheld", reason="again")).status_code == 409
    events = await events_for(pipeline, shouted["subject_id"], 4)
    assert kinds(events) == ["yellow_card_issued:1", "appeal_lodged", "appeal_decided", "rescinded"]
    view = (await sanctions_call(pipeline, "GET", f"/v1/subjects/{shouted['subject_id']}", "appeals_officer")).json()
    assert view["card_level"] == "none"


async def test_a_warning_lapses_when_its_incident_leaves_the_window(pipeline):
    # A day short of a year ago: warned now, lapsing tomorrow. Asking the scheduler about a
    # day on moves no other test's card: none of their incidents is that old.
    occurred = datetime.now(UTC) - timedelta(days=364)
    receipt = await send(pipeline, report(perpetrator=patient(LAPSED), occurred_at=occurred.isoformat()))
    subject = receipt["subject_id"]
    assert kinds(await events_for(pipeline, subject, 1)) == ["yellow_card_issued:1"]
    view = (await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}", "correspondence")).json()
    assert view["card_level"] == "yellow_1"
    [card] = view["cards"]
    assert (card["kind"], card["status"], card["in_force"]) == ("yellow_1", "issued", True)
    assert abs(datetime.fromisoformat(card["lapses_at"]) - (occurred + timedelta(days=365))) < timedelta(seconds=1)

    # The scheduler says so once, for whoever put a marker on the patient's record.
    tomorrow = occurred + timedelta(days=365, minutes=1)
    for _ in range(2):
        run = await sanctions_call(pipeline, "POST", "/v1/scheduler/run", "operations", now=tomorrow.isoformat())
        assert run.status_code == 200, run.text
    events = await events_for(pipeline, subject, 2)
    assert kinds(events) == ["yellow_card_issued:1", "warning_lapsed"]
    lapsed = events[1]["data"]
    assert lapsed["sanction_id"] == events[0]["data"]["decision_id"] and lapsed["rule"] == "warning.lapsed"
    assert abs(datetime.fromisoformat(lapsed["lapsed_at"]) - (occurred + timedelta(days=365))) < timedelta(seconds=1)
    view = (await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}", "correspondence")).json()
    assert [(c["status"], c["in_force"]) for c in view["cards"]] == [("lapsed", False)]
    assert len(await events_for(pipeline, subject, 3, timeout=3)) == 2

    async def counted():
        conn = await asyncpg.connect(pipeline["DATABASE_URL"])
        try:
            return await conn.fetchval("SELECT count(*) FROM reporting.decisions WHERE subject_id = $1"
                                       " AND kind = 'warning_lapsed'", subject)
        finally:
            await conn.close()
    assert await poll(counted, lambda n: n == 1) == 1


async def test_incidents_reported_after_they_left_the_window_get_no_card(pipeline):
    occurred = datetime.now(UTC) - timedelta(days=400)
    receipt = await send(pipeline, report(perpetrator=patient(TOO_OLD), occurred_at=occurred.isoformat()))
    subject = receipt["subject_id"]
    # Nor a ban for a weapon: a backfill of history would put one before a reviewer for each.
    await send(pipeline, report(perpetrator=patient(TOO_OLD), occurred_at=occurred.isoformat(), category="weapon"))

    async def seen():
        return await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}", "correspondence")
    view = (await poll(seen, lambda r: r.status_code == 200 and len(r.json()["incidents"]) == 2)).json()
    assert view["card_level"] == "none" and view["cards"] == [] and view["pending_approvals"] == []
    assert all(i["qualifies"] for i in view["incidents"])
    until = datetime.fromisoformat(view["incidents"][0]["counts_until"])
    assert abs(until - (occurred + timedelta(days=365))) < timedelta(seconds=1)
    assert await events_for(pipeline, subject, 1, timeout=5) == []


async def test_upgrading_gives_cards_issued_before_lapses_existed_their_incident_time(pipeline):
    receipt = await submit(pipeline, UPGRADED, 7)
    await events_for(pipeline, receipt["subject_id"], 1)
    backfill = next(sql for sql in (MIGRATIONS / "0004_warning_lapse.sql").read_text().split(";")
                    if "UPDATE" in sql)
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        where = "FROM sanctions.cards WHERE subject_id = $1"
        stored = await conn.fetchval(f"SELECT occurred_at {where}", receipt["subject_id"])
        await conn.execute("UPDATE sanctions.cards SET occurred_at = NULL WHERE subject_id = $1", receipt["subject_id"])
        await conn.execute(backfill)
        assert await conn.fetchval(f"SELECT occurred_at {where}", receipt["subject_id"]) == stored
    finally:
        await conn.close()
    assert stored == on_day(7)


async def test_an_incident_during_a_ban_proposes_an_extension_that_replaces_it(pipeline):
    async def now_report(**extra) -> dict:
        body = report(perpetrator=patient(EXTENDED), occurred_at=datetime.now(UTC).isoformat(), **extra)
        async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30,
                                     headers=source_key(pipeline)) as client:
            response = await client.post("/v1/incidents", json=body)
        assert response.status_code == 202, response.text
        return response.json()

    subject = (await now_report(category="weapon"))["subject_id"]
    first = (await events_for(pipeline, subject, 1))[0]["data"]["decision_id"]
    agree = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{first}/agree", "clinical_lead", "doc-2",
                                 reason="Clinically safe")
    approve = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{first}/approve", "sanction_approver",
                                   reason="Weapon")
    assert agree.status_code == approve.status_code == 200
    await now_report()  # after the ban began
    events = await events_for(pipeline, subject, 4)
    assert kinds(events) == ["red_card_proposed", "red_card_endorsed", "ban_imposed", "red_card_proposed"]
    assert events[3]["data"]["rule"] == "red.extension" and events[3]["data"]["policy_version"] == "2026.4"
    extension = events[3]["data"]["decision_id"]
    await sanctions_call(pipeline, "POST", f"/v1/sanctions/{extension}/approve", "sanction_approver",
                         reason="Re-offended during the ban")
    approved = await sanctions_call(pipeline, "POST", f"/v1/sanctions/{extension}/agree", "clinical_lead", "doc-2",
                                    reason="Still clinically safe")
    assert approved.json()["events"] == ["uk.nhs.vanda.sanction.ban_expired.v1", "uk.nhs.vanda.sanction.ban_imposed.v1"]
    view = (await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}", "sanction_approver")).json()
    assert view["card_level"] == "red_active" and view["active_ban"]["sanction_id"] == extension
    assert [c["status"] for c in view["cards"]] == ["expired", "active"]


async def test_children_and_staff_are_never_carded(pipeline):
    child = await submit(pipeline, CHILD, 9, perpetrator={"age_band": "under_18"}, category="weapon")
    events = await events_for(pipeline, child["subject_id"], 2, timeout=10)
    assert kinds(events) == ["safeguarding_referral_requested"]


async def test_unknown_sanction_is_404(pipeline):
    response = await sanctions_call(pipeline, "POST", "/v1/sanctions/00000000-0000-0000-0000-000000000000/approve",
                                    "sanction_approver", reason="b")
    assert response.status_code == 404 and response.json()["error"] == "not_found"


async def test_amendment_for_an_unknown_incident_is_dead_lettered_and_consumption_goes_on(pipeline):
    import uuid

    from aiokafka import AIOKafkaProducer

    from schemas.events import encode, envelope
    from schemas.incidents import IncidentAmended
    from tests.factories import incident

    ghost = incident(subject="sub_" + "e" * 40)
    body = ghost.model_dump() | {"revision": 2, "changed_fields": ["harm"], "amended_at": ghost.reported_at}
    body.pop("schema_version")
    event = envelope(IncidentAmended(**body), source="/test", subject=ghost.subject_id)
    producer = AIOKafkaProducer(bootstrap_servers=pipeline["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    try:
        await producer.send_and_wait("vanda.incidents.v1", encode(event), key=ghost.subject_id.encode())
    finally:
        await producer.stop()
    dead = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.incidents.v1.dlq",
                            lambda r: event.id.encode() in (r.value or b""), 1)
    # Sanctions refuses it; reporting takes an amendment alone (it carries the whole incident).
    reasons = {dict(r.headers)["vanda-dlq-error"].decode() for r in dead}
    assert any("not seen" in reason for reason in reasons), reasons
    # The partition moved on: a later incident for a fresh patient is still carded.
    later = await submit(pipeline, "9990000093", 10)
    assert kinds(await events_for(pipeline, later["subject_id"], 1)) == ["yellow_card_issued:1"]
    metrics = (await sanctions_call(pipeline, "GET", "/metrics")).text
    assert 'vanda_dead_letters_total{reason="rejected",topic="vanda.incidents.v1"}' in metrics
    assert str(uuid.UUID(event.data.incident_id.hex)) not in metrics


async def test_a_refused_event_inside_a_batch_is_dead_lettered_alone_and_its_neighbours_applied(pipeline):
    """The batch path applies a whole batch at once; one refused event must roll back only itself."""
    import uuid

    from aiokafka import AIOKafkaProducer

    from schemas.events import encode, envelope
    from schemas.incidents import IncidentAmended
    from tests.factories import incident

    subject = "sub_" + uuid.uuid4().hex + "0" * 8
    first, second = incident(subject=subject, days=1), incident(subject=subject, days=2)
    ghost = incident(subject=subject, days=3)
    body = ghost.model_dump() | {"revision": 2, "changed_fields": ["harm"], "amended_at": ghost.reported_at}
    body.pop("schema_version")
    events = [envelope(first, source="/test", subject=subject),
              envelope(IncidentAmended(**body), source="/test", subject=subject),  # never reported: refused
              envelope(second, source="/test", subject=subject)]
    producer = AIOKafkaProducer(bootstrap_servers=pipeline["KAFKA_BOOTSTRAP_SERVERS"], linger_ms=50)
    await producer.start()
    try:
        # Same key, sent together: one partition, very likely one consumed batch.
        sent = [await producer.send("vanda.incidents.v1", encode(e), key=subject.encode()) for e in events]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()

    assert kinds(await events_for(pipeline, subject, 2)) == ["yellow_card_issued:1", "yellow_card_issued:2"]
    dead = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.incidents.v1.dlq",
                            lambda r: events[1].id.encode() in (r.value or b""), 1)
    assert len(dead) == 1 and b"not seen" in dict(dead[0].headers)["vanda-dlq-error"]
    neighbours = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.incidents.v1.dlq",
                                  lambda r: any(e.id.encode() in (r.value or b"") for e in (events[0], events[2])),
                                  1, timeout=3)
    assert neighbours == []


async def test_retention_clears_old_reasons_from_the_audit_and_nothing_else(pipeline):
    old_at, words = datetime.now(UTC) - timedelta(days=4000), f"Mrs Example's dementia worsened {uuid.uuid4()}"
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        insert = ("INSERT INTO sanctions.audit (at, actor, action, subject_id, reason) VALUES ($1, 'reviewer-9',"
                  " 'appeal', 'sub_' || repeat('a', 40), $2) RETURNING id")
        old, recent = await conn.fetchval(insert, old_at, words), await conn.fetchval(insert, RECENT, words)
        assert (await sanctions_call(pipeline, "POST", "/v1/retention/run")).status_code == 401
        run = await sanctions_call(pipeline, "POST", "/v1/retention/run", "operations", subject="ops-7")
        assert run.status_code == 200 and run.json()["reasons"] >= 1
        rows = {r["id"]: r for r in await conn.fetch("SELECT * FROM sanctions.audit WHERE id = ANY($1)", [old, recent])}
        assert rows[old]["reason"] is None and rows[old]["reason_purged_at"] is not None
        assert (rows[old]["at"], rows[old]["actor"], rows[old]["action"]) == (old_at, "reviewer-9", "appeal")
        assert rows[recent]["reason"] == words and rows[recent]["reason_purged_at"] is None
        assert await conn.fetchval("SELECT count(*) FROM sanctions.audit WHERE actor = 'ops-7'"
                                   " AND action = 'retention_purge'") == 1
        # The purge is the one change the audit allows: nothing else, and not twice.
        for change in ("UPDATE sanctions.audit SET actor = 'someone-else' WHERE id = $1",
                       "UPDATE sanctions.audit SET reason = 'rewritten' WHERE id = $1",
                       "UPDATE sanctions.audit SET reason = NULL, reason_purged_at = now(), actor = 'x' WHERE id = $1",
                       "DELETE FROM sanctions.audit WHERE id = $1"):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(change, old if "'rewritten'" in change else recent)
    finally:
        await conn.close()


async def test_a_backlog_of_reasons_is_cleared_a_chunk_at_a_time_to_the_last_and_nothing_younger(pipeline):
    """Each chunk is its own transaction, so a backlog never outlasts the statement timeout: in
    chunks of 2, every reason past retention still goes, counted once, with one audit row."""
    cutoff, actor = datetime(2001, 6, 1, tzinfo=UTC), f"backlog-{uuid.uuid4().hex[:8]}"
    over, under = cutoff - timedelta(days=150), cutoff + timedelta(days=14)
    pool = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=2)
    try:
        ids = [await pool.fetchval("INSERT INTO sanctions.audit (at, actor, action, subject_id, reason) VALUES ($1,"
                                   " 'reviewer-9', 'appeal', 'sub_' || repeat('b', 40), 'his dementia worsened')"
                                   " RETURNING id", at) for at in [over] * 5 + [under]]
        counts = await purge(pool, cutoff + timedelta(days=30), timedelta(days=30), actor, chunk=2)
        reasons = await pool.fetch("SELECT reason, reason_purged_at FROM sanctions.audit WHERE id = ANY($1)"
                                   " ORDER BY at", ids)
        audited = await pool.fetch("SELECT reason FROM sanctions.audit WHERE actor = $1 AND action = 'retention_purge'",
                                   actor)
    finally:
        await pool.close()
    assert counts == {"reasons": 5}
    assert [r["reason"] for r in reasons] == [None] * 5 + ["his dementia worsened"]
    assert all(r["reason_purged_at"] for r in reasons[:5]) and reasons[5]["reason_purged_at"] is None
    assert len(audited) == 1 and audited[0]["reason"].startswith(str(counts))


async def test_a_decision_on_a_subject_that_moved_on_since_the_reviewer_looked_is_refused(pipeline):
    """A reviewer opens the subject; a weapon incident arrives and joins the proposal as
    evidence; the reviewer's reject, sent with the version they saw, is refused (412): a
    rejection must not close the ladder on an incident nobody weighed."""
    first = await submit(pipeline, STALE, 7, category="weapon")
    subject = first["subject_id"]
    red = (await events_for(pipeline, subject, 1))[0]["data"]["decision_id"]
    looked = await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}", "sanction_approver")
    seen = looked.json()["version"]
    assert looked.headers["ETag"] == f'"{seen}"'
    await submit(pipeline, STALE, 9, category="weapon")

    async def moved_on():
        return (await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}", "sanction_approver")).json()
    now = await poll(moved_on, lambda v: len(v["incidents"]) == 2)
    assert now["version"] != seen

    async def reject(version: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=pipeline["SANCTIONS_URL"], timeout=30) as client:
            headers = bearer(pipeline, "sanction_approver", "lead-4") | {"If-Match": f'"{version}"'}
            return await client.post(f"/v1/sanctions/{red}/reject", json={"reason": "Disproportionate"},
                                     headers=headers)
    stale = await reject(seen)
    assert stale.status_code == 412 and stale.json()["errors"][0]["field"] == "If-Match"
    assert stale.json()["version"] == now["version"] == stale.headers["ETag"].strip('"')
    assert {c["sanction_id"]: c["status"] for c in (await moved_on())["cards"]}[red] == "proposed"  # unchanged
    assert (await reject(now["version"])).status_code == 200


async def test_a_card_waits_for_the_age_band_and_follows_once_it_is_recorded(pipeline):
    # The shipped policy cards nobody whose age band was not recorded: they may be a child.
    no_age = {"kind": "patient", "nhs_number": AGELESS, "medical_factors": False}
    receipt = await send(pipeline, report(perpetrator=no_age, occurred_at=on_day(30).isoformat()))
    subject, incident_id = receipt["subject_id"], receipt["incident_id"]

    async def seen():
        return await sanctions_call(pipeline, "GET", f"/v1/subjects/{subject}", "correspondence")
    view = (await poll(seen, lambda r: r.status_code == 200 and len(r.json()["incidents"]) == 1)).json()
    assert view["card_level"] == "none" and view["cards"] == []
    assert [(i["qualifies"], i["awaiting_age_band"]) for i in view["incidents"]] == [(False, True)]

    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], timeout=30, headers=source_key(pipeline)) as client:
        amended = await client.patch(f"/v1/incidents/{incident_id}", json={"perpetrator": {"age_band": "18_to_64"}})
    assert amended.status_code == 200, amended.text
    (event,) = await events_for(pipeline, subject, 1)
    assert event["type"].endswith("yellow_card_issued.v1") and event["data"]["incident_id"] == incident_id
    view = (await poll(seen, lambda r: r.json()["card_level"] == "yellow_1")).json()
    assert [(i["qualifies"], i["awaiting_age_band"]) for i in view["incidents"]] == [(True, False)]


async def test_a_decision_that_waited_for_the_subject_is_dated_when_it_was_taken_not_when_it_arrived(pipeline):
    """A reviewer's yes that waits behind a batch holding the subject is taken after that
    batch's decisions: the ban it imposes must not start before the moment it was taken."""
    weapon = await submit(pipeline, WAITED, 8, category="weapon")
    subject = weapon["subject_id"]
    red = (await events_for(pipeline, subject, 1))[0]["data"]["decision_id"]
    assert (await sanctions_call(pipeline, "POST", f"/v1/sanctions/{red}/approve", "sanction_approver", "sec-9",
                                 reason="Weapon produced on the ward")).status_code == 200
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        async with conn.transaction():  # as a consumer's batch holds its subjects
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", subject)
            agreeing = asyncio.create_task(sanctions_call(pipeline, "POST", f"/v1/sanctions/{red}/agree",
                                                          "clinical_lead", "doc-9", reason="Clinically safe"))
            await asyncio.sleep(1.5)
            released = datetime.now(UTC)
        agreed = await agreeing
    finally:
        await conn.close()
    assert agreed.status_code == 200, agreed.text
    starts = datetime.fromisoformat(agreed.json()["sanction"]["starts_at"])
    assert starts >= released - timedelta(milliseconds=200), (starts, released)
