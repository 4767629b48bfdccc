"""Reporting on real servers: exact board figures above the threshold, suppression, the police worklist."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from prometheus_client import REGISTRY

from schemas.reporting import ReferralCriterion
from services.reporting.bootstrap import Published, kafka_backlog, publish_now
from services.reporting.config import ReportingSettings
from services.reporting.domain import periods
from services.reporting.domain.board import Disclosure
from services.reporting.entrypoints import Deps
from services.reporting.handlers import Projection
from services.reporting.publishing import publish_closed_months
from tests.conftest import bearer
from tests.factories import report
from tests.integration.kafka_reader import poll, read_until
from tests.unit.test_reporting_gauges import LIVE
from vanda.runtime.auth import auth_settings
from vanda.runtime.db import alone, create_pool

pytestmark = pytest.mark.integration
SUPPRESSED = {"suppressed": True}
UNKNOWN = {"kind": "unknown"}


def intake_headers(pipeline) -> dict[str, str]:
    # Sent when the session has an intake API key; harmless where intake does not ask for one.
    return {"X-API-Key": pipeline["INTAKE_API_KEY"]} if "INTAKE_API_KEY" in pipeline else {}


async def call(pipeline, method: str, url: str, path: str, body=None, headers=None, **params) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=intake_headers(pipeline) | (headers or {})) as client:
        return await client.request(method, path, json=body, params=params)


async def submit_all(pipeline, bodies: list[dict]) -> list[str]:
    ids = []
    for body in bodies:
        response = await call(pipeline, "POST", pipeline["INTAKE_URL"], "/v1/incidents", body)
        assert response.status_code == 202, response.text
        ids.append(response.json()["incident_id"])
    return ids


def staff(ethnic_group: str) -> list[dict]:
    return [{"staff_group": "nursing_midwifery", "ethnic_group": ethnic_group}]


async def board(pipeline, **params) -> httpx.Response:
    return await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/metrics/board", None, viewer(pipeline),
                      **params)


def viewer(pipeline) -> dict[str, str]:
    return bearer(pipeline, "board_viewer", "board-member-1")


async def test_two_trusts_sites_of_one_name_are_two_sites_on_a_board_of_no_one_organisation(pipeline):
    site, trusts = f"Main Site {uuid.uuid4().hex[:8]}", ["T" + uuid.uuid4().hex[:5].upper() for _ in range(2)]
    when = "2025-06-03T10:00:00+01:00"
    await submit_all(pipeline, [report(organisation=trust, site=site, occurred_at=when, perpetrator=UNKNOWN,
                                       body_worn_camera_used=trust == trusts[0])
                                for trust in trusts for _ in range(5)])
    body = (await poll(lambda: board(pipeline, period="2025-06", site=site),
                       lambda r: r.json()["totals"]["incidents"] == 10, timeout=90)).json()
    totals = body["totals"]
    assert totals["incidents_by_site"] == {f"{trusts[0]} {site}": 5, f"{trusts[1]} {site}": 5}
    assert totals["indicators"]["body_worn_camera_share_by_site"] == {f"{trusts[0]} {site}": 1.0,
                                                                     f"{trusts[1]} {site}": 0.0}
    # One trust's own board names its sites as it does.
    own = (await board(pipeline, period="2025-06", site=site, organisation=trusts[1])).json()["totals"]
    assert own["incidents_by_site"] == {site: 5}


async def test_board_figures_police_funnel_and_worklist(pipeline):
    site = f"Board site {uuid.uuid4().hex[:8]}"
    when = "2025-05-12T10:00:00+01:00"
    common = dict(site=site, occurred_at=when, perpetrator=UNKNOWN)
    assaults = await submit_all(pipeline, [report(**common, category="physical_assault", harm="low",
                                                  staff_affected=staff("black"), body_worn_camera_used=True)
                                           for _ in range(6)])
    await submit_all(pipeline, [report(**common, staff_affected=staff("white")) for _ in range(5)])
    [weapon] = await submit_all(pipeline, [report(**common, category="weapon", staff_affected=staff("white"))])

    # Every incident meeting the criteria prompts the police liaison once.
    wanted = {i.encode() for i in [*assaults, weapon]}
    prompts = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.police-referrals.v1",
                               lambda r: r.key in wanted, len(wanted))
    assert sorted(r.key for r in prompts) == sorted(wanted)
    assert json.loads(prompts[0].value)["data"]["criteria"] in (["physical_assault"], ["weapon"])

    withdrawn = await call(pipeline, "POST", pipeline["INTAKE_URL"], f"/v1/incidents/{weapon}/withdraw")
    assert withdrawn.status_code == 202
    for incident_id in assaults[:5]:
        referred = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], f"/v1/incidents/{incident_id}",
                              {"police": {"informed": True, "referred_at": "2025-05-13T10:00:00+01:00"}})
        assert referred.status_code == 200, referred.text
    closed = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], f"/v1/incidents/{assaults[0]}",
                        {"police": {"informed": True, "referred_at": "2025-05-13T10:00:00+01:00",
                                    "crime_reference": "CR/1/25", "outcome": "charged"}})
    assert closed.status_code == 200, closed.text

    def settled(r):
        police = r.json()["totals"]["breakdowns"].get("police", {})
        return r.json()["totals"]["incidents"] == 11 and police.get("referred") == 5 and \
            police.get("outcome_known") == SUPPRESSED
    body = (await poll(lambda: board(pipeline, **{"from": "2025-05", "to": "2025-05", "site": site}),
                       settled, timeout=90)).json()
    totals = body["totals"]
    # A board of no one organisation names each site with its organisation's code: a region's
    # trusts may each have a "Main Site".
    assert totals["incidents"] == 11 and totals["incidents_by_site"] == {f"RZA {site}": 11}
    assert totals["breakdowns"]["incidents_by_category"] == {"physical_assault": 6, "verbal_abuse": 5}
    assert totals["breakdowns"]["staff_affected_by_ethnic_group"] == {"black": 6, "white": 5}
    assert totals["breakdowns"]["police"] == {"meeting_criteria": 6, "referred": 5, "outcome_known": SUPPRESSED}
    assert totals["breakdowns"]["police_outcomes"] == {"charged": SUPPRESSED}
    ind = totals["indicators"]
    assert ind["police_referral_rate"] == 0.833 and ind["median_days_to_referral"] == 1.0
    assert ind["body_worn_camera_share"] == 0.545 and ind["charge_rate"] == SUPPRESSED
    assert ind["ethnic_minority_share_of_staff_affected"] == 0.545 and ind["ethnicity_not_stated_share"] == 0.0
    # The financial half-year holding May has the same figures; the other half has none.
    halves = [(await board(pipeline, period=half, site=site)).json() for half in ("FY2025-26-H1", "FY2025-26-H2")]
    assert [len(h["months"]) for h in halves] == [6, 6] and halves[0]["totals"]["incidents"] == 11
    assert halves[0]["totals"]["breakdowns"] == totals["breakdowns"] and halves[1]["totals"]["incidents"] == 0

    liaison = bearer(pipeline, "police_liaison", "liaison-3")
    worklist = (await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/police-referrals", None, liaison,
                           site=site)).json()
    assert sorted(r["status"] for r in worklist["referrals"]) == ["closed", "pending", "referred", "referred",
                                                                   "referred", "referred"]
    pending = (await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/police-referrals", None, liaison,
                          site=site, status="pending")).json()["referrals"]
    assert [r["incident_id"] for r in pending] == [assaults[5]] and "subject_id" not in pending[0]
    assert await audited(pipeline, "liaison-3", site) == 2

    # A page at a time: following `next` gives the same referrals, in the same order.
    pages, after = [], None
    while True:
        params = {"site": site, "limit": 4} | ({"after": after} if after else {})
        body = (await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/police-referrals", None, liaison,
                           **params)).json()
        pages.append([r["incident_id"] for r in body["referrals"]])
        if (after := body["next"]) is None:
            break
    assert [len(p) for p in pages] == [4, 2]
    assert sum(pages, []) == [r["incident_id"] for r in worklist["referrals"]]
    # A liaison who acts for other trusts of a region sees none of this one's incidents, and
    # is refused when asking for it by name; one who acts for it sees them all.
    elsewhere, here = (bearer(pipeline, "police_liaison", "liaison-4", orgs=orgs) for orgs in (["RXX"], ["rza"]))
    path = "/v1/police-referrals"
    assert (await call(pipeline, "GET", pipeline["REPORTING_URL"], path, None, elsewhere,
                       site=site)).json()["referrals"] == []
    assert [r["incident_id"] for r in (await call(pipeline, "GET", pipeline["REPORTING_URL"], path, None, here,
                                                  site=site)).json()["referrals"]] == sum(pages, [])
    named = await call(pipeline, "GET", pipeline["REPORTING_URL"], path, None, elsewhere, site=site,
                       organisation="rza")
    assert named.status_code == 403 and "RZA" in named.json()["detail"], named.text
    for bad, field in (({"after": "not-a-cursor"}, "after"), ({"limit": 0}, "limit"), ({"limit": 1001}, "limit")):
        refused = await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/police-referrals", None, liaison,
                             site=site, **bad)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, refused.text

    # The amendments (still meeting the criteria) prompted nobody a second time; the
    # withdrawal retracted its prompt, once.
    again = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.police-referrals.v1",
                             lambda r: r.key in wanted, len(wanted) + 2, timeout=10)
    said = [(r.key, json.loads(r.value)) for r in again]
    assert sorted(key for key, e in said if e["type"].endswith("police_referral_required.v1")) == sorted(wanted)
    assert [(key, e["data"]["reason"]) for key, e in said if e["type"].endswith("police_referral_retracted.v1")] \
        == [(weapon.encode(), "withdrawn")]


async def test_the_referral_worklist_needs_the_police_liaison_role(pipeline):
    url, path = pipeline["REPORTING_URL"], "/v1/police-referrals"
    assert (await call(pipeline, "GET", url, path)).status_code == 401
    assert (await call(pipeline, "GET", url, path, None, bearer(pipeline, "operations", "ops-9"))).status_code == 403
    assert (await call(pipeline, "GET", url, path, None, bearer(pipeline, "board_viewer", "viewer-9"))).status_code == 403
    assert await audited(pipeline, "ops-9", "") == await audited(pipeline, "viewer-9", "") == 0


async def test_csv_and_quarter_and_raw_access(pipeline):
    site = f"Csv site {uuid.uuid4().hex[:8]}"
    await submit_all(pipeline, [report(site=site, occurred_at="2025-02-03T10:00:00+00:00", perpetrator=UNKNOWN)
                                for _ in range(5)] + [report(site=site, occurred_at="2025-03-03T10:00:00+00:00",
                                                             perpetrator=UNKNOWN, category="weapon")])
    quarter = await poll(lambda: board(pipeline, period="2025-Q1", site=site),
                         lambda r: [m["incidents"] for m in r.json()["months"]] == [0, 5, SUPPRESSED])
    body = quarter.json()
    assert [m["month"] for m in body["months"]] == ["2025-01", "2025-02", "2025-03"]
    # March has one incident: hidden, and so is the quarter's 6, or it would give March away.
    # February's 5 stays shown, as its own board (and monthly event) shows it.
    assert body["totals"]["incidents"] == SUPPRESSED
    csv = await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/metrics/board", None, viewer(pipeline),
                     period="2025-Q1", site=site, format="csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert "2025-Q1,total,incidents,all,,true" in csv.text and "2025-Q1,2025-03,incidents,all,,true" in csv.text
    assert "2025-Q1,2025-02,incidents,all,5,false" in csv.text
    # Suppressed figures: board_viewer or operations. Raw counts: operations only.
    who_gets_what = [({}, {}, 401), ({}, bearer(pipeline, "correspondence"), 403),
                     ({}, bearer(pipeline, "operations"), 200),
                     ({"raw": "true"}, {}, 401), ({"raw": "true"}, viewer(pipeline), 403),
                     # An operations token for some trusts of a region: raw counts only of one of them.
                     ({"raw": "true"}, bearer(pipeline, "operations", "ops-8", orgs=["RXX"]), 403),
                     ({"raw": "true", "organisation": "RZA"}, bearer(pipeline, "operations", "ops-8", orgs=["RXX"]),
                      403),
                     ({"raw": "true", "organisation": "rza"}, bearer(pipeline, "operations", "ops-8", orgs=["RZA"]),
                      200)]
    for raw_or_not, headers, status in who_gets_what:
        answer = await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/metrics/board", None, headers,
                            period="2025-Q1", site=site, **raw_or_not)
        assert answer.status_code == status, (raw_or_not, headers, answer.text)
    raw = await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/metrics/board", None,
                     bearer(pipeline, "operations", "ops-7"), period="2025-Q1", site=site, raw="true")
    assert raw.status_code == 200 and [m["incidents"] for m in raw.json()["months"]] == [0, 5, 1]
    assert await audited(pipeline, "ops-7", site) == 1


async def audited(pipeline, actor: str, mentioning: str) -> int:
    """Reads written to reporting's audit by `actor` about something `mentioning` names."""
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        return await conn.fetchval("SELECT count(*) FROM reporting.audit WHERE actor = $1 AND strpos(what, $2) > 0",
                                   actor, mentioning)
    finally:
        await conn.close()


