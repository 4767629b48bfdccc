"""Schemathesis against the running intake: no 5xx, answers as documented, no invalid record accepted.

The schema is loaded from the live service (`/openapi.json`), so the fuzz follows the API
as it is served: every operation under `/v1/` gets schema-valid and schema-invalid
requests (derandomised hypothesis: the same requests on every run), with the API key
when the pipeline has one. Half of the corrections target a real incident, so amendments
get past the 404 and reach the amendment rules.

Checks on every answer: schemathesis's `not_a_server_error`, `response_schema_conformance`
and `content_type_conformance`; a 202 from `POST /v1/incidents` re-validated here against
`schemas.incidents.IncidentReport` (and an applied `PATCH` against `IncidentAmendment`):
intake must never accept what its own contract rejects; and no refusal echoes the
submitted NHS number, local id or narrative.

Cases come from `APIOperation.as_strategy` under a plain `hypothesis.given`, not from
`schemathesis.pytest.from_fixture(...).parametrize()`: that lazy loader (schemathesis
4.32) rewrites `request.node._nodeid`, which pytest 9.2 no longer has.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from pydantic import ValidationError
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from schemas.incidents import IncidentAmendment, IncidentReport
from tests.factories import report
from tests.security.helpers import intake_headers
from tests.security.scanner import nhs_like_tokens

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 150  # per operation, positive and negative together
FUZZ_NHS = "9990000204"  # test range, valid check digit: the perpetrator of the seeded incidents
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

# What the fuzz saw, by (method path, status).
OUTCOMES: Counter[tuple[str, int]] = Counter()


@pytest.fixture(scope="module")
def intake_api(pipeline):
    headers = intake_headers(pipeline)
    config = schemathesis.Config.from_dict({
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True, "database": "none"},
        "request-timeout": 30,
        **({"headers": headers} if headers else {}),
    })
    return schemathesis.openapi.from_url(f"{pipeline['INTAKE_URL']}/openapi.json", config=config,
                                         headers=headers, timeout=30)


@pytest.fixture(scope="module")
def seeded_incidents(pipeline) -> dict[str, str]:
    """One real incident to amend and one to withdraw, so corrections are not all 404s."""
    ids = {}
    with httpx.Client(base_url=pipeline["INTAKE_URL"], headers=intake_headers(pipeline), timeout=30) as client:
        for purpose in ("amend", "withdraw"):
            body = report(site="Fuzz target site",
                          perpetrator={"kind": "patient", "nhs_number": FUZZ_NHS, "age_band": "18_to_64"})
            response = client.post("/v1/incidents", json=body)
            assert response.status_code == 202, response.text
            ids[purpose] = response.json()["incident_id"]
    return ids


def _is_uuid(value: object) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def prepare(case, seeded: dict[str, str], turn: int) -> None:
    """Aim every other correction at a real incident, so it reaches the amendment rules."""
    target = "withdraw" if case.path.endswith("/withdraw") else "amend"
    if "incident_id" in case.path_parameters and _is_uuid(case.path_parameters["incident_id"]) and turn % 2:
        case.path_parameters["incident_id"] = seeded[target]


def published_text_outside_the_identifier(case) -> str:
    """The parts of a request that may legitimately travel on (all but the NHS number and narrative)."""
    body = case.body
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k not in ("narrative", "perpetrator")}
    elif isinstance(body, list):
        body = [{k: v for k, v in b.items() if k not in ("narrative", "perpetrator")} if isinstance(b, dict) else b
                for b in body]
    return json.dumps([body, case.path_parameters, dict(case.headers or {})], default=str)


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value) -> bytes:
    """The batch endpoint's body: each generated item on its own line (anything else as one line)."""
    items = value if isinstance(value, list) else [value]
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def fuzz_operation(operation, pipeline, seeded: dict[str, str]) -> None:
    """Positive and negative cases for one operation, derandomised, checked as they come back."""
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE))
    headers = intake_headers(pipeline)
    turns = iter(range(10**9))

    @hypothesis.settings(max_examples=MAX_EXAMPLES, derandomize=True, database=None, deadline=None,
                         phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate, hypothesis.Phase.shrink],
                         suppress_health_check=[hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.filter_too_much,
                                                hypothesis.HealthCheck.data_too_large])
    @hypothesis.given(case=strategy)
    def one_request(case) -> None:
        prepare(case, seeded, next(turns))
        # The leak scan treats any valid-looking NHS number on a topic or in a log as a leak.
        # A generated site or source_system that happens to be one would be published as
        # written: the sender's data, not a leak by intake, so such cases are not sent.
        hypothesis.assume(not nhs_like_tokens(published_text_outside_the_identifier(case)))
        response = case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)
        OUTCOMES[(f"{case.method} {case.operation.path}", response.status_code)] += 1
        check_nothing_invalid_was_accepted(case, response)
        check_no_identifier_echoed(case, response)

    one_request()


