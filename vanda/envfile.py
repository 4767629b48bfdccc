"""The `KEY=value` files `vanda up` writes into its home (endpoints.env, dev-secrets.env)."""

from __future__ import annotations

from pathlib import Path


def read(path: Path) -> dict[str, str]:
    """Each `KEY=value` line of `path` (nothing if it does not exist)."""
    if not path.exists():
        return {}
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