async def test_a_board_for_one_location_type_counts_its_incidents_and_their_sanctions(pipeline):
    organisation = "L" + uuid.uuid4().hex[:5].upper()
    # Sanctions count in the month they were decided, so the incidents happen now; the range
    # takes in last month too, so that a run at midnight on the 1st still finds both.
    now = datetime.now(UTC)
    common = dict(organisation=organisation, occurred_at=now.isoformat())
    months = {"from": f"{(now.replace(day=1) - timedelta(days=1)):%Y-%m}", "to": f"{now + timedelta(days=1):%Y-%m}"}
    patients = iter(["9990001014", "9990001022"])  # one identified patient per location: one card each
    for location, unknown in (("ward", 5), ("emergency_department", 7)):
        await submit_all(pipeline, [report(**common, location_type=location, perpetrator=UNKNOWN)
                                    for _ in range(unknown)]
                         + [report(**common, location_type=location, perpetrator={
                             "kind": "patient", "nhs_number": next(patients), "medical_factors": False,
                             "age_band": "18_to_64"})])
    ops = bearer(pipeline, "operations", "ops-location")

    async def figures(**where):
        answer = await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/metrics/board", None, ops,
                            organisation=organisation, raw="true", **months, **where)
        assert answer.status_code == 200, answer.text
        return answer.json()

    # Reporting reads incidents and decisions from two topics: either may land first.
    def settled(b: dict) -> bool:
        cards = b["totals"]["breakdowns"].get("sanctions", {})
        return b["totals"]["incidents"] == 14 and cards.get("yellow_card_1") == 2
    everywhere = await poll(figures, settled)
    assert everywhere["totals"]["incidents"] == 14
    ward, ed = await figures(location_type="ward"), await figures(location_type="emergency_department")
    assert (ward["totals"]["incidents"], ed["totals"]["incidents"]) == (6, 8)
    assert ward["totals"]["breakdowns"]["sanctions"] == ed["totals"]["breakdowns"]["sanctions"] == {"yellow_card_1": 1}
    assert ward["totals"]["breakdowns"]["incidents_by_location"] == {"ward": 6}
    assert ward["location_type"] == "ward" and ward["totals"]["indicators"]["workforce_loaded"] is False
    assert (await figures(location_type="ambulance"))["totals"]["incidents"] == 0
    refused = await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/metrics/board", None, ops,
                         **months, location_type="car_park")
    assert refused.status_code == 422 and "location_type" in refused.text
    pack = await call(pipeline, "GET", pipeline["REPORTING_URL"], "/board", None, viewer(pipeline),
                      period=months["to"], organisation=organisation, location_type="emergency_department")
    assert pack.status_code == 200 and "emergency department" in pack.text
    assert await audited(pipeline, "ops-location", "location_type=ward") == 1


