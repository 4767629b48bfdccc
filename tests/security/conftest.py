"""The leak scan reads what the whole session produced, so it must run after every other test."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "runs_last: runs after every other test of the session (the leak scan)")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Whatever order the folders were given in (`pytest tests` runs security before unit),
    # the scan sees every topic, log and table the rest of the run wrote.
    last = [item for item in items if item.get_closest_marker("runs_last")]
    if last:
        items[:] = [item for item in items if item not in last] + last
