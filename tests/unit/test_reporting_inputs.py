"""Reporting's inputs are refused or normalised at the HTTP edge, before any connection is
touched: the adapters and handlers are replaced by recorders (no app startup needed)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from services.reporting import adapters, handlers, pack
from services.reporting.bootstrap import create_app
from vanda.runtime.auth import sign

SECRET = "unit-test-secret-of-at-least-32-bytes"
ROW = {"organisation": "RJ1", "site": "Main", "staff_group": "nursing_midwifery", "ethnic_group": "white",
       "headcount": 10}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple]]:
    """What reached the adapters and handlers, in place of a database."""
    seen: list[tuple[str, tuple]] = []

    def recorder(name: str, answer=None):
        async def record(*args, **kwargs):
            seen.append((name, args))
            return answer
        return record

    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setattr(adapters, "put_workforce", recorder("put_workforce"))
    monkeypatch.setattr(adapters, "put_objective", recorder("put_objective"))
    monkeypatch.setattr(adapters, "delete_workforce", recorder("delete_workforce", 1))
    monkeypatch.setattr(adapters, "audit", recorder("audit"))
    monkeypatch.setattr(handlers, "board", recorder("board", {"months": [], "totals": {}}))
    monkeypatch.setattr(handlers, "worklist", recorder("worklist", {"referrals": [], "next": None}))
    monkeypatch.setattr(handlers, "footage_worklist", recorder("footage_worklist", {"incidents": [], "next": None}))
    monkeypatch.setattr(pack, "render", lambda body: "<html></html>")
    return seen


def client(*roles: str, orgs: list[str] | None = None) -> TestClient:
    token = sign(SECRET, "tester-1", list(roles), orgs=orgs)
    return TestClient(create_app(), headers={"Authorization": f"Bearer {token}"})


def test_an_operations_user_of_one_trust_loads_and_withdraws_only_its_own_workforce(calls):
    """Another trust's staff in post are what its rates per 1,000 staff are worked out on."""
    one_trust = client("operations", orgs=["RJ1"])
    mixed = one_trust.put("/v1/workforce/2025-04", json={"rows": [ROW, ROW | {"organisation": "rxx"}]})
    assert mixed.status_code == 403 and "does not act for RXX" in mixed.text
    assert one_trust.delete("/v1/workforce/2025-04/rxx").status_code == 403
    assert calls == []  # nothing loaded, nothing withdrawn
    assert one_trust.put("/v1/workforce/2025-04", json={"rows": [ROW]}).status_code == 200
    assert one_trust.delete("/v1/workforce/2025-04/rj1").status_code == 200
    assert [name for name, _ in calls] == ["put_workforce", "delete_workforce"]


def test_objectives_every_board_is_judged_on_are_set_only_by_a_token_for_every_organisation(calls):
    body = {"target": 0.5, "direction": "at_least"}
    refused = client("operations", orgs=["RJ1"]).put("/v1/objectives/police_referral_rate", json=body)
    assert refused.status_code == 403 and "every organisation" in refused.text and calls == []
    assert client("operations").put("/v1/objectives/police_referral_rate", json=body).status_code == 200


def errors(response) -> dict[str, str]:
    assert response.status_code == 422, response.text
    return {e["field"]: e["reason"] for e in response.json()["errors"]}


def test_a_workforce_row_repeating_another_after_normalisation_is_named_not_a_500(calls):
    # "rj1" and "Main " are stored as RJ1 and Main: the same key as row 0, as is an identical line.
    rows = [ROW, ROW | {"organisation": "rj1", "site": "Main ", "headcount": 12}, ROW,
            ROW | {"site": "Annexe"}]
    response = client("operations").put("/v1/workforce/2025-04", json={"rows": rows})
    found = errors(response)
    assert set(found) == {"rows.1", "rows.2"}
    assert found["rows.1"].startswith("duplicates row 0 (same organisation, site,")
    assert "Main" not in response.text and "RJ1" not in response.text
    assert calls == []


