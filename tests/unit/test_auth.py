"""Bearer tokens and roles: who gets 401, who gets 403, who gets through."""

from __future__ import annotations

import time

import jwt
import orjson
import pytest
from fastapi import HTTPException
from pydantic import SecretStr

from tests.conftest import ROOT
from vanda.runtime.auth import AUDIENCE, ISSUER, AuthSettings, Role, auth_settings, authorize, sign

SECRET = "unit-test-secret-of-at-least-32-bytes"
SETTINGS = AuthSettings(jwt_secret=SecretStr(SECRET))


def header(roles: list[str], secret: str = SECRET, ttl_s: int = 60) -> str:
    return f"Bearer {sign(secret, 'staff-1', roles, ttl_s)}"


# Tokens are signed when a case runs, not when the cases are collected: a suite can take
# longer than a token lives.
@pytest.mark.parametrize(("authorization", "needed", "status"), [
    (lambda: None, (Role.OPERATIONS,), 401),
    (lambda: "Basic abc", (Role.OPERATIONS,), 401),
    (lambda: "Bearer ", (Role.OPERATIONS,), 401),
    (lambda: header(["operations"], secret="another secret, also 32 bytes long"), (Role.OPERATIONS,), 401),
    (lambda: header(["operations"], ttl_s=-60), (Role.OPERATIONS,), 401),
    (lambda: header(["board_viewer"]), (Role.OPERATIONS,), 403),
    (lambda: header([]), (Role.BOARD_VIEWER, Role.OPERATIONS), 403),
    (lambda: header(["police_liaison"]), (Role.BOARD_VIEWER, Role.OPERATIONS), 403),
], ids=["no header", "basic", "empty bearer", "another secret", "expired", "wrong role", "no role", "other role"])
def test_refused(authorization, needed, status):
    with pytest.raises(HTTPException) as refused:
        authorize(SETTINGS, authorization(), *needed)
    assert refused.value.status_code == status


@pytest.mark.parametrize(("roles", "needed"), [
    (["operations"], (Role.OPERATIONS,)),
    (["board_viewer"], (Role.BOARD_VIEWER, Role.OPERATIONS)),
    (["operations"], (Role.BOARD_VIEWER, Role.OPERATIONS)),
    (["correspondence", "police_liaison"], (Role.POLICE_LIAISON,)),
])
def test_any_one_of_the_roles_is_enough(roles, needed):
    principal = authorize(SETTINGS, header(roles), *needed)
    assert principal.subject == "staff-1" and principal.roles == frozenset(roles)


def test_the_refusal_names_every_role_that_would_do():
    with pytest.raises(HTTPException) as refused:
        authorize(SETTINGS, header(["correspondence"]), Role.BOARD_VIEWER, Role.OPERATIONS)
    assert refused.value.detail == "the board_viewer or operations role is required"


