"""A start that fails for a reason the operator can act on is said in a line, not a traceback."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from typer.testing import CliRunner

import vanda.devsecrets as devsecrets
import vanda.fleet as fleet
import vanda.runtime.migrate as migrate
import vanda.stack as stack
from vanda.cli import app


@pytest.fixture
def stack_started(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stack part of `up` succeeds without starting anything; the services are what fail."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(stack, "up", lambda home, docker=False: stack.StackInfo("127.0.0.1:1", "postgresql://x@h/db"))
    monkeypatch.setattr(migrate, "apply_all", lambda url: {})
    monkeypatch.setattr(devsecrets, "load", lambda home: {})


@pytest.mark.parametrize("why", ["service exited during start: reporting (see logs/)",
                                 "not ready after 90s: intake (see logs/)"])
def test_services_that_do_not_start_are_named_with_where_to_look(tmp_path: Path, monkeypatch, stack_started,
                                                                 why: str) -> None:
    def start(home, info, env=None):
        raise fleet.StartFailed(why)

    monkeypatch.setattr(fleet, "start", start)
    result = CliRunner().invoke(app, ["up", "--home", str(tmp_path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"starting the services failed: {why}" in result.output and "Traceback" not in result.output
    assert str(tmp_path / "logs") in result.output.replace("\n", "")
    assert not (tmp_path / "endpoints.env").exists()


def test_a_failure_that_is_not_the_operator_s_to_fix_still_shows_its_traceback(tmp_path: Path, monkeypatch,
                                                                              stack_started) -> None:
    def start(home, info, env=None):
        raise KeyError("a bug")

    monkeypatch.setattr(fleet, "start", start)
    result = CliRunner().invoke(app, ["up", "--home", str(tmp_path)])
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)


def test_a_rebuild_given_one_connection_in_the_environment_wants_the_other_there_too(tmp_path: Path,
                                                                                     monkeypatch) -> None:
    # A local stack's endpoints.env beside a production DATABASE_URL: never paired.
    (tmp_path / "endpoints.env").write_text("DATABASE_URL=postgresql://stack/db\nKAFKA_BOOTSTRAP_SERVERS=stack:9092\n")
    monkeypatch.setenv("DATABASE_URL", "postgresql://production/db")
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    result = CliRunner().invoke(app, ["reporting", "rebuild", "--home", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "set KAFKA_BOOTSTRAP_SERVERS too" in result.output


@pytest.mark.parametrize(("args", "said"), [
    (["--ttl", "86400"], "86400 is longer than the services accept (AUTH_MAX_TOKEN_LIFETIME_S, 43200)"),
    (["--ttl", "0"], "--ttl"),
])
def test_a_token_the_services_would_refuse_is_not_signed(tmp_path: Path, monkeypatch, args, said) -> None:
    monkeypatch.setenv("AUTH_JWT_SECRET", secrets.token_urlsafe(32))
    monkeypatch.delenv("AUTH_MAX_TOKEN_LIFETIME_S", raising=False)
    result = CliRunner().invoke(app, ["token", "--role", "operations", "--subject", "me", "--home", str(tmp_path),
                                      *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2 and said in result.output and "eyJ" not in result.output


def test_a_token_for_a_home_with_no_stack_is_not_signed_with_a_secret_made_up_there(tmp_path: Path,
                                                                                   monkeypatch) -> None:
    monkeypatch.delenv("AUTH_JWT_SECRET", raising=False)
    result = CliRunner().invoke(app, ["token", "--role", "operations", "--subject", "me", "--home", str(tmp_path)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "run `vanda up` first" in result.output
    assert not (tmp_path / "dev-secrets.env").exists()
    (tmp_path / "dev-secrets.env").write_text(f"AUTH_JWT_SECRET={secrets.token_urlsafe(32)}\n")  # a stack's
    signed = CliRunner().invoke(app, ["token", "--role", "operations", "--subject", "me", "--home", str(tmp_path)])
    assert signed.exit_code == 0 and signed.output.startswith("eyJ")


def test_migrating_a_service_that_does_not_exist_is_refused_naming_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    result = CliRunner().invoke(app, ["migrate", "--service", "reportnig", "--home", str(tmp_path)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "reportnig: must be one of intake, sanctions, reporting" in result.output


@pytest.mark.parametrize("services", [[], ["--service", "intake", "--service", "sanctions"]])
def test_an_owner_is_given_one_services_schema_or_none(tmp_path: Path, monkeypatch, services) -> None:
    applied = []
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin@db/vanda")
    monkeypatch.setattr(migrate, "apply", lambda url, name: applied.append(name) or 0)
    result = CliRunner().invoke(app, ["migrate", *services, "--owner", "vanda_intake", "--home", str(tmp_path)],
                                env={"COLUMNS": "200"})
    assert result.exit_code == 2 and "a role owns one service's schema" in result.output
    assert applied == []  # refused before anything ran


def test_a_refused_hand_over_says_why_and_that_nothing_changed_hands(tmp_path: Path, monkeypatch) -> None:
    import psycopg

    def refuse(url, name, role):
        raise psycopg.errors.UndefinedObject(f'role "{role}" does not exist')

    monkeypatch.setenv("DATABASE_URL", "postgresql://admin@db/vanda")
    monkeypatch.setattr(migrate, "apply", lambda url, name: 0)
    monkeypatch.setattr(migrate, "hand_over", refuse)
    result = CliRunner().invoke(app, ["migrate", "--service", "intake", "--owner", "vanda_intak",
                                      "--home", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert 'intake: owners left as they were: role "vanda_intak" does not exist' in result.output


@pytest.mark.parametrize(("refusal", "hint"), [
    ('must be able to SET ROLE "vanda_intake"', "GRANT vanda_intake TO <this user>"),
    ('must be member of role "vanda_intake"', "GRANT vanda_intake TO <this user>"),
    ("permission denied for database vanda", "GRANT CREATE ON DATABASE <this database> TO <this user>"),
    ("must be owner of schema reporting_rebuild", "it belongs to another user: run this as a superuser, or as that"),
])
def test_a_hand_over_refused_for_want_of_a_right_names_the_right(tmp_path: Path, monkeypatch, refusal, hint) -> None:
    import psycopg

    def refuse(url, name, role):
        raise psycopg.errors.InsufficientPrivilege(refusal)

    monkeypatch.setenv("DATABASE_URL", "postgresql://admin@db/vanda")
    monkeypatch.setattr(migrate, "apply", lambda url, name: 0)
    monkeypatch.setattr(migrate, "hand_over", refuse)
    result = CliRunner().invoke(app, ["migrate", "--service", "intake", "--owner", "vanda_intake",
                                      "--home", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 1 and hint in result.output and "owners left as they were" in result.output
    assert sum(line in result.output for line in ("GRANT vanda_intake", "GRANT CREATE", "another user")) == 1


def test_a_hand_over_says_what_each_schema_gave(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin@db/vanda")
    monkeypatch.setattr(migrate, "apply", lambda url, name: 0)
    monkeypatch.setattr(migrate, "hand_over", lambda url, name, role: {"reporting": 40, "reporting_rebuild": 12})
    result = CliRunner().invoke(app, ["migrate", "--service", "reporting", "--owner", "vanda_reporting",
                                      "--home", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert ("reporting: schema reporting and 40 object(s) in it, schema reporting_rebuild and 12 object(s) in it"
            " now owned by vanda_reporting") in result.output
