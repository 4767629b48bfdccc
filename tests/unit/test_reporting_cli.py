"""What `vanda reporting` prints about the database it works on: where, never the password."""

from __future__ import annotations

import pytest

from vanda.reporting_cli import _where


@pytest.mark.parametrize(("url", "said"), [
    ("postgresql://vanda:s3cret@db.example:6432/vanda", "db.example:6432/vanda"),
    ("postgresql://vanda:s3cret@db.example/vanda", "db.example/vanda"),
    # libpq's several hosts: the port of one cannot be read, and must not crash the command.
    ("postgresql://vanda:s3cret@db1:5432,db2:5432/vanda?target_session_attrs=read-write", "db1:5432,db2:5432/vanda"),
    ("postgresql:///vanda", "localhost/vanda"),
])
def test_the_database_is_named_without_its_credentials(url: str, said: str) -> None:
    assert _where(url) == said
    assert "s3cret" not in _where(url)
