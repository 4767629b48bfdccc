"""HTTP validation answers before any connection is touched (no app startup needed)."""

from __future__ import annotations

import secrets

from fastapi.testclient import TestClient

from services.intake.bootstrap import create_app
from services.intake.config import IntakeSettings
from services.reporting.bootstrap import create_app as reporting_app
from tests.factories import TEST_NHS_NUMBER, report
from vanda.runtime.auth import sign


def intake_app():
    # Keys are checked against the database, which these tests do not start.
    return create_app(settings=IntakeSettings(require_api_key=False, pseudonym_key=secrets.token_urlsafe(48),
                                              identity_key=secrets.token_urlsafe(48)))


def test_invalid_report_gets_422_naming_every_field_and_echoing_no_input():
    client = TestClient(intake_app())
    bad = report(harm="catastrophic", perpetrator={"kind": "patient", "nhs_number": "9434765918"})
    del bad["site"]
    response = client.post("/v1/incidents", json=bad)
    assert response.status_code == 422
    body = response.json()
    assert {e["field"] for e in body["errors"]} == {"harm", "perpetrator.nhs_number", "site"}
    assert all(e["reason"] for e in body["errors"])
    assert "9434765918" not in response.text


def test_a_referral_before_the_incident_is_named_as_police_referred_at_beside_the_other_bad_fields():
    client = TestClient(intake_app())
    bad = report(harm="catastrophic", occurred_at="2025-03-30T01:30:00+00:00",
                 police={"informed": True, "referred_at": "2025-03-29T01:30:00+00:00"})
    response = client.post("/v1/incidents", json=bad)
    assert response.status_code == 422
    found = {e["field"]: e["reason"] for e in response.json()["errors"]}
    assert set(found) == {"harm", "police.referred_at"}
    assert found["police.referred_at"].endswith(" must not be before occurred_at") and "2025-03-29" not in response.text


def test_malformed_json_is_422():
    response = TestClient(intake_app()).post("/v1/incidents", content=b"{not json",
                                              headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_board_range_is_validated(monkeypatch):
    monkeypatch.setenv("AUTH_JWT_SECRET", "unit-test-secret-of-at-least-32-bytes")
    assert TestClient(reporting_app()).get("/v1/metrics/board", params={"period": "2026-01"}).status_code == 401
    token = sign("unit-test-secret-of-at-least-32-bytes", "viewer-1", ["board_viewer"])
    client = TestClient(reporting_app(), headers={"Authorization": f"Bearer {token}"})
    assert client.get("/v1/metrics/board", params={"from": "2026-13", "to": "2026-01"}).status_code == 422
    response = client.get("/v1/metrics/board", params={"from": "2026-05", "to": "2026-01"})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "to"


def test_openapi_documents_the_incident_contract():
    spec = TestClient(intake_app()).get("/openapi.json").json()
    assert "IncidentReport" in spec["components"]["schemas"]
    assert TEST_NHS_NUMBER not in str(spec)


def test_a_body_that_is_not_json_without_an_api_key_is_401_and_moves_no_metric():
    from prometheus_client import REGISTRY

    def refused() -> float:
        return sum(s.value for m in REGISTRY.collect() if m.name == "vanda_intake_incidents"
                   for s in m.samples if s.name.endswith("_total") and s.labels.get("outcome") == "rejected")

    app = create_app(settings=IntakeSettings(pseudonym_key=secrets.token_urlsafe(48),
                                             identity_key=secrets.token_urlsafe(48)))
    before = refused()
    response = TestClient(app).post("/v1/incidents", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 401 and refused() == before


def test_an_unknown_key_is_named_only_when_it_looks_like_a_mistyped_field():
    client = TestClient(intake_app())
    leaky = "Jane Example 9434765919"
    body = report() | {"cateogry": "verbal_abuse", leaky: "x"}
    body["perpetrator"] = body["perpetrator"] | {"nhs9434765919": True}
    response = client.post("/v1/incidents", json=body)
    assert response.status_code == 422
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == ["(unknown field)", "cateogry", "perpetrator.(unknown field)"]
    assert "9434765919" not in response.text and "Jane" not in response.text


def test_an_identity_read_needs_a_purpose_of_real_words(monkeypatch):
    secret = secrets.token_urlsafe(48)
    monkeypatch.setenv("AUTH_JWT_SECRET", secret)
    headers = {"Authorization": f"Bearer {sign(secret, 'clerk-1', ['correspondence'])}"}
    client = TestClient(intake_app(), headers=headers)
    path = "/v1/subjects/sub_" + "a" * 40 + "/identity"
    for blank in ("   ", " a "):
        response = client.get(path, params={"purpose": blank})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "purpose", response.text
        response = client.post(path, json={"purpose": blank})
        assert response.status_code == 422 and response.json()["errors"][0]["field"] == "purpose", response.text


def test_a_body_too_large_is_refused_with_the_request_s_correlation_id():
    request_id = "3f2b6c1e-9a4d-4e8f-8b1a-2c3d4e5f6a7b"
    response = TestClient(intake_app()).post("/v1/incidents", content=b"x" * (257 * 1024),
                                              headers={"content-type": "application/json", "X-Request-ID": request_id})
    assert response.status_code == 413 and response.headers["X-Request-ID"] == request_id


def test_readiness_on_metrics_is_as_of_the_scrape_not_of_the_last_probe():
    # Nothing may call /readyz (a container healthcheck calls /healthz): the gauge the
    # not-ready alert reads must still follow the checks.
    from fastapi import FastAPI

    from vanda.runtime.http import ops_router

    state = {"postgres": False}

    async def checks() -> dict[str, bool]:
        return dict(state)

    async def refresh() -> None:
        return None

    app = FastAPI()
    app.include_router(ops_router(checks, refresh))
    client = TestClient(app)
    assert "\nvanda_ready 0.0" in client.get("/metrics").text
    state["postgres"] = True
    assert "\nvanda_ready 1.0" in client.get("/metrics").text


def test_a_scrape_answers_not_ready_in_time_when_the_checks_and_gauges_hang():
    import asyncio

    from fastapi import FastAPI

    from vanda.runtime.http import ops_router

    async def hanging() -> dict[str, bool]:
        await asyncio.sleep(60)  # a database that takes the connection and never answers
        return {"postgres": True}

    async def refresh() -> None:
        await asyncio.sleep(60)

    app = FastAPI()
    app.include_router(ops_router(hanging, refresh, scrape_budget_s=0.2))
    response = TestClient(app).get("/metrics")
    assert response.status_code == 200 and "\nvanda_ready 0.0" in response.text


def test_the_http_api_is_ready_while_postgresql_answers_whatever_kafka_does():
    # Reports are stored and sent by the outbox: Kafka down must not take the API away.
    from fastapi import FastAPI

    from vanda.runtime.http import ops_router

    state = {"postgres": True, "kafka": False, "outbox_relay": False, "consumers": False}

    async def checks() -> dict[str, bool]:
        return dict(state)

    async def refresh() -> None:
        return None

    async def serving() -> bool:
        return state["postgres"]

    for routes in (ops_router(checks, refresh), ops_router(checks, refresh, serving=serving)):
        app = FastAPI()
        app.include_router(routes)
        client = TestClient(app)
        state["postgres"] = True
        assert client.get("/readyz").status_code == 503
        answer = client.get("/readyz/http")
        assert answer.status_code == 200 and answer.json() == {"status": "ready", "checks": {"postgres": True}}
        state["postgres"] = False
        assert client.get("/readyz/http").status_code == 503