async def test_riddor_over_7_day_incapacity_set_by_amendment_reaches_the_board_and_pack(pipeline):
    site = f"Riddor site {uuid.uuid4().hex[:8]}"
    hurt = {"staff_group": "ambulance", "ethnic_group": "white", "injured": True}
    ids = await submit_all(pipeline, [report(site=site, occurred_at="2025-06-04T10:00:00+01:00", perpetrator=UNKNOWN,
                                             category="physical_assault", harm="moderate", staff_affected=[hurt])
                                      for _ in range(6)])
    off_work = [hurt | {"over_7_day_incapacity": True}, {"staff_group": "medical_dental", "ethnic_group": "asian"}]
    for incident_id in ids[:5]:
        amended = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], f"/v1/incidents/{incident_id}",
                             {"staff_affected": off_work})
        assert amended.status_code == 200 and amended.json()["revision"] == 2, amended.text
    uninjured = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], f"/v1/incidents/{ids[5]}",
                           {"staff_affected": [{**hurt, "injured": False, "over_7_day_incapacity": True}]})
    assert uninjured.status_code == 422, uninjured.text
    assert [e["field"] for e in uninjured.json()["errors"]] == ["staff_affected.0.over_7_day_incapacity"]

    def staff_of(r):
        return r.json()["totals"]["breakdowns"].get("staff_affected", {})
    answer = await poll(lambda: board(pipeline, period="2025-06", site=site),
                        lambda r: staff_of(r).get("over_7_day_incapacity") == 5)
    assert staff_of(answer) == {"all": 11, "injured": 6, "over_7_day_incapacity": 5}
    assert answer.json()["totals"]["breakdowns"]["riddor_reportable"] == {"over_7_day_incapacity": 5}
    assert answer.json()["totals"]["breakdowns"]["staff_affected_by_staff_group"] == {"ambulance": 6,
                                                                                      "medical_dental": 5}
    pack = await call(pipeline, "GET", pipeline["REPORTING_URL"], "/board", None, viewer(pipeline),
                      period="2025-06", site=site)
    assert pack.status_code == 200 and "RIDDOR" in pack.text
    assert pack.text.count("<td>over 7 day incapacity</td><td>5</td>") == 2  # staff, and incidents

    # Reported to HSE: five reportable incidents, all on day 10 (in time) but one on day 20 (late).
    for n, incident_id in enumerate(ids[:5]):
        day = 20 if n == 0 else 10
        reported = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], f"/v1/incidents/{incident_id}",
                              {"riddor_reported_at": f"2025-06-{4 + day:02d}T09:00:00+01:00"})
        assert reported.status_code == 200 and reported.json()["changed_fields"] == ["riddor_reported_at"], \
            reported.text
    early = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], f"/v1/incidents/{ids[5]}",
                       {"riddor_reported_at": "2025-06-01T09:00:00+01:00"})
    assert early.status_code == 422 and [e["field"] for e in early.json()["errors"]] == ["riddor_reported_at"]

    def reported(r):
        return r.json()["totals"]["breakdowns"].get("riddor_reported", {}).get("all") == 5
    totals = (await poll(lambda: board(pipeline, period="2025-06", site=site), reported)).json()["totals"]
    assert totals["breakdowns"]["riddor_reported"] == {"all": 5, "within_15_days": SUPPRESSED}
    raw = (await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/metrics/board", None,
                      bearer(pipeline, "operations", "ops-riddor"), period="2025-06", site=site, raw="true")).json()
    assert raw["totals"]["breakdowns"]["riddor_reported"] == {"all": 5, "within_15_days": 4}
    assert raw["totals"]["indicators"]["riddor_reported_on_time_share"] == 0.8


