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
    """Each secret from the environment if set, else from `<home>/dev-secrets.env`, else new.
    Only the file's own and new ones are written to it: one set in the environment may be a
    real secret, and is never copied to disk."""
    path = home / "dev-secrets.env"
    stored = envfile.read(path)
    kept = {name: stored.get(name) or secrets.token_urlsafe(32) for name in NAMES
            if name in stored or not os.environ.get(name)}
    if kept != stored:
        home.mkdir(parents=True, exist_ok=True)
        # Created owner-only: written first and narrowed after, it would be readable meanwhile.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write("".join(f"{k}={v}\n" for k, v in kept.items()))
        path.chmod(0o600)
    return {name: os.environ.get(name) or kept[name] for name in NAMES}
