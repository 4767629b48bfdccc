"""Keys that guard personal data or people's tokens: required, long, never a copied example."""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys

import pytest
from pydantic import SecretStr, ValidationError

from schemas.incidents import IncidentReport
from services.intake.bootstrap import keyring
from services.intake.config import IntakeSettings
from tests.conftest import ROOT
from vanda.runtime.auth import AuthSettings
from vanda.runtime.settings import explain, strong_secret
from vanda.stack.ports import free_port

RANDOM = secrets.token_urlsafe(48)


@pytest.mark.parametrize(("value", "reason"), [
    ("", "at least 32 characters, got 0"),
    ("short-but-random-Zq8", "at least 32 characters, got 20"),
    ("CHANGE-ME-to-a-long-random-value", "placeholder"),
    ("development-only-pseudonym-key-change-me", "placeholder"),
    ("an-example-key-that-is-long-enough-to-pass", "placeholder"),
    ("a" * 32, "too few characters"),
    ("password" * 4, "too few characters"),
])
def test_weak_secrets_are_refused_with_the_reason(value, reason):
    with pytest.raises(ValueError, match=reason):
        strong_secret(SecretStr(value))


def test_a_random_secret_passes():
    assert strong_secret(SecretStr(RANDOM)).get_secret_value() == RANDOM
    draw = random.Random(16)
    for _ in range(200):  # as openssl rand -hex 16 makes them, too
        hex_secret = "".join(draw.choices("0123456789abcdef", k=32))
        assert strong_secret(SecretStr(hex_secret)).get_secret_value() == hex_secret


def test_intake_has_no_default_keys_and_says_which_variables_to_set(monkeypatch):
    for name in ("INTAKE_PSEUDONYM_KEY", "INTAKE_IDENTITY_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValidationError) as refused:
        IntakeSettings()
    assert explain(refused.value) == ["INTAKE_PSEUDONYM_KEY: Field required", "INTAKE_IDENTITY_KEY: Field required"]
    assert IntakeSettings(pseudonym_key=RANDOM, identity_key=RANDOM).pseudonym_key.get_secret_value() == RANDOM


def test_earlier_identity_keys_reach_the_keyring_after_the_current_one(monkeypatch):
    older, oldest = RANDOM[::-1], RANDOM[1:] + RANDOM[0]
    monkeypatch.setenv("INTAKE_PREVIOUS_IDENTITY_KEYS", f'["{older}", "{oldest}"]')
    ring = keyring(IntakeSettings(pseudonym_key=RANDOM, identity_key=RANDOM))
    assert ring.identity_key == RANDOM.encode() and ring.previous_identity_keys == (older.encode(), oldest.encode())


@pytest.mark.parametrize(("variable", "value"), [("INTAKE_PREVIOUS_PSEUDONYM_KEYS", '{"1": "change-me"}'),
                                                  ("INTAKE_PREVIOUS_IDENTITY_KEYS", '["a"]')])
def test_an_earlier_key_must_be_as_strong_as_the_current_one(monkeypatch, variable, value):
    """Earlier keys stay in use: new people are remembered under each, identities read under them."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError) as refused:
        IntakeSettings(pseudonym_key=RANDOM, identity_key=RANDOM)
    [problem] = explain(refused.value)
    assert problem.startswith(f"{variable}") and "must be a random secret of at least 32 characters" in problem
    assert "change-me" not in problem


def test_a_token_secret_may_be_unset_but_never_weak(monkeypatch):
    monkeypatch.delenv("AUTH_JWT_SECRET", raising=False)
    assert AuthSettings().jwt_secret is None  # then every person-facing route answers 401
    monkeypatch.setenv("AUTH_JWT_SECRET", "CHANGE-ME")
    with pytest.raises(ValidationError) as refused:
        AuthSettings()
    [problem] = explain(refused.value)
    assert problem.startswith("AUTH_JWT_SECRET: must be a random secret of at least 32 characters")
    assert "CHANGE-ME" not in problem  # the value itself is never echoed


def test_explain_leaves_errors_of_other_models_alone():
    with pytest.raises(ValidationError) as other:
        IncidentReport.model_validate({})
    assert explain(other.value) is None


def test_a_service_with_a_bad_setting_exits_2_naming_the_variable():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INTAKE_", "AUTH_"))}
    env |= {"INTAKE_PSEUDONYM_KEY": "CHANGE-ME-to-a-long-random-value", "INTAKE_IDENTITY_KEY": RANDOM}
    result = subprocess.run([sys.executable, "-m", "vanda", "serve", "intake", "--port", str(free_port())],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "configuration: INTAKE_PSEUDONYM_KEY: is a placeholder" in output
    assert "Traceback" not in output and RANDOM not in output


def test_a_pool_of_one_is_refused_naming_the_variable():
    from vanda.runtime.settings import CommonSettings

    # A timed round holds a connection for its lock while it works with another: one would hang.
    with pytest.raises(ValidationError) as refused:
        CommonSettings(db_pool_max=1)
    [problem] = explain(refused.value)
    assert problem.startswith("DB_POOL_MAX: ") and "2" in problem
    assert CommonSettings(db_pool_max=2).db_pool_max == 2