def check_nothing_invalid_was_accepted(case, response) -> None:
    """A 202 report, or an applied amendment, must validate against the contract it claims to enforce."""
    if case.method == "POST" and case.operation.path == "/v1/incidents:batch" and response.status_code == 200:
        items = case.body if isinstance(case.body, list) else [case.body]
        for result in response.json()["results"]:
            if result["status"] != "rejected":
                check_valid(IncidentReport, items[result["line"] - 1], response)
        return
    if case.method == "POST" and case.operation.path == "/v1/incidents" and response.status_code == 202:
        contract = IncidentReport
    elif case.method == "PATCH" and response.status_code == 200 and response.json().get("status") == "amended":
        contract = IncidentAmendment
    else:
        return
    check_valid(contract, case.body, response)


def check_valid(contract, body, response) -> None:
    try:
        contract.model_validate_json(json.dumps(body))
    except ValidationError as exc:
        raise AssertionError(f"intake answered {response.status_code} to a body {contract.__name__} rejects:"
                             f" {exc}\nbody: {body!r}") from None


def sensitive_values(body: object) -> list[str]:
    """The NHS number, local id and narrative of a request body, where they are strings worth finding."""
    if isinstance(body, list):
        return [v for item in body for v in sensitive_values(item)]
    if not isinstance(body, dict):
        return []
    perpetrator = body.get("perpetrator") if isinstance(body.get("perpetrator"), dict) else {}
    values = [body.get("narrative"), perpetrator.get("nhs_number"), perpetrator.get("local_id")]
    return [v for v in values if isinstance(v, str) and len(v.strip()) >= 8]


def check_no_identifier_echoed(case, response) -> None:
    """Refusals name the bad field and why, never the submitted identifier or narrative."""
    if response.status_code < 400:
        return
    text = response.text
    echoed = [v for v in sensitive_values(case.body) if v in text or json.dumps(v)[1:-1] in text]
    assert not echoed, f"{response.status_code} response echoes a submitted identifier or narrative: {text[:500]}"


def test_intake_survives_fuzzing_and_accepts_only_valid_records(intake_api, pipeline, seeded_incidents):
    results = list(intake_api.get_all_operations())
    assert all(isinstance(r, Ok) for r in results), [str(r.err()) for r in results if not isinstance(r, Ok)]
    operations = [r.ok() for r in results if r.ok().path.startswith("/v1/")]
    # Every operation the live service documents under /v1/ is fuzzed, new ones included.
    assert {f"{o.method.upper()} {o.path}" for o in operations} >= {
        "POST /v1/incidents", "PATCH /v1/incidents/{incident_id}", "POST /v1/incidents/{incident_id}/withdraw"}
    failures = {}
    for operation in operations:
        try:
            fuzz_operation(operation, pipeline, seeded_incidents)
        except Exception as exc:  # noqa: BLE001 - report every operation's failure, not only the first
            failures[f"{operation.method.upper()} {operation.path}"] = exc
    assert not failures, "\n\n".join(f"{label}:\n{exc}" for label, exc in failures.items())
    statuses = {status for (op, status) in OUTCOMES if op == "POST /v1/incidents"}
    # Guard against a vacuous pass: reports must have been both accepted and refused.
    assert 202 in statuses and 422 in statuses, dict(OUTCOMES)


NUL = "nul\x00byte"


@pytest.mark.parametrize("field", ["narrative", "site", "source_ref", "source_system", "police.crime_reference",
                                   "PATCH police.crime_reference"])
def test_a_nul_character_is_refused_not_a_server_error(pipeline, seeded_incidents, field):
    headers = intake_headers(pipeline)
    with httpx.Client(base_url=pipeline["INTAKE_URL"], headers=headers, timeout=30) as client:
        if field.startswith("PATCH "):
            response = client.patch(f"/v1/incidents/{seeded_incidents['amend']}",
                                    json={"police": {"informed": True, "crime_reference": NUL}})
        elif field == "police.crime_reference":
            response = client.post("/v1/incidents", json=report(police={"informed": True, "crime_reference": NUL}))
        else:
            body = report(perpetrator={"kind": "unknown"})
            response = client.post("/v1/incidents", json=body | {field: body[field] + NUL})
    assert response.status_code < 500, f"{field}: {response.status_code} {response.text[:200]}"
