"""Workforce loads on real servers: each organisation's rows are its own, a load the table
cannot hold is a 422 rather than a 500, and the board's filters find what incidents stored."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from tests.conftest import bearer
from tests.factories import report
from tests.integration.kafka_reader import poll
from tests.integration.test_reporting_board import UNKNOWN, audited, board, call, submit_all

pytestmark = pytest.mark.integration


def organisations(n: int) -> list[str]:
    return ["W" + uuid.uuid4().hex[:5].upper() for _ in range(n)]


def row(organisation: str, headcount: int, site: str = "Main") -> dict:
    return {"organisation": organisation, "site": site, "staff_group": "nursing_midwifery", "ethnic_group": "white",
            "headcount": headcount}


async def load(pipeline, period: str, rows: list[dict]):
    ops = bearer(pipeline, "operations", "ops-workforce")
    return await call(pipeline, "PUT", pipeline["REPORTING_URL"], f"/v1/workforce/{period}", {"rows": rows}, ops)


async def rates(pipeline, **params) -> dict:
    response = await board(pipeline, period="2021-03", **params)
    assert response.status_code == 200, response.text
    return response.json()["totals"]["indicators"]


async def test_a_load_replaces_only_the_rows_of_the_organisations_it_holds(pipeline):
    first, second, third = organisations(3)
    assert (await load(pipeline, "2021-03", [row(first, 200)])).status_code == 200
    # Another trust loading the same period, alone or with a third, leaves the first's staff.
    both = await load(pipeline, "2021-03", [row(second, 500), row(third, 100)])
    assert both.status_code == 200 and both.json()["organisations"] == sorted([second, third])
    await submit_all(pipeline, [report(organisation=first, site="Main", perpetrator=UNKNOWN,
                                       occurred_at="2021-03-10T10:00:00+00:00") for _ in range(6)])
    figures = (await poll(lambda: board(pipeline, period="2021-03", organisation=first),
                          lambda r: r.json()["totals"]["incidents"] == 6)).json()["totals"]["indicators"]
    assert figures["workforce_loaded"] is True and figures["incidents_per_1000_staff"] == 30.0
    # The first trust's own reload replaces its rows (Main's 200 go), still not the others'.
    assert (await load(pipeline, "2021-03", [row(first, 300, "Annexe")])).status_code == 200
    assert (await rates(pipeline, organisation=first))["incidents_per_1000_staff"] == 20.0
    assert (await rates(pipeline, organisation=second))["workforce_loaded"] is True
    assert (await rates(pipeline, organisation=third))["workforce_loaded"] is True


async def test_filters_find_incidents_as_they_were_stored(pipeline):
    [organisation] = organisations(1)
    await submit_all(pipeline, [report(organisation=organisation, site="Main", perpetrator=UNKNOWN,
                                       occurred_at="2021-03-12T10:00:00+00:00") for _ in range(6)])
    await poll(lambda: board(pipeline, period="2021-03", organisation=organisation),
               lambda r: r.json()["totals"]["incidents"] == 6)
    typed = await board(pipeline, period="2021-03", organisation=organisation.lower(), site="Main ")
    assert typed.status_code == 200, typed.text
    assert (typed.json()["organisation"], typed.json()["site"]) == (organisation, "Main")
    assert typed.json()["totals"]["incidents"] == 6


async def test_a_row_repeated_after_normalisation_is_a_422_and_the_earlier_load_stands(pipeline):
    [organisation] = organisations(1)
    assert (await load(pipeline, "2021-03", [row(organisation, 100)])).status_code == 200
    again = await load(pipeline, "2021-03", [row(organisation, 400), row(f" {organisation}", 50, "Main ")])
    assert again.status_code == 422, again.text
    assert [e["field"] for e in again.json()["errors"]] == ["rows.1"]
    assert (await rates(pipeline, organisation=organisation))["workforce_loaded"] is True


async def test_headcounts_past_two_to_the_31_still_make_a_board(pipeline):
    # 1,100 sites of 2,000,000 (the most a row may hold) in one staff group: 2.2 billion.
    [organisation] = organisations(1)
    rows = [row(organisation, 2_000_000, f"S{i:04d}") for i in range(1100)]
    put = await load(pipeline, "2021-03", rows)
    assert put.status_code == 200 and put.json()["headcount"] == 2_200_000_000
    too_many = await load(pipeline, "2021-03", [row(organisation, 2_000_001)])
    assert [e["field"] for e in too_many.json()["errors"]] == ["rows.0.headcount"]
    figures = await rates(pipeline, organisation=organisation)
    assert figures["workforce_loaded"] is True and figures["incidents_per_1000_staff"] == 0.0


async def test_no_rate_counts_incidents_of_an_organisation_with_no_workforce_loaded(pipeline):
    # A region of two trusts, only one loaded: its staff alone under both trusts' incidents
    # would double every rate. The period is this test's own, so the region is these two.
    loaded, unloaded = organisations(2)
    assert (await load(pipeline, "2021-07", [row(loaded, 400)])).status_code == 200
    await submit_all(pipeline, [report(organisation=o, site="Main", perpetrator=UNKNOWN,
                                       occurred_at="2021-07-10T10:00:00+00:00") for o in (loaded, unloaded)
                                for _ in range(6)])
    region = (await poll(lambda: board(pipeline, period="2021-07"),
                         lambda r: r.json()["totals"]["incidents"] == 12)).json()
    assert region["workforce_missing"] == [unloaded]
    assert region["totals"]["indicators"]["workforce_loaded"] is False
    one = (await board(pipeline, period="2021-07", organisation=loaded)).json()
    assert one["workforce_missing"] == [] and one["totals"]["indicators"]["incidents_per_1000_staff"] == 15.0
    # Loaded too, the region has its rate (over every trust's staff: other tests' trusts loaded
    # earlier periods, which count for this one as their latest, with no incidents in it).
    assert (await load(pipeline, "2021-07", [row(unloaded, 200)])).status_code == 200
    region = (await board(pipeline, period="2021-07")).json()
    assert region["workforce_missing"] == [] and region["totals"]["indicators"]["workforce_loaded"] is True
    assert (await rates_of(pipeline, "2021-07", unloaded))["incidents_per_1000_staff"] == 30.0


async def rates_of(pipeline, period: str, organisation: str) -> dict:
    return (await board(pipeline, period=period, organisation=organisation)).json()["totals"]["indicators"]


async def test_loads_of_one_organisation_at_once_each_replace_the_last_never_a_500(pipeline):
    [organisation] = organisations(1)
    sites = [f"S{i:03d}" for i in range(200)]
    loads = [load(pipeline, "2021-09", [row(organisation, n, site) for site in sites]) for n in range(1, 7)]
    answers = await asyncio.gather(*loads)
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers if a.status_code != 200]
    # One of them, whole: 200 sites of the same headcount, never a mixture.
    conn = await asyncpg.connect(pipeline["DATABASE_URL"])
    try:
        stored = await conn.fetchrow("SELECT count(*) AS n, count(DISTINCT headcount) AS kinds FROM reporting.workforce"
                                     " WHERE organisation = $1 AND period = '2021-09'", organisation)
    finally:
        await conn.close()
    assert (stored["n"], stored["kinds"]) == (200, 1)


async def test_an_organisation_loaded_by_mistake_can_be_withdrawn(pipeline):
    right, typo = organisations(2)
    assert (await load(pipeline, "2021-11", [row(right, 300), row(typo, 300)])).status_code == 200
    ops = bearer(pipeline, "operations", "ops-workforce")
    path = f"/v1/workforce/2021-11/{typo.lower()}"
    assert (await call(pipeline, "DELETE", pipeline["REPORTING_URL"], path, None,
                       bearer(pipeline, "board_viewer"))).status_code == 403
    gone = await call(pipeline, "DELETE", pipeline["REPORTING_URL"], path, None, ops)
    assert gone.status_code == 200 and gone.json() == {"period": "2021-11", "organisation": typo, "rows": 1}
    again = await call(pipeline, "DELETE", pipeline["REPORTING_URL"], path, None, ops)
    assert again.status_code == 404
    assert (await rates_of(pipeline, "2021-11", typo))["workforce_loaded"] is False
    assert (await rates_of(pipeline, "2021-11", right))["workforce_loaded"] is True
    # The board's rates rest on the workforce: who loaded and withdrew what is audited.
    loaded = f"workforce period=2021-11 organisations={','.join(sorted((right, typo)))} rows=2 headcount=600"
    assert await audited(pipeline, "ops-workforce", loaded) == 1
    assert await audited(pipeline, "ops-workforce", f"workforce period=2021-11 organisation={typo} rows=1") == 1


async def test_of_two_snapshots_from_one_month_a_board_always_uses_the_shorter_periods(pipeline):
    from datetime import date

    from services.reporting import adapters
    from vanda.runtime.db import create_pool

    # Loaded in both orders: a tie left to the database's order of rows would differ between them.
    first, second = organisations(2)
    for period, heads in (("FY2024-25", 700), ("2024-Q2", 500), ("2024-04", 300), ("FY2024-25-H1", 600)):
        assert (await load(pipeline, period, [row(first, heads)])).status_code == 200
    for period, heads in (("2024-04", 300), ("FY2024-25-H1", 600), ("2024-Q2", 500), ("FY2024-25", 700)):
        assert (await load(pipeline, period, [row(second, heads)])).status_code == 200
    pool = await create_pool(pipeline["DATABASE_URL"], max_size=1)
    try:
        for organisation in (first, second):
            heads, _ = await adapters.headcount(pool, "2024-05", date(2024, 5, 1), organisation, None)
            assert sum(heads.values()) == 300, organisation  # the month's snapshot, every time
            heads, _ = await adapters.headcount(pool, "2024-Q3", date(2024, 9, 1), organisation, None)
            assert sum(heads.values()) == 300, organisation
    finally:
        await pool.close()