def test_rows_differing_in_disability_or_sex_are_not_duplicates(calls):
    rows = [ROW, ROW | {"disability": "disabled"}, ROW | {"sex": "female"}]
    response = client("operations").put("/v1/workforce/2025-04", json={"rows": rows})
    assert response.status_code == 200, response.text
    assert response.json() == {"period": "2025-04", "rows": 3, "headcount": 30, "organisations": ["RJ1"]}


def test_a_headcount_beyond_any_organisation_is_refused_naming_the_field(calls):
    at_most = client("operations").put("/v1/workforce/2025-04", json={"rows": [ROW | {"headcount": 2_000_000}]})
    assert at_most.status_code == 200, at_most.text
    too_many = client("operations").put("/v1/workforce/2025-04", json={"rows": [ROW | {"headcount": 2_000_001}]})
    assert set(errors(too_many)) == {"rows.0.headcount"}
    assert [name for name, _ in calls] == ["put_workforce"]


@pytest.mark.parametrize("target", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_an_objective_target_must_be_finite(calls, target):
    body = '{"target": %s, "direction": "at_least"}' % target
    response = client("operations").put("/v1/objectives/police_referral_rate", content=body,
                                        headers={"content-type": "application/json"})
    assert set(errors(response)) == {"target"}
    assert calls == []


def test_a_finite_objective_target_is_stored(calls):
    response = client("operations").put("/v1/objectives/police_referral_rate",
                                        json={"target": 0.5, "direction": "at_least"})
    assert response.status_code == 200 and calls[0][1][1].target == 0.5


@pytest.mark.parametrize(("metric", "target", "months", "refused"), [
    ("police_referral_rate", 80, None, "is a share, from 0 to 1"),  # meant 80%
    ("charge_rate", -0.1, None, "is a share, from 0 to 1"),
    ("police_referral_rate", 1, None, None),
    ("sexual_safety_share", 0, None, None),
    ("median_days_to_referral", -2, None, "is never below 0"),
    ("incidents", -1, 12, "is never below 0"),
    ("ethnic_minority_white_gap_per_1000", -5, 12, None),  # a gap may go either way
    ("incidents_per_1000_staff", 40, 12, None),
])
def test_an_objective_target_the_figure_can_never_take_is_refused_naming_the_target(calls, metric, target, months,
                                                                                       refused):
    body = {"target": target, "direction": "at_most"} | ({"months": months} if months else {})
    response = client("operations").put(f"/v1/objectives/{metric}", json=body)
    if refused is None:
        assert response.status_code == 200, response.text
        assert calls[0][1][1].target == target
    else:
        assert refused in errors(response)["target"] and calls == []


# Every route that takes the organisation and site filters.
ROUTES = [("/v1/metrics/board", "board_viewer", {"period": "2025-Q1"}),
          ("/board", "board_viewer", {"period": "2025-Q1"}),
          ("/v1/police-referrals", "police_liaison", {}), ("/v1/footage", "footage_officer", {})]


def filters(name: str, args: tuple) -> tuple[str | None, str | None]:
    if name == "board":
        return args[1].organisation, args[1].site
    [organisation] = args[2]  # the worklists: (pool, status, the organisations covered, site, ...)
    return organisation, args[3]


@pytest.mark.parametrize(("path", "role", "params"), ROUTES)
def test_organisation_and_site_filters_are_normalised_as_stored_values_are(calls, path, role, params):
    response = client(role).get(path, params=params | {"organisation": " rj1", "site": " Main "})
    assert response.status_code == 200, response.text
    [(name, args)] = [c for c in calls if c[0] != "audit"]
    assert filters(name, args) == ("RJ1", "Main")


@pytest.mark.parametrize(("path", "role", "params"), ROUTES)
def test_a_filter_no_stored_value_can_match_is_refused_naming_it(calls, path, role, params):
    for bad in ({"organisation": "RJ-1"}, {"organisation": "RJ1234X"}, {"site": "  "}, {"site": "x" * 201}):
        assert set(errors(client(role).get(path, params=params | bad))) == set(bad)
    assert calls == []