def _claims(**changes) -> str:
    now = int(time.time())
    claims = {"sub": "staff-1", "roles": ["operations"], "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    return "Bearer " + jwt.encode(claims | changes, SECRET, algorithm="HS256")


@pytest.mark.parametrize("changes", [
    {"roles": 5}, {"roles": "operations"}, {"roles": [["operations"]]}, {"sub": ""}, {"sub": "  "}, {"sub": 7},
    {"exp": str(int(time.time()) + 60)},
], ids=["roles a number", "roles a string", "roles nested", "empty sub", "blank sub", "sub a number",
        "exp a numeric string"])
def test_a_token_whose_claims_are_the_wrong_shape_is_refused_not_an_error(changes):
    with pytest.raises(HTTPException) as refused:
        authorize(SETTINGS, _claims(**changes), Role.OPERATIONS)
    assert refused.value.status_code == 401


def test_a_token_from_a_clock_a_few_seconds_ahead_is_accepted():
    ahead = int(time.time()) + 5
    assert authorize(SETTINGS, _claims(iat=ahead, nbf=ahead), Role.OPERATIONS).subject == "staff-1"
    with pytest.raises(HTTPException) as refused:
        authorize(SETTINGS, _claims(iat=ahead + 120, nbf=ahead + 120), Role.OPERATIONS)
    assert refused.value.status_code == 401


def test_a_token_valid_for_longer_than_the_cap_is_refused_from_its_first_use():
    now, hour = int(time.time()), 3600
    assert authorize(SETTINGS, _claims(iat=now, exp=now + 12 * hour), Role.OPERATIONS).subject == "staff-1"
    for too_long in ({"iat": now, "exp": now + 13 * hour},  # from its first use, not once it is old
                     {"exp": now + 13 * hour},  # no iat: judged from now
                     {"iat": now - 11 * hour, "exp": now + 2 * hour},  # 13 hours in all
                     {"iat": now, "exp": now + 100 * 365 * 24 * hour}):
        token = "Bearer " + jwt.encode({"sub": "staff-1", "roles": ["operations"], "iss": ISSUER, "aud": AUDIENCE}
                                       | too_long, SECRET, algorithm="HS256")
        with pytest.raises(HTTPException) as refused:
            authorize(SETTINGS, token, Role.OPERATIONS)
        assert refused.value.status_code == 401 and "longer than the 43200 s allowed" in refused.value.detail
    shorter = AuthSettings(jwt_secret=SecretStr(SECRET), max_token_lifetime_s=hour)
    with pytest.raises(HTTPException):
        authorize(shorter, _claims(iat=now, exp=now + 2 * hour), Role.OPERATIONS)


def test_no_secret_refuses_everyone():
    with pytest.raises(HTTPException) as refused:
        authorize(AuthSettings(jwt_secret=None), header(["operations"]), Role.OPERATIONS)
    assert refused.value.status_code == 401


# Routes that answer without a person's token: probes and metrics, and intake's report routes,
# which take an upstream system's X-API-Key instead.
OPEN = {("*", "/healthz"), ("*", "/readyz"), ("*", "/readyz/http"), ("*", "/metrics")}
SYSTEMS = {"/v1/incidents", "/v1/incidents/{incident_id}", "/v1/incidents/{incident_id}/withdraw",
           "/v1/incidents:batch"}


@pytest.mark.parametrize("service", ["intake", "sanctions", "reporting"])
def test_every_person_facing_route_needs_a_bearer_token(service):
    # The checked-in OpenAPI documents are the code's own (test_docs fails when they drift).
    spec = orjson.loads((ROOT / "docs" / "openapi" / f"{service}.json").read_bytes())
    unguarded = {path for path, operations in spec["paths"].items() for operation in operations.values()
                 if not operation.get("security") and ("*", path) not in OPEN}
    api_keyed = {path for path in unguarded if path in SYSTEMS and service == "intake"}
    assert unguarded == api_keyed
    assert all("X-API-Key" in [p["name"] for op in spec["paths"][path].values() for p in op.get("parameters", [])]
               for path in api_keyed)


def test_a_service_without_a_token_secret_says_so_at_start(monkeypatch, caplog):
    monkeypatch.delenv("AUTH_JWT_SECRET", raising=False)
    assert auth_settings().jwt_secret is None
    assert "AUTH_JWT_SECRET is not set" in caplog.text
    caplog.clear()
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    assert auth_settings().jwt_secret.get_secret_value() == SECRET
    assert "AUTH_JWT_SECRET" not in caplog.text


def test_a_token_may_name_the_organisations_its_person_acts_for():
    everyone = authorize(SETTINGS, _claims(), Role.OPERATIONS)
    assert everyone.organisations is None and everyone.acts_for("RJ1") and everyone.scope(None) is None
    assert everyone.scope("rj1") == ["RJ1"]
    some = authorize(SETTINGS, _claims(orgs=["rj1", " RXX "]), Role.OPERATIONS)
    assert some.organisations == frozenset({"RJ1", "RXX"}) and some.acts_for("rj1") and not some.acts_for("RYY")
    assert some.scope(None) == ["RJ1", "RXX"] and some.scope("rxx") == ["RXX"]
    with pytest.raises(PermissionError, match="does not act for RYY"):
        some.scope("ryy")
    nobody = authorize(SETTINGS, _claims(orgs=[]), Role.OPERATIONS)
    assert nobody.scope(None) == [] and not nobody.acts_for("RJ1")


@pytest.mark.parametrize("orgs", ["RJ1", [1], [""], [["RJ1"]], {"RJ1": True}, None],
                         ids=["a string", "a number", "blank", "nested", "a mapping", "null, not every organisation"])
def test_organisations_that_are_not_a_list_of_codes_refuse_the_token(orgs):
    with pytest.raises(HTTPException) as refused:
        authorize(SETTINGS, _claims(orgs=orgs), Role.OPERATIONS)
    assert refused.value.status_code == 401 and "orgs" in refused.value.detail


def test_a_token_signed_under_an_earlier_key_is_accepted_while_that_key_is_listed():
    """A rotation reaches the sign-on proxy and each replica in turn: meanwhile tokens signed
    under the old key still work, and once it is dropped they no longer do."""
    old, new = "old-secret-of-at-least-32-bytes-long", "new-secret-of-at-least-32-bytes-long"
    rotating = AuthSettings(jwt_secret=SecretStr(new), previous_jwt_secrets=[SecretStr(old)])
    assert authorize(rotating, header(["operations"], secret=old), Role.OPERATIONS).subject == "staff-1"
    assert authorize(rotating, header(["operations"], secret=new), Role.OPERATIONS).subject == "staff-1"
    for settings, secret in ((AuthSettings(jwt_secret=SecretStr(new)), old),
                             (rotating, "another-secret-of-at-least-32-bytes")):
        with pytest.raises(HTTPException) as refused:
            authorize(settings, header(["operations"], secret=secret), Role.OPERATIONS)
        assert refused.value.status_code == 401
    # Expiry is judged under whichever key signed it: an old key's token past its time is refused.
    with pytest.raises(HTTPException, match="expired"):
        authorize(rotating, header(["operations"], secret=old, ttl_s=-60), Role.OPERATIONS)


def test_an_earlier_key_must_be_as_strong_as_the_current_one_and_an_empty_list_is_none(monkeypatch):
    """A weak earlier key would let anyone sign themselves any role while it is listed."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="previous_jwt_secrets"):
        AuthSettings(jwt_secret=SecretStr(SECRET), previous_jwt_secrets=[SecretStr("CHANGE-ME")])
    monkeypatch.setenv("AUTH_JWT_SECRET", SECRET)
    monkeypatch.setenv("AUTH_PREVIOUS_JWT_SECRETS", "")  # as an env template leaves it
    assert AuthSettings().previous_jwt_secrets == []