async def test_staff_protected_characteristics_reach_the_board_and_an_amendment_can_state_them(pipeline):
    site = f"Equality site {uuid.uuid4().hex[:8]}"
    nurse = {"staff_group": "nursing_midwifery", "ethnic_group": "black"}
    disabled = nurse | {"disability": "disabled", "sex": "female", "religion": "christian"}
    common = dict(site=site, occurred_at="2025-07-08T10:00:00+01:00", perpetrator=UNKNOWN)
    ids = await submit_all(pipeline, [report(**common, staff_affected=[disabled]) for _ in range(5)]
                           + [report(**common, staff_affected=[nurse]) for _ in range(7)])
    # Stated later: the staff list is replaced whole, and the revision read is the one replaced.
    stated = nurse | {"disability": "not_disabled", "sex": "male", "sexual_orientation": "gay_or_lesbian"}
    for incident_id in ids[5:]:
        amended = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], f"/v1/incidents/{incident_id}",
                             {"staff_affected": [stated]}, {"If-Match": '"1"'})
        assert amended.status_code == 200, amended.text
    held = (await call(pipeline, "GET", pipeline["INTAKE_URL"], f"/v1/incidents/{ids[5]}")).json()
    assert held["incident"]["staff_affected"] == [stated | {"injured": False, "wishes_police_action": False}]
    refused = await call(pipeline, "PATCH", pipeline["INTAKE_URL"], f"/v1/incidents/{ids[0]}",
                         {"staff_affected": [nurse | {"sex": "unknown"}]})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "staff_affected.0.sex", refused.text

    def settled(r):
        return r.json()["totals"]["breakdowns"].get("staff_affected_by_disability", {}).get("not_disabled") == 7
    totals = (await poll(lambda: board(pipeline, period="2025-07", site=site), settled)).json()["totals"]
    by = totals["breakdowns"]
    assert by["staff_affected_by_disability"] == {"disabled": 5, "not_disabled": 7}
    assert by["staff_affected_by_sex"] == {"female": 5, "male": 7}
    assert by["staff_affected_by_religion"] == {"christian": 5, "not_stated": 7}
    assert by["staff_affected_by_sexual_orientation"] == {"gay_or_lesbian": 7, "not_stated": 5}
    assert by["staff_affected_by_ethnic_group_and_sex"] == {"black/female": 5, "black/male": 7}
    assert by["staff_affected_by_category"] == {"verbal_abuse": 12}
    assert totals["indicators"]["disabled_share_of_staff_affected"] == 0.417
    assert totals["indicators"]["not_stated_share_by_characteristic"]["gender_identity"] == 1.0
    pack = await call(pipeline, "GET", pipeline["REPORTING_URL"], "/board", None, viewer(pipeline),
                      period="2025-07", site=site)
    assert "<td>sexual orientation: gay or lesbian</td><td>7</td>" in pack.text
    assert "<h3>ethnic group by sex</h3>" in pack.text


