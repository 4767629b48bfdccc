"""The board pack renders in headless Chromium: a screenshot shows all four charts drawn."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from PIL import Image

from services.reporting.pack import COLOURS
from tests.conftest import bearer
from tests.factories import report
from tests.integration.kafka_reader import poll
from tests.integration.test_reporting_board import audited, board, call, staff, submit_all, viewer

pytestmark = pytest.mark.integration
# Chromium comes from `apt-get install -y chromium` in scripts/install; the test installs nothing.
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)


def screenshot(url: str, path: Path) -> Image.Image:
    assert CHROMIUM, "Chromium is missing: scripts/install adds it with `apt-get install -y chromium`"
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1100,2600", f"--screenshot={path}", url],
                   check=True, capture_output=True, timeout=120)
    return Image.open(path).convert("RGB")


def pixels_of(image: Image.Image, hex_colour: str) -> int:
    wanted = tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return sum(n for n, colour in image.getcolors(maxcolors=1 << 20) if colour == wanted)


async def test_board_pack_with_objectives_renders_every_chart(pipeline, tmp_path):
    site = f"Pack site {uuid.uuid4().hex[:8]}"
    bodies = [report(site=site, occurred_at=f"2025-0{m}-10T10:00:00+01:00", category=c, perpetrator={"kind": "unknown"},
                     staff_affected=[staff(g)[0] | {"disability": d, "sex": "female"}])
              for m in (7, 8) for c, g, d in (("physical_assault", "black", "disabled"),
                                              ("verbal_abuse", "white", "not_disabled")) for _ in range(5)]
    await submit_all(pipeline, bodies)
    workforce = {"rows": [{"organisation": "RZA", "site": site, "staff_group": "nursing_midwifery",
                           "ethnic_group": g, "disability": d, "sex": x, "headcount": n}
                          for g, d, x, n in (("black", "disabled", "not_stated", 100),
                                             ("black", "not_disabled", "female", 100),
                                             ("white", "not_disabled", "female", 400))]}
    who = f"ops-{uuid.uuid4().hex[:8]}"
    ops = bearer(pipeline, "operations", who)
    assert (await call(pipeline, "PUT", pipeline["REPORTING_URL"], "/v1/workforce/2025-Q3", workforce)).status_code == 401
    put = await call(pipeline, "PUT", pipeline["REPORTING_URL"], "/v1/workforce/2025-Q3", workforce, ops)
    assert put.status_code == 200 and put.json()["headcount"] == 600
    goal = await call(pipeline, "PUT", pipeline["REPORTING_URL"], "/v1/objectives/police_referral_rate",
                      {"target": 0.9, "direction": "at_least"}, ops)
    assert goal.status_code == 200
    assert await audited(pipeline, who, "objective metric=police_referral_rate target=0.9 direction=at_least") == 1
    # A count's target says what length of period it is for; a share's needs none.
    unsaid = await call(pipeline, "PUT", pipeline["REPORTING_URL"], "/v1/objectives/incidents",
                        {"target": 5, "direction": "at_most"}, ops)
    assert unsaid.status_code == 422 and [e["field"] for e in unsaid.json()["errors"]] == ["months"]
    needless = await call(pipeline, "PUT", pipeline["REPORTING_URL"], "/v1/objectives/police_referral_rate",
                          {"target": 0.9, "direction": "at_least", "months": 3}, ops)
    assert needless.status_code == 422 and [e["field"] for e in needless.json()["errors"]] == ["months"]
    monthly = await call(pipeline, "PUT", pipeline["REPORTING_URL"], "/v1/objectives/incidents",
                         {"target": 5, "direction": "at_most", "months": 1}, ops)
    assert monthly.status_code == 200 and monthly.json()["months"] == 1
    assert (await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/objectives")).status_code == 401
    goals = await call(pipeline, "GET", pipeline["REPORTING_URL"], "/v1/objectives", None, viewer(pipeline))
    assert {"metric": "police_referral_rate", "target": 0.9} in [
        {k: o[k] for k in ("metric", "target")} for o in goals.json()["objectives"]]
    figures = (await poll(lambda: board(pipeline, period="2025-Q3", site=site),
                          lambda r: r.json()["totals"]["incidents"] == 20)).json()
    ind = figures["totals"]["indicators"]
    # 10 black staff affected of 200 in post, 10 white of 400: 50 and 25 per 1,000.
    assert ind["ethnic_minority_staff_affected_per_1000"] == 50.0 and ind["white_staff_affected_per_1000"] == 25.0
    assert ind["ethnic_minority_white_gap_per_1000"] == 25.0
    # 10 disabled staff affected of 100 in post, 10 not disabled of 500: 100 and 20 per 1,000 (WDES).
    assert ind["disabled_staff_affected_per_1000"] == 100.0 and ind["non_disabled_staff_affected_per_1000"] == 20.0
    assert ind["disabled_non_disabled_gap_per_1000"] == 80.0 and ind["disabled_share_of_staff_affected"] == 0.5
    # 20 women affected of the 500 the load states.
    assert ind["staff_affected_per_1000_by_sex"] == {"female": 40.0}
    # Crossed: the 10 disabled Black women affected are read against the 100 disabled Black staff in post.
    assert ind["staff_affected_per_1000_by_ethnic_group_and_disability"] == {
        "black/disabled": 100.0, "black/not_disabled": 0.0, "white/not_disabled": 25.0}
    assert ind["staff_affected_per_1000_by_ethnic_group_and_sex"] == {"black/female": 100.0, "white/female": 25.0}
    [objective] = [o for o in figures["objectives"] if o["metric"] == "police_referral_rate"]
    assert objective["status"] == "red" and objective["value"] == 0.0
    # 10 incidents in each of July and August, none in September, against at most 5 a month.
    [per_month] = [o for o in figures["objectives"] if o["metric"] == "incidents"]
    assert per_month["status"] == "other_length" and per_month["series_status"] == ["red", "red", "green"]

    url = f"{pipeline['REPORTING_URL']}/board"
    assert httpx.get(url, params={"period": "2025-Q3", "site": site}, timeout=30).status_code == 401
    html = httpx.get(url, params={"period": "2025-Q3", "site": site}, headers=viewer(pipeline), timeout=30).text
    assert html.count("<svg class='chart'") == 4 and "police referral rate" in html and ">red<" in html
    # The pack needs no network: saved as it is served, it renders from the file.
    saved = tmp_path / "pack.html"
    saved.write_text(html, encoding="utf-8")
    image = screenshot(saved.as_uri(), tmp_path / "pack.png")
    drawn = {chart: pixels_of(image, colour) for chart, colour in COLOURS.items()}
    # Each chart's bars are solid blocks of its colour: hundreds of pixels when drawn, none when not.
    assert all(n > 300 for n in drawn.values()), drawn
