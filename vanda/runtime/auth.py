"""People's access: signed JWT bearer tokens carrying roles.

Tokens are HS256-signed with a secret from settings; `vanda token` is a development
signer. Each protected route names the role it needs; the token's subject is the actor
written to the audit tables.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from enum import StrEnum

import jwt
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vanda.runtime.settings import StrongSecret

log = logging.getLogger(__name__)
ISSUER = "vanda"
AUDIENCE = "vanda"


class Role(StrEnum):
    SANCTION_APPROVER = "sanction_approver"
    CLINICAL_LEAD = "clinical_lead"
    APPEALS_OFFICER = "appeals_officer"
    OPERATIONS = "operations"
    BOARD_VIEWER = "board_viewer"
    CORRESPONDENCE = "correspondence"
    POLICE_LIAISON = "police_liaison"
    FOOTAGE_OFFICER = "footage_officer"


MAX_TOKEN_LIFETIME_S = 12 * 3600


class AuthSettings(BaseSettings):
    # An empty variable (as env templates leave it) is as if unset.
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore", env_ignore_empty=True)

    jwt_secret: StrongSecret | None = Field(
        None, description="HS256 key, a long random secret; unset refuses every person-facing route.")
    previous_jwt_secrets: list[StrongSecret] = Field(
        default_factory=list, description="Earlier keys (JSON list), still accepted while a rotation reaches the"
        " sign-on proxy and every replica: tokens signed under one are refused once it is dropped.")
    max_token_lifetime_s: int = Field(
        MAX_TOKEN_LIFETIME_S, ge=60, description="A token still valid for longer than this (from now, or from its"
        " iat) is refused: one leaked or minted for years must not open the service for years.")


def auth_settings() -> AuthSettings:
    """The token settings from the environment, with a warning when none can be checked."""
    settings = AuthSettings()
    if settings.jwt_secret is None:
        log.warning("AUTH_JWT_SECRET is not set: every route for people (decisions, board, worklists) answers 401")
    return settings


@dataclass(frozen=True)
class Principal:
    subject: str
    roles: frozenset[str]
    # The organisations (ODS codes) the person acts for, from the token's `orgs`; None, for
    # a token without one, is every organisation (a deployment for one trust needs none).
    organisations: frozenset[str] | None = None

    def acts_for(self, organisation: str) -> bool:
        return self.organisations is None or organisation.upper() in self.organisations

    def scope(self, organisation: str | None) -> list[str] | None:
        """The organisations a read may cover: the one asked for, else every one the person
        acts for (None: all). Raises PermissionError for one the person does not act for."""
        if organisation is not None:
            if not self.acts_for(organisation):
                raise PermissionError(f"organisation: this token does not act for {organisation.upper()}")
            return [organisation.upper()]
        return None if self.organisations is None else sorted(self.organisations)


LEEWAY_S = 30


def sign(secret: str, subject: str, roles: list[str], ttl_s: int = 3600, orgs: list[str] | None = None) -> str:
    """A token for `subject` with `roles`, valid for `ttl_s` seconds, for `orgs` only if given."""
    now = int(time.time())
    claims = {"sub": subject, "roles": roles, "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl_s}
    if orgs is not None:
        claims["orgs"] = orgs
    return jwt.encode(claims, secret, algorithm="HS256")


def verify(secret: str, token: str, max_lifetime_s: int = MAX_TOKEN_LIFETIME_S) -> Principal:
    """The principal a valid token names; raises jwt.InvalidTokenError otherwise."""
    # Leeway: the sign-on proxy's clock may run a few seconds ahead of this one.
    claims = jwt.decode(token, secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER, leeway=LEEWAY_S,
                        options={"require": ["sub", "exp", "roles"]})
    # Judged from now, so that a token with no iat is capped too; and from its iat when it has
    # one, so that a long-lived token is refused from the first use, not only once it is old.
    start, issued, expires = time.time(), claims.get("iat"), claims["exp"]
    if isinstance(issued, int | float):
        start = min(start, issued)
    # PyJWT takes a numeric string for exp: a number is what the cap can be judged on.
    if not isinstance(expires, int | float) or isinstance(expires, bool):
        raise jwt.InvalidTokenError("exp must be a number of seconds")
    if expires - start > max_lifetime_s + LEEWAY_S:
        raise jwt.InvalidTokenError(f"the token is valid for longer than the {max_lifetime_s} s allowed")
    subject, roles = claims["sub"], claims["roles"]
    # The subject is the actor every audit row names; roles are a list of names, nothing else.
    if not isinstance(subject, str) or not subject.strip():
        raise jwt.InvalidTokenError("sub must name the person")
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise jwt.InvalidTokenError("roles must be a list of role names")
    # No `orgs` claim is every organisation; one present must be a list. A null is refused, not
    # read as the claim left out: a sign-on proxy writing null for a user its directory gives
    # no organisation would otherwise grant a region.
    orgs = claims.get("orgs")
    if "orgs" in claims and (not isinstance(orgs, list) or not all(isinstance(o, str) and o.strip() for o in orgs)):
        raise jwt.InvalidTokenError("orgs must be a list of ODS codes")
    return Principal(subject, frozenset(roles), None if orgs is None else frozenset(o.strip().upper() for o in orgs))


def authorize(settings: AuthSettings, authorization: str | None, *roles: Role) -> Principal:
    """The caller named by an Authorization header: 401 without a valid token, 403 without any of `roles`."""
    scheme, _, token = (authorization or "").partition(" ")
    if settings.jwt_secret is None or scheme.lower() != "bearer" or not token:
        raise HTTPException(401, detail="a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    try:
        principal = _verified(settings, token)
    except jwt.PyJWTError as exc:  # InvalidTokenError, and anything a key it was tried under raises
        raise HTTPException(401, detail=f"invalid token: {exc}", headers={"WWW-Authenticate": "Bearer"}) from None
    if principal.roles.isdisjoint(roles):
        needed = " or ".join(roles)
        raise HTTPException(403, detail=f"the {needed} role is required")
    return principal


def _verified(settings: AuthSettings, token: str) -> Principal:
    """The token checked under the current key, then, if its signature does not match, under
    each earlier one: during a rotation the proxy and the replicas move over one at a time."""
    assert settings.jwt_secret is not None
    keys = [settings.jwt_secret, *settings.previous_jwt_secrets]
    for key in keys[:-1]:
        try:
            return verify(key.get_secret_value(), token, settings.max_token_lifetime_s)
        except jwt.InvalidSignatureError:
            continue
    return verify(keys[-1].get_secret_value(), token, settings.max_token_lifetime_s)


# Declared as a security scheme so that the OpenAPI page offers "Authorize" for a token.
BEARER = HTTPBearer(auto_error=False, description="A token from the trust's sign-on, or `vanda token` locally.")


def require(*roles: Role, settings: AuthSettings):  # noqa: ANN201 - a FastAPI dependency
    """Dependency form of authorize()."""

    def check(credentials: HTTPAuthorizationCredentials | None = Depends(BEARER)) -> Principal:
        header = f"{credentials.scheme} {credentials.credentials}" if credentials else None
        return authorize(settings, header, *roles)

    return check