async def publish(pipeline) -> None:
    who = f"ops-{uuid.uuid4().hex[:8]}"
    published = await call(pipeline, "POST", pipeline["REPORTING_URL"], "/v1/board-metrics/publish", None,
                           bearer(pipeline, "operations", who))
    assert published.status_code == 200, published.text
    assert await audited(pipeline, who, f"board metrics published={published.json()['published']}") == 1


async def published_for(pipeline, organisation: str, count: int, timeout: float = 60) -> list[dict]:
    """The data of the organisation's board-metrics events, in order, once `count` have arrived."""
    events = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.board-metrics.v1",
                              lambda r: r.key == organisation.encode(), count, timeout=timeout)
    return [json.loads(e.value)["data"] for e in events]


async def test_each_closed_month_is_published_once(pipeline):
    organisation = "T" + uuid.uuid4().hex[:5].upper()
    await submit_all(pipeline, [report(organisation=organisation, site="Publish site", perpetrator=UNKNOWN,
                                       occurred_at="2025-01-20T10:00:00+00:00") for _ in range(5)])
    await poll(lambda: board(pipeline, **{"from": "2025-01", "to": "2025-01", "organisation": organisation}),
               lambda r: r.json()["totals"]["incidents"] == 5)
    assert (await call(pipeline, "POST", pipeline["REPORTING_URL"], "/v1/board-metrics/publish")).status_code == 401
    for _ in range(2):
        await publish(pipeline)
    # From its first month on, every closed month: January's five, then months of none.
    current = periods.month_of(datetime.now(UTC) - timedelta(days=3), ZoneInfo("Europe/London"))  # the grace
    closed = periods.month_range(date(2025, 1, 1), periods.add_months(current, -1))
    every = await published_for(pipeline, organisation, len(closed) + 1, timeout=8)
    assert sorted(d["period"] for d in every) == [periods.label(m) for m in closed]
    [data] = [d for d in every if d["period"] == "2025-01"]
    assert (data["incidents"], data["suppression_threshold"]) == (5, 5)
    assert "rounding_base" not in data and "revision" not in data  # as before rounding and revisions existed
    assert data["breakdowns"]["incidents_by_category"] == {"verbal_abuse": 5}
    assert {d["incidents"] for d in every if d["period"] != "2025-01"} == {0}


