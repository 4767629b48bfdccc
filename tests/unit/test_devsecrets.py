"""Development secrets: made once per home, and a secret set in the environment never copied to disk."""

from __future__ import annotations

import stat

from vanda import devsecrets, envfile


def test_secrets_are_made_once_owner_only_and_one_from_the_environment_is_used_but_never_written(tmp_path,
                                                                                                 monkeypatch):
    for name in devsecrets.NAMES:
        monkeypatch.delenv(name, raising=False)
    first = devsecrets.load(tmp_path)
    path = tmp_path / "dev-secrets.env"
    assert devsecrets.load(tmp_path) == first == envfile.read(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    real = "a-real-secret-from-the-trusts-store-" + "x9" * 10
    monkeypatch.setenv("AUTH_JWT_SECRET", real)
    values = devsecrets.load(tmp_path)
    assert values["AUTH_JWT_SECRET"] == real and real not in path.read_text()
    assert envfile.read(path) == first  # the file's own secrets stay as they were

    fresh = tmp_path / "fresh"
    devsecrets.load(fresh)
    assert "AUTH_JWT_SECRET" not in envfile.read(fresh / "dev-secrets.env") and real not in (
        fresh / "dev-secrets.env").read_text()
