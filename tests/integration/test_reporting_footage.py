"""The body-worn camera footage worklist on the live services: what rests on each incident's
footage, what is due for deletion, and recording a deletion."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from services.reporting import footage_store, gauges, publishing
from tests.conftest import bearer
from tests.factories import report
from tests.integration.kafka_reader import poll, read_until
from tests.integration.test_reporting_board import audited, call, submit_all
from vanda.runtime.db import ROUND_LOCKS, create_pool

pytestmark = pytest.mark.integration
UNKNOWN = {"kind": "unknown"}
# Test-range NHS numbers, one per person.
CARDED, REJECTED, RELEASED, EVIDENCED = "9990002002", "9990002010", "9990002037", "9990002118"


def patient(nhs: str) -> dict:
    return {"kind": "patient", "nhs_number": nhs, "medical_factors": False, "age_band": "18_to_64"}


async def footage(pipeline, who: str = "footage-1", as_reported: bool = False, **params) -> httpx.Response:
    """The worklist; for one site, first dated as though each incident there had been reported
    when it happened, unless `as_reported`."""
    if "site" in params and not as_reported:
        await reported_when_they_happened(pipeline, params["site"])
    return await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/footage", None,
                      bearer(pipeline, "footage_officer", who), **params)


async def reported_when_they_happened(pipeline, site: str) -> None:
    """Intake stamps each report with its own clock, and footage's period runs from the report
    where that came later (footage.delete_from): an incident submitted here 40 days after it
    happened is held 30 days more. The tests of what falls due after the period date their
    site's reports back to the incidents, as though each was reported at once; the worklist's
    polls repeat it, since an amendment projects the time of report again."""
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        await conn.execute("UPDATE reporting.incidents SET reported_at = occurred_at WHERE site = $1"
                           " AND reported_at IS DISTINCT FROM occurred_at", site)
    finally:
        await conn.close()


async def deleted(pipeline, incident_id: str, role: str = "footage_officer", who: str = "footage-1",
                  body: dict | None = None) -> httpx.Response:
    return await call(pipeline, "POST", pipeline["REPORTING_URL"], f"/v1/footage/{incident_id}/deleted", body,
                      bearer(pipeline, role, who))


async def test_footage_worklist_keeps_evidence_and_records_deletions_once_due(pipeline):
    site = f"Camera site {uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    old, recent = (now - timedelta(days=60)).isoformat(), (now - timedelta(days=1)).isoformat()
    common = dict(site=site, body_worn_camera_used=True)
    [plain, police, pending, withdrawn] = await submit_all(pipeline, [
        report(**common, occurred_at=old, perpetrator=UNKNOWN),
        report(**common, occurred_at=old, perpetrator=UNKNOWN, police={"informed": True}),
        report(**common, occurred_at=old, perpetrator=UNKNOWN, category="physical_assault", harm="low"),
        report(**common, occurred_at=old, perpetrator=UNKNOWN, police={"informed": True}),
    ])
    [held] = await submit_all(pipeline, [report(**common, occurred_at=recent, perpetrator=UNKNOWN)])
    [no_camera] = await submit_all(pipeline, [report(site=site, occurred_at=old, perpetrator=UNKNOWN)])
    [carded] = await submit_all(pipeline, [report(**common, occurred_at=old, perpetrator=patient(CARDED))])
    # Three for one person: two warnings, then a red card a reviewer declines.
    ladder = await submit_all(pipeline, [report(**common, occurred_at=(now - timedelta(days=50 - d)).isoformat(),
                                                perpetrator=patient(REJECTED)) for d in range(3)])
    # Four for another: two warnings, a red card still waiting, and the fourth attached to it as evidence.
    attached = await submit_all(pipeline, [report(**common, occurred_at=(now - timedelta(days=50 - d)).isoformat(),
                                                  perpetrator=patient(EVIDENCED)) for d in range(4)])
    assert (await call(pipeline, "POST", pipeline["INTAKE_URL"], f"/v1/incidents/{withdrawn}/withdraw")).status_code \
        == 202

    red = await red_card_on(pipeline, ladder[2])
    declined = await call(pipeline, "POST", pipeline["SANCTIONS_URL"], f"/v1/sanctions/{red}/reject",
                          {"reason": "not proportionate"}, bearer(pipeline, "sanction_approver", "security-1"))
    assert declined.status_code == 200, declined.text

    expected = {plain: ("delete_due", []), police: ("evidence", ["police"]),
                pending: ("evidence", ["referral_pending"]), withdrawn: ("delete_due", []), held: ("held", []),
                carded: ("evidence", ["sanction"]), ladder[0]: ("evidence", ["sanction"]),
                ladder[1]: ("evidence", ["sanction"]), ladder[2]: ("delete_due", []),
                **dict.fromkeys(attached, ("evidence", ["sanction"]))}

    def as_expected(r: httpx.Response) -> bool:
        return {i["incident_id"]: (i["status"], i["uses"]) for i in r.json()["footage"]} == expected
    listed = (await poll(lambda: footage(pipeline, site=site), as_expected, timeout=90)).json()["footage"]
    assert no_camera not in {i["incident_id"] for i in listed}
    assert [i["occurred_at"] for i in listed] == sorted(i["occurred_at"] for i in listed)
    first = next(i for i in listed if i["incident_id"] == plain)
    assert datetime.fromisoformat(first["delete_from"]) == datetime.fromisoformat(old) + timedelta(days=30)
    assert first["deleted_at"] is None and "subject_id" not in first

    # Each filter gives exactly the incidents the whole list gives that status, in the same order.
    for wanted in ("evidence", "held", "delete_due", "deleted"):
        page = (await footage(pipeline, site=site, status=wanted)).json()["footage"]
        assert [i["incident_id"] for i in page] == [i["incident_id"] for i in listed if i["status"] == wanted]

    # Deletion is recorded only when due; evidence and footage within its period are refused, saying why.
    for incident_id, why in ((police, "evidence (police)"), (carded, "evidence (sanction)"), (held, "held until")):
        refused = await deleted(pipeline, incident_id)
        assert refused.status_code == 409 and why in refused.text, refused.text
    done = await deleted(pipeline, plain)
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "deleted" and done.json()["deleted_recorded_by"] == "footage-1"
    again = await deleted(pipeline, plain, who="footage-2")
    assert again.status_code == 200 and again.json()["deleted_at"] == done.json()["deleted_at"]
    assert again.json()["deleted_recorded_by"] == "footage-1"
    assert await audited(pipeline, "footage-1", plain) == 1 and await audited(pipeline, "footage-2", plain) == 0
    remaining = (await footage(pipeline, site=site, status="delete_due")).json()["footage"]
    assert [i["incident_id"] for i in remaining] == [withdrawn, ladder[2]]
    gone = (await footage(pipeline, site=site, status="deleted")).json()["footage"]
    assert [(i["incident_id"], i["deleted_recorded_by"]) for i in gone] == [(plain, "footage-1")]

    # A later referral of deleted footage still shows the use, so the liaison knows it is gone.
    referred = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], f"/v1/incidents/{plain}",
                          {"police": {"informed": True}})
    assert referred.status_code == 200, referred.text
    now_used = await poll(lambda: footage(pipeline, site=site, status="deleted"),
                          lambda r: r.json()["footage"][0]["uses"] == ["police"], timeout=60)
    assert now_used.json()["footage"][0]["status"] == "deleted"

    for unknown in (no_camera, str(uuid.uuid4())):
        assert (await deleted(pipeline, unknown)).status_code == 404

    # Footage already gone (lost, or deleted by the camera system) is recorded whatever it was:
    # marked unplanned, and the audit says it was evidence. Its time is checked.
    for when in ((now - timedelta(days=61)).isoformat(), (now + timedelta(days=1)).isoformat()):
        refused = await deleted(pipeline, police, body={"unplanned": True, "deleted_at": when})
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "deleted_at", refused.text
    lost = await deleted(pipeline, police, who="footage-3",
                         body={"unplanned": True, "deleted_at": (now - timedelta(days=2)).isoformat()})
    assert lost.status_code == 200, lost.text
    assert (lost.json()["status"], lost.json()["deletion_unplanned"], lost.json()["uses"]) == ("deleted", True,
                                                                                              ["police"])
    assert await audited(pipeline, "footage-3", f"incident_id={police} was=evidence") == 1
    # A planned deletion is judged at the time it says it happened: within the period, refused.
    early = await deleted(pipeline, held, body={"deleted_at": (now - timedelta(hours=1)).isoformat()})
    assert early.status_code == 409 and "held until" in early.text


async def test_footage_of_an_incident_reported_late_is_held_for_the_period_from_its_report(pipeline):
    site, period = f"Camera late {uuid.uuid4().hex[:8]}", timedelta(days=30)
    submitted = datetime.now(UTC)
    [late] = await submit_all(pipeline, [report(site=site, occurred_at=(submitted - timedelta(days=60)).isoformat(),
                                                perpetrator=UNKNOWN, body_worn_camera_used=True)])
    [item] = (await poll(lambda: footage(pipeline, site=site, as_reported=True),
                         lambda r: len(r.json()["footage"]) == 1, timeout=90)).json()["footage"]
    # Sixty days after it happened, but reported just now: the whole period runs from the report.
    ends = datetime.fromisoformat(item["delete_from"])
    assert item["status"] == "held" and submitted + period <= ends <= datetime.now(UTC) + period, item
    refused = await deleted(pipeline, late)
    assert refused.status_code == 409 and "held until" in refused.text, refused.text

    # No release goes to the camera system, nor is it counted due, until the period has run.
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=2)
    try:
        async def released_by(now: datetime) -> bool:
            waiting = await footage_store.unannounced(pool, "release", now - period, 1_000_000)
            return any(str(f.fact.incident_id) == late for f, _ in waiting)

        async def due_by(now: datetime) -> bool:
            listed = await footage_store.footage(pool, "delete_due", None, site, None, 10, now - period)
            return [str(f.fact.incident_id) for f, _ in listed] == [late]
        assert not await released_by(datetime.now(UTC)) and not await due_by(datetime.now(UTC))
        assert await released_by(ends) and await due_by(ends)
        assert not await due_by(ends - timedelta(seconds=1))
    finally:
        await pool.close()


async def red_card_on(pipeline, incident_id: str) -> str:
    """The id of the red card proposed on an incident, once sanctions has decided it."""
    records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.sanctions.v1",
                               lambda r: b"red_card_proposed" in r.value and incident_id.encode() in r.value, 1,
                               timeout=60)
    return json.loads(records[0].value)["data"]["decision_id"]


async def test_the_footage_worklist_pages_and_needs_the_footage_officer_role(pipeline):
    site = f"Camera pages {uuid.uuid4().hex[:8]}"
    old = (datetime.now(UTC) - timedelta(days=45)).isoformat()
    ids = await submit_all(pipeline, [report(site=site, occurred_at=old, perpetrator=UNKNOWN,
                                             body_worn_camera_used=True) for _ in range(5)])
    whole = (await poll(lambda: footage(pipeline, site=site), lambda r: len(r.json()["footage"]) == 5,
                        timeout=90)).json()["footage"]
    assert sorted(i["incident_id"] for i in whole) == sorted(ids)
    pages, after = [], None
    while True:
        body = (await footage(pipeline, site=site, limit=2, **({"after": after} if after else {}))).json()
        pages.append([i["incident_id"] for i in body["footage"]])
        if (after := body["next"]) is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1] and sum(pages, []) == [i["incident_id"] for i in whole]

    url = pipeline["REPORTING_URL"]
    assert (await call(pipeline, "GET", url, "/v1/footage")).status_code == 401
    for role in ("operations", "police_liaison", "board_viewer"):
        assert (await call(pipeline, "GET", url, "/v1/footage", None, bearer(pipeline, role))).status_code == 403
        assert (await deleted(pipeline, ids[0], role=role)).status_code == 403
    for bad, field in (({"status": "kept"}, "status"), ({"after": "nope"}, "after"), ({"limit": 0}, "limit")):
        refused = await footage(pipeline, site=site, **bad)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, refused.text
    assert (await call(pipeline, "POST", url, "/v1/footage/not-a-uuid/deleted", None,
                       bearer(pipeline, "footage_officer"))).status_code == 422


async def test_the_footage_gauges_count_what_the_worklist_says_is_due(pipeline):
    old, site = datetime.now(UTC) - timedelta(days=90), f"Camera gauge {uuid.uuid4().hex[:8]}"
    await submit_all(pipeline, [report(site=site, occurred_at=old.isoformat(), perpetrator=UNKNOWN,
                                       body_worn_camera_used=True)])
    pool = await asyncpg.create_pool(pipeline["DATABASE_URL"], min_size=1, max_size=2)
    try:
        async def both() -> tuple[list[dict], float, float]:
            now = datetime.now(UTC)
            await reported_when_they_happened(pipeline, site)
            due = await whole_worklist(pipeline, status="delete_due")
            await gauges.refresh_footage(pool, now, timedelta(days=30), counted={})
            return (due, REGISTRY.get_sample_value("vanda_footage_delete_due"),
                    REGISTRY.get_sample_value("vanda_footage_oldest_delete_due_age_seconds"))
        # The gauges count as at the last midnight: footage due since then joins at the next.
        due, count, overdue = await poll(both, lambda r: len(by_midnight(r[0])) == r[1] and any(
            datetime.fromisoformat(i["occurred_at"]) == old for i in r[0]), timeout=90)
    finally:
        await pool.close()
    midnight = gauges.day_start(datetime.now(UTC))
    oldest = min(datetime.fromisoformat(i["delete_from"]) for i in by_midnight(due))
    assert count == len(by_midnight(due)) >= 1
    assert overdue == (midnight - oldest).days * 86400 and overdue % 86400 == 0


def by_midnight(due: list[dict]) -> list[dict]:
    midnight = gauges.day_start(datetime.now(UTC))
    return [i for i in due if datetime.fromisoformat(i["delete_from"]) <= midnight]


async def whole_worklist(pipeline, **params) -> list[dict]:
    items, after = [], None
    while True:
        body = (await footage(pipeline, limit=1000, **params, **({"after": after} if after else {}))).json()
        items += body["footage"]
        if (after := body["next"]) is None:
            return items


async def announce(pipeline, rounds: int = 1) -> None:
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=2)  # with the services' JSON codecs
    try:
        for _ in range(rounds):
            await publishing.announce_footage(pool, timedelta(days=30), datetime.now(UTC))
    finally:
        await pool.close()


async def test_footage_notices_go_out_once_per_incident_on_the_footage_topic(pipeline):
    site = f"Camera notices {uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    old, recent = (now - timedelta(days=40)).isoformat(), (now - timedelta(days=2)).isoformat()
    common = dict(site=site, perpetrator=UNKNOWN, body_worn_camera_used=True)
    [evidence, due, held] = await submit_all(pipeline, [
        report(**common, occurred_at=old, police={"informed": True}),
        report(**common, occurred_at=old),
        report(**common, occurred_at=recent)])
    await poll(lambda: footage(pipeline, site=site),
               lambda r: sorted(i["status"] for i in r.json()["footage"]) == ["delete_due", "evidence", "held"],
               timeout=90)
    await announce(pipeline, rounds=2)  # a second round announces nothing again
    ours = {i.encode() for i in (evidence, due, held)}
    records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.footage.v1", lambda r: r.key in ours, 2,
                               timeout=30)
    # Nothing more comes: no second notice, and none for footage still held.
    again = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.footage.v1", lambda r: r.key in ours, 3,
                             timeout=5)
    assert len(again) == 2
    notices = sorted((r.key.decode(), json.loads(r.value)["type"].split(".")[-2]) for r in records)
    assert notices == sorted([(evidence, "footage_hold_required"), (due, "footage_deletion_due")])
    hold = next(json.loads(r.value)["data"] for r in records if r.key == evidence.encode())
    assert hold["uses"] == ["police"] and hold["site"] == site and "subject_id" not in hold


async def test_one_footage_round_runs_at_a_time_across_replicas(pipeline):
    site = f"Camera alone {uuid.uuid4().hex[:8]}"
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=3)
    other = await asyncpg.connect(pipeline["DATABASE_URL"])  # another replica's session
    try:
        async def noticed(incident: str) -> int:
            return await pool.fetchval("SELECT count(*) FROM reporting.footage_notices WHERE incident_id = $1",
                                       uuid.UUID(incident))

        # Another replica's round under way (its lock, as `alone` takes it): every other round,
        # this service's own timer's too, gives way at once rather than announcing beside it.
        async with other.transaction():
            assert await other.fetchval("SELECT pg_try_advisory_xact_lock($1, hashtext($2))", ROUND_LOCKS,
                                        "footage-notices")
            [incident] = await submit_all(pipeline, [report(site=site, perpetrator=UNKNOWN, occurred_at=old,
                                                            body_worn_camera_used=True)])
            await poll(lambda: footage(pipeline, site=site, status="delete_due"),
                       lambda r: len(r.json()["footage"]) == 1, timeout=90)
            assert await publishing.announce_footage(pool, timedelta(days=30), datetime.now(UTC)) == 0
            assert await noticed(incident) == 0
        await publishing.announce_footage(pool, timedelta(days=30), datetime.now(UTC))
        assert await noticed(incident) == 1
    finally:
        await other.close()
        await pool.close()


async def test_footage_held_released_and_evidence_again_is_held_again_once(pipeline):
    site = f"Camera rounds {uuid.uuid4().hex[:8]}"
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    [incident] = await submit_all(pipeline, [report(site=site, perpetrator=patient(RELEASED), occurred_at=old,
                                                    body_worn_camera_used=True)])
    path = f"/v1/incidents/{incident}"

    async def now_is(status: str) -> None:
        await poll(lambda: footage(pipeline, site=site, status=status), lambda r: len(r.json()["footage"]) == 1,
                   timeout=90)
        await announce(pipeline, rounds=2)

    await now_is("evidence")  # the first warning cites it: hold
    # A clinical cause is found: sanctions rescinds the warning and nothing rests on the footage.
    amended = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], path,
                         {"perpetrator": {"medical_factors": True}}, {"If-Match": '"1"'})
    assert amended.status_code == 200, amended.text
    await now_is("delete_due")  # release
    # Before the camera system acts, the police are told: evidence again, so a second hold.
    amended = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], path,
                         {"police": {"informed": True}}, {"If-Match": '"2"'})
    assert amended.status_code == 200, amended.text
    await now_is("evidence")

    def mine(record) -> bool:
        return record.key == incident.encode()
    records = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.footage.v1", mine, 3, timeout=30)
    again = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.footage.v1", mine, 4, timeout=5)
    assert len(again) == 3
    events = [json.loads(r.value) for r in records]
    assert [e["type"].split(".")[-2] for e in events] == [
        "footage_hold_required", "footage_deletion_due", "footage_hold_required"]
    assert events[0]["data"]["uses"] == ["sanction"] and events[2]["data"]["uses"] == ["police"]
    assert events[0]["id"] != events[2]["id"]


async def retract(pipeline, incident_id: str, body: dict | None, role: str = "footage_officer",
                  who: str = "footage-5") -> httpx.Response:
    return await call(pipeline, "POST", pipeline["REPORTING_URL"], f"/v1/footage/{incident_id}/deleted/retract",
                      body, bearer(pipeline, role, who))


async def test_a_deletion_recorded_in_error_is_retracted_and_kept_among_the_retractions(pipeline):
    site = f"Camera retraction {uuid.uuid4().hex[:8]}"
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    [incident] = await submit_all(pipeline, [report(site=site, perpetrator=UNKNOWN, body_worn_camera_used=True,
                                                    occurred_at=old)])
    await poll(lambda: footage(pipeline, site=site, status="delete_due"), lambda r: len(r.json()["footage"]) == 1,
               timeout=90)
    # Recorded deleted, by a slip of the officer's; the police are told afterwards.
    assert (await deleted(pipeline, incident, who="footage-4")).status_code == 200
    amended = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], f"/v1/incidents/{incident}",
                         {"police": {"informed": True}}, {"If-Match": '"1"'})
    assert amended.status_code == 200, amended.text
    await poll(lambda: footage(pipeline, site=site, status="deleted"),
               lambda r: r.json()["footage"][0]["uses"] == ["police"], timeout=60)

    assert (await retract(pipeline, incident, {"reason": "wrong"}, role="police_liaison")).status_code == 403
    # An officer who acts for other trusts of a region finds no such record to retract.
    elsewhere = await call(pipeline, "POST", pipeline["REPORTING_URL"], f"/v1/footage/{incident}/deleted/retract",
                           {"reason": "wrong"}, bearer(pipeline, "footage_officer", "footage-6", orgs=["RXX"]))
    assert elsewhere.status_code == 404
    missing = await retract(pipeline, incident, {})
    assert missing.status_code == 422 and missing.json()["errors"][0]["field"] == "reason", missing.text
    done = await retract(pipeline, incident, {"reason": "recorded against the wrong incident"})
    assert done.status_code == 200, done.text
    item = done.json()
    assert (item["status"], item["uses"], item["deleted_at"]) == ("evidence", ["police"], None)
    assert (item["retracted"]["recorded_by"], item["retracted"]["retracted_by"]) == ("footage-4", "footage-5")
    assert [i["incident_id"] for i in (await footage(pipeline, site=site, status="evidence")).json()["footage"]] \
        == [incident]
    assert await audited(pipeline, "footage-5", f"incident_id={incident}") == 1
    assert (await retract(pipeline, incident, {"reason": "again"})).status_code == 404

    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        kept = await conn.fetch("SELECT recorded_by, retracted_by, reason FROM reporting.footage_retractions"
                                " WHERE incident_id = $1", uuid.UUID(incident))
        assert [tuple(r) for r in kept] == [("footage-4", "footage-5", "recorded against the wrong incident")]
        with pytest.raises(asyncpg.RaiseError, match="append-only"):
            await conn.execute("DELETE FROM reporting.footage_retractions WHERE incident_id = $1", uuid.UUID(incident))
    finally:
        await conn.close()
    # It can be recorded deleted anew, as what it is now: evidence, so only as unplanned.
    assert (await deleted(pipeline, incident)).status_code == 409
    assert (await deleted(pipeline, incident, body={"unplanned": True})).json()["status"] == "deleted"


async def test_retention_clears_old_retraction_reasons_from_the_retractions_and_the_audit_and_nothing_else(pipeline):
    """Why a deletion was retracted is free text that can name someone: kept for the retention
    period (10 years by default), then cleared from both places it is written, once."""
    old_at, recent_at = datetime.now(UTC) - timedelta(days=4000), datetime.now(UTC) - timedelta(days=30)
    words = f"Mr Example's clip was on the ward PC {uuid.uuid4()}"
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        retraction = ("INSERT INTO reporting.footage_retractions (incident_id, deleted_at, recorded_by, unplanned,"
                      " retracted_by, retracted_at, reason) VALUES ($1, $2, 'footage-4', false, 'footage-5', $2, $3)"
                      " RETURNING id")
        entry = ("INSERT INTO reporting.audit (at, actor, action, what) VALUES ($1, 'footage-5',"
                 " 'footage_deletion_retracted', $2) RETURNING id")
        rows = {}
        for name, at in (("old", old_at), ("recent", recent_at)):
            incident = uuid.uuid4()
            what = f"footage incident_id={incident} deleted_at={at.isoformat()} recorded_by=footage-4 reason={words}"
            rows[name] = (await conn.fetchval(retraction, incident, at, words), await conn.fetchval(entry, at, what),
                          incident)

        assert (await call(pipeline, "POST", pipeline["REPORTING_URL"], "/v1/retention/run", None)).status_code == 401
        run = await call(pipeline, "POST", pipeline["REPORTING_URL"], "/v1/retention/run", None,
                         bearer(pipeline, "operations", "ops-8"))
        assert run.status_code == 200 and run.json()["retraction_reasons"] >= 1 and run.json()["audit_reasons"] >= 1

        kept = {r["id"]: r for r in await conn.fetch("SELECT * FROM reporting.footage_retractions WHERE id = ANY($1)",
                                                     [rows["old"][0], rows["recent"][0]])}
        old, recent = kept[rows["old"][0]], kept[rows["recent"][0]]
        assert old["reason"] is None and old["reason_purged_at"] is not None
        assert (old["incident_id"], old["recorded_by"], old["retracted_by"], old["retracted_at"]) == (
            rows["old"][2], "footage-4", "footage-5", old_at)
        assert recent["reason"] == words and recent["reason_purged_at"] is None
        audit = {r["id"]: r for r in await conn.fetch("SELECT * FROM reporting.audit WHERE id = ANY($1)",
                                                      [rows["old"][1], rows["recent"][1]])}
        old, recent = audit[rows["old"][1]], audit[rows["recent"][1]]
        assert old["what"] == (f"footage incident_id={rows['old'][2]} deleted_at={old_at.isoformat()}"
                               " recorded_by=footage-4 reason=(cleared)") and old["reason_purged_at"] is not None
        assert (old["at"], old["actor"]) == (old_at, "footage-5")
        assert recent["what"].endswith(f"reason={words}") and recent["reason_purged_at"] is None
        assert await conn.fetchval("SELECT count(*) FROM reporting.audit WHERE actor = 'ops-8'"
                                   " AND action = 'retention_purge'") == 1

        # The purge is the one change either table allows: nothing else, and not twice.
        for change, row in (
                ("UPDATE reporting.footage_retractions SET retracted_by = 'someone-else' WHERE id = $1", "old"),
                ("UPDATE reporting.footage_retractions SET reason = 'rewritten' WHERE id = $1", "old"),
                ("UPDATE reporting.footage_retractions SET reason = NULL, reason_purged_at = now(),"
                 " recorded_by = 'x' WHERE id = $1", "recent"),
                ("DELETE FROM reporting.footage_retractions WHERE id = $1", "recent")):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(change, rows[row][0])
        for change, row in (
                ("UPDATE reporting.audit SET what = reporting.reason_cleared(what), reason_purged_at = now()"
                 " WHERE id = $1", "old"),
                ("UPDATE reporting.audit SET what = 'footage reason=(cleared)', reason_purged_at = now()"
                 " WHERE id = $1", "recent"),
                ("UPDATE reporting.audit SET what = reporting.reason_cleared(what), reason_purged_at = now(),"
                 " actor = 'x' WHERE id = $1", "recent"),
                ("DELETE FROM reporting.audit WHERE id = $1", "recent")):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(change, rows[row][1])
    finally:
        await conn.close()


async def test_a_backlog_of_retraction_reasons_is_cleared_a_chunk_at_a_time_to_the_last_and_nothing_younger(
        pipeline):
    """Each chunk is its own transaction, so a backlog never outlasts the statement timeout: in
    chunks of 2, every reason past retention still goes from both tables, counted once, with one
    audit row."""
    cutoff, actor = datetime(2001, 6, 1, tzinfo=UTC), f"backlog-{uuid.uuid4().hex[:8]}"
    over, under = cutoff - timedelta(days=150), cutoff + timedelta(days=14)
    words = "Mr Example's clip was on the ward PC"
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=2)
    try:
        retractions, entries = [], []
        for at in [over] * 5 + [under]:
            incident = uuid.uuid4()
            retractions.append(await pool.fetchval(
                "INSERT INTO reporting.footage_retractions (incident_id, deleted_at, recorded_by, unplanned,"
                " retracted_by, retracted_at, reason) VALUES ($1, $2, 'footage-4', false, 'footage-5', $2, $3)"
                " RETURNING id", incident, at, words))
            entries.append(await pool.fetchval(
                "INSERT INTO reporting.audit (at, actor, action, what) VALUES ($1, 'footage-5',"
                " 'footage_deletion_retracted', $2) RETURNING id", at,
                f"footage incident_id={incident} deleted_at={at.isoformat()} recorded_by=footage-4 reason={words}"))
        counts = await footage_store.purge_reasons(pool, cutoff, cutoff + timedelta(days=30), actor, chunk=2)
        reasons = await pool.fetch("SELECT reason, reason_purged_at FROM reporting.footage_retractions"
                                   " WHERE id = ANY($1) ORDER BY retracted_at", retractions)
        whats = await pool.fetch("SELECT what, reason_purged_at FROM reporting.audit WHERE id = ANY($1) ORDER BY at",
                                 entries)
        audited = await pool.fetch("SELECT what FROM reporting.audit WHERE actor = $1 AND action = 'retention_purge'",
                                   actor)
    finally:
        await pool.close()
    assert counts == {"retraction_reasons": 5, "audit_reasons": 5}
    assert [r["reason"] for r in reasons] == [None] * 5 + [words]
    assert all(r["reason_purged_at"] for r in reasons[:5]) and reasons[5]["reason_purged_at"] is None
    assert [r["what"].endswith("reason=(cleared)") for r in whats] == [True] * 5 + [False]
    assert all(r["reason_purged_at"] for r in whats[:5]) and whats[5]["what"].endswith(f"reason={words}")
    assert len(audited) == 1 and str(counts) in audited[0]["what"]


async def test_an_incident_amended_out_of_the_police_criteria_waits_on_no_referral_and_its_prompt_is_retracted(
        pipeline):
    site = f"Amended site {uuid.uuid4().hex[:8]}"
    old = (datetime.now(UTC) - timedelta(days=60)).isoformat()
    [incident] = await submit_all(pipeline, [report(site=site, occurred_at=old, perpetrator=UNKNOWN,
                                                    body_worn_camera_used=True, category="physical_assault",
                                                    harm="low")])
    liaison = bearer(pipeline, "police_liaison", "liaison-9")

    async def standing() -> tuple[list, list, list]:
        listed = (await footage(pipeline, site=site)).json()["footage"]
        pending = (await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/police-referrals", None, liaison,
                              site=site, status="pending")).json()["referrals"]
        everything = (await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/police-referrals", None, liaison,
                                 site=site)).json()["referrals"]
        return ([(i["status"], i["uses"]) for i in listed], [r["incident_id"] for r in pending],
                [r["incident_id"] for r in everything])

    async def amend(category: str) -> None:
        changed = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], f"/v1/incidents/{incident}",
                             {"category": category})
        assert changed.status_code == 200, changed.text

    async def until(expected) -> None:
        deadline = asyncio.get_running_loop().time() + 60
        while (got := await standing()) != expected:
            assert asyncio.get_running_loop().time() < deadline, got
            await asyncio.sleep(0.5)

    await until(([("evidence", ["referral_pending"])], [incident], [incident]))
    # Verbal abuse, with no one wishing police action: nothing waits on a referral, and the
    # footage, past its period, is due for deletion.
    await amend("verbal_abuse")
    await until(([("delete_due", [])], [], []))
    # Back within the criteria: pending again. The topic said so each time: a prompt, its
    # retraction, and a fresh prompt.
    await amend("weapon")
    await until(([("evidence", ["referral_pending"])], [incident], [incident]))
    said = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.police-referrals.v1",
                            lambda r: r.key == incident.encode(), 3, timeout=60)
    events = [json.loads(r.value) for r in said]
    assert [(e["type"].split(".")[-2], e["data"].get("reason")) for e in events] == [
        ("police_referral_required", None), ("police_referral_retracted", "criteria_no_longer_met"),
        ("police_referral_required", None)]
    assert events[2]["data"]["criteria"] == ["weapon"] and len({e["id"] for e in events}) == 3
    assert not (await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.police-referrals.v1",
                                 lambda r: r.key == incident.encode(), 4, timeout=3))[3:]