async def test_a_publishing_round_is_refused_while_another_is_under_way(pipeline):
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=2)
    try:
        async with alone(pool, "board-metrics") as first:
            assert first
            busy = await call(pipeline, "POST", pipeline["REPORTING_URL"], "/v1/board-metrics/publish", None,
                              bearer(pipeline, "operations"))
    finally:
        await pool.close()
    assert busy.status_code == 409 and "under way" in busy.text
    await publish(pipeline)  # and once it ended, runs


async def test_a_publishing_round_waits_until_what_was_written_before_it_is_applied(pipeline):
    organisation = "W" + uuid.uuid4().hex[:5].upper()
    await submit_all(pipeline, [report(organisation=organisation, site="Backlog site", perpetrator=UNKNOWN,
                                       occurred_at="2025-02-10T10:00:00+00:00") for _ in range(5)])
    await poll(lambda: board(pipeline, period="2025-02", organisation=organisation),
               lambda r: r.json()["totals"]["incidents"] == 5)
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=2)
    deps = Deps(lambda: pool, Projection(ZoneInfo("Europe/London"), frozenset(ReferralCriterion)), Disclosure(5),
                auth_settings(), 60, lambda: datetime.now(UTC))
    settings, woken, asked = ReportingSettings(), [], []

    async def behind(before: datetime) -> int:
        asked.append(before)
        return 7

    async def months() -> int:
        return await pool.fetchval("SELECT count(*) FROM reporting.published_months WHERE organisation = $1",
                                   organisation)

    bootstrap = pipeline["KAFKA_BOOTSTRAP_SERVERS"]
    try:
        started = datetime.now(UTC)
        assert await publish_now(deps, settings, lambda: woken.append(1), behind) == Published(backlog=7)
        assert (await months(), woken) == (0, [])
        assert REGISTRY.get_sample_value("vanda_reporting_publishing_backlog") == 7
        # It asks about what was written more than the tolerance before the round.
        assert started <= asked[0] + timedelta(seconds=settings.publish_backlog_s) <= datetime.now(UTC)
        # The live consumer group has applied everything: the round goes ahead.
        live = kafka_backlog(bootstrap, settings.consumer_group)
        done = await publish_now(deps, settings, lambda: woken.append(1), live)
        assert (done.busy, done.backlog, woken) == (False, 0, [1]) and await months() > 0
        assert REGISTRY.get_sample_value("vanda_reporting_publishing_backlog") == 0
        # A group that has applied nothing has the whole history before it, these five at least.
        assert await kafka_backlog(bootstrap, f"never-{uuid.uuid4().hex[:8]}")(datetime.now(UTC)) >= 5
    finally:
        await pool.close()


