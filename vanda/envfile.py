"""The `KEY=value` files `vanda up` writes into its home (endpoints.env, dev-secrets.env)."""

from __future__ import annotations

import os
from pathlib import Path


def setting(home: Path, name: str) -> str | None:
    """A connection setting: from the environment, else from `vanda up`'s endpoints.env in `home`."""
    return os.environ.get(name) or read(home / "endpoints.env").get(name)


def settings(home: Path, names: tuple[str, ...]) -> dict[str, str | None]:
    """Settings that belong together (connections): all from the environment if any is set there,
    else all from `vanda up`'s endpoints.env in `home`."""
    source = os.environ if any(os.environ.get(name) for name in names) else read(home / "endpoints.env")
    return {name: source.get(name) or None for name in names}


def read(path: Path) -> dict[str, str]:
    """Each `KEY=value` line of `path` (nothing if it does not exist)."""
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
