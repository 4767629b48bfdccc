"""Development secrets for a local stack: generated once per home, never committed.

Production sets these through its secret store; `vanda up` makes random ones for a
developer's machine so nothing runs on a well-known default.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from vanda import envfile

NAMES = ("AUTH_JWT_SECRET", "INTAKE_PSEUDONYM_KEY", "INTAKE_IDENTITY_KEY")


def load(home: Path) -> dict[str, str]:
    """Each secret from the environment if set, else from `<home>/dev-secrets.env`, else new."""
    path = home / "dev-secrets.env"
    stored = envfile.read(path)
    values = {name: os.environ.get(name) or stored.get(name) or secrets.token_urlsafe(32) for name in NAMES}
    if values != stored:
        home.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
        path.chmod(0o600)
    return values