async def test_a_recent_month_is_published_again_when_its_figures_change(pipeline):
    organisation = "R" + uuid.uuid4().hex[:5].upper()
    zone = ZoneInfo("Europe/London")
    current = periods.month_of(datetime.now(UTC) - timedelta(days=3), zone)  # the publishing grace
    first, empty, last = (periods.add_months(current, n) for n in (-3, -2, -1))

    def on(month) -> dict:
        return report(organisation=organisation, site="Revised site", perpetrator=UNKNOWN,
                      occurred_at=(periods.start_of(month, zone) + timedelta(days=9)).isoformat())

    async def late(month, n: int) -> None:
        """One more report for the month, once the board counts `n`."""
        await submit_all(pipeline, [on(month)])
        await poll(lambda: board(pipeline, period=periods.label(month), organisation=organisation),
                   lambda r: r.json()["totals"]["incidents"] == n)

    async def said(count: int) -> list[tuple[str, int, int]]:
        """(period, incidents, revision) of every event so far: exactly `count` of them."""
        events = await published_for(pipeline, organisation, count + 1, timeout=4)
        assert len(events) == count, events
        return [(d["period"], d["incidents"], d.get("revision", 1)) for d in events]

    projection = Projection(zone, frozenset(ReferralCriterion))
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=4)

    async def revise(months: int) -> None:
        # The service runs with revisions off (its counts are exact); a round with them on.
        assert await publish_closed_months(pool, projection, Disclosure(5), 3, datetime.now(UTC), months) is not None

    try:
        await submit_all(pipeline, [on(first) for _ in range(5)] + [on(last) for _ in range(4)])
        # Both months applied before the round: a round waits only for what was written over
        # REPORTING_PUBLISH_BACKLOG_S before it, and these were written just now.
        await poll(lambda: board(pipeline, period=periods.label(first), organisation=organisation),
                   lambda r: r.json()["totals"]["incidents"] == 5)
        await late(last, 5)
        await publish(pipeline)
        assert await said(3) == [(periods.label(first), 5, 1), (periods.label(empty), 0, 1),
                                 (periods.label(last), 5, 1)]
        # A report arriving after its month was published: revisions off, nothing goes out.
        await late(last, 6)
        await publish(pipeline)
        await said(3)
        # On: the month goes out again, revised; the others, unchanged, do not; nor does it twice.
        await revise(3)
        await revise(3)
        assert (await said(4))[3:] == [(periods.label(last), 6, 2)]
        # A change older than the window waits: the first month is outside a window of two.
        await late(first, 6)
        await revise(2)
        await said(4)
        # Published before digests were kept: the figures of the next round are the baseline,
        # and only a change after it is a revision.
        await pool.execute("UPDATE reporting.published_months SET digest = NULL WHERE organisation = $1 AND month = $2",
                           organisation, first)
        await revise(3)
        await said(4)
        await late(first, 7)
        await revise(3)
        assert (await said(5))[4:] == [(periods.label(first), 7, 2)]
    finally:
        await pool.close()


async def test_current_month_gauges_carry_no_personal_labels(pipeline):
    text = (await call(pipeline, "GET", pipeline["REPORTING_URL"], "/metrics")).text
    lines = [line for line in text.splitlines() if line.startswith("vanda_reporting_current_month{")]
    assert any('figure="incidents"' in line for line in lines)
    assert all(line.count("=") == 1 for line in lines)
    # Nor any figure that one new report would move to tell a reader about the person in it.
    assert {line.split('figure="')[1].split('"')[0] for line in lines} == LIVE


async def test_current_month_gauges_are_computed_on_a_timer_not_by_the_scrape(pipeline):
    # A scrape only reads them: the timestamp is set by the timer's first round, at start.
    text = (await call(pipeline, "GET", pipeline["REPORTING_URL"], "/metrics")).text
    [stamp] = [line for line in text.splitlines()
               if line.startswith("vanda_reporting_current_month_updated_timestamp_seconds ")]
    computed = float(stamp.split()[1])
    assert 0 < computed <= time.time()


async def test_each_trust_s_rates_use_its_own_latest_workforce_snapshot(pipeline):
    # Two trusts load on different dates: A for its financial year, B for June. A's quarter
    # reads A's snapshot, not B's later one, which holds none of A's staff.
    first, second = ("W" + uuid.uuid4().hex[:5].upper() for _ in range(2))
    ops = bearer(pipeline, "operations", "ops-workforce")
    for period, organisation, n in (("FY2022-23", first, 200), ("2022-06", second, 500)):
        rows = [{"organisation": organisation, "site": "Main", "staff_group": "nursing_midwifery",
                 "ethnic_group": "white", "headcount": n}]
        put = await call(pipeline, "PUT", pipeline["REPORTING_URL"], f"/v1/workforce/{period}", {"rows": rows}, ops)
        assert put.status_code == 200, put.text
    await submit_all(pipeline, [report(organisation=first, site="Main", perpetrator=UNKNOWN,
                                       occurred_at="2022-08-10T10:00:00+01:00") for _ in range(6)])
    figures = (await poll(lambda: board(pipeline, period="2022-Q3", organisation=first),
                          lambda r: r.json()["totals"]["incidents"] == 6)).json()["totals"]["indicators"]
    assert figures["workforce_loaded"] is True and figures["incidents_per_1000_staff"] == 30.0
    other = (await board(pipeline, period="2022-Q3", organisation=second)).json()["totals"]["indicators"]
    assert other["workforce_loaded"] is True and other["incidents_per_1000_staff"] == 0.0


async def test_riddor_incidents_still_within_their_15_days_are_pending_not_late(pipeline):
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    # Over-7-day incidents of yesterday, not reported yet: on time still, whatever comes.
    site, when = f"Pending site {uuid.uuid4().hex[:8]}", datetime.now(UTC) - timedelta(hours=30)
    off_work = [{"staff_group": "ambulance", "ethnic_group": "white", "injured": True, "over_7_day_incapacity": True}]
    await submit_all(pipeline, [report(site=site, occurred_at=when.isoformat(), perpetrator=UNKNOWN,
                                       category="physical_assault", harm="moderate", staff_affected=off_work)
                                for _ in range(5)])
    period = when.astimezone(ZoneInfo("Europe/London")).strftime("%Y-%m")
    totals = (await poll(lambda: board(pipeline, period=period, site=site),
                         lambda r: r.json()["totals"]["incidents"] == 5)).json()["totals"]
    assert totals["breakdowns"]["riddor_reportable"] == {"over_7_day_incapacity": 5}
    assert totals["breakdowns"]["riddor_pending"] == {"within_15_days": 5}
    assert totals["indicators"]["riddor_reported_on_time_share"] is None  # none due yet: not 0.0, all late
