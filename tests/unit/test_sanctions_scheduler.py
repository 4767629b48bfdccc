"""A scheduler round: one subject whose round fails does not hold up the expiry of every subject
after it, and each tick is stamped when its subject is had."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.sanctions import handlers
from tests.factories import T0
from tests.unit.sanctions_cases import POLICY


class _Pool:
    """Stands in for the pool only: the point here is the loop over subjects, not PostgreSQL."""

    def acquire(self):
        return self

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False

    def transaction(self):
        return self


async def free(conn, subject_id):
    return True


async def test_a_failing_subject_is_reported_after_every_other_subject_s_round(monkeypatch):
    done: list[str] = []

    async def due(conn, now, review_days, window_days):
        return ["sub_broken", "sub_a", "sub_b"]

    async def apply(conn, subject_id, command, policy, clock, seen=None):
        if subject_id == "sub_broken":
            raise ValueError("a state that no longer loads")
        done.append(subject_id)
        return None, ["an event"]

    monkeypatch.setattr(handlers.adapters, "due_subjects", due)
    monkeypatch.setattr(handlers.adapters, "try_lock_subject", free)
    monkeypatch.setattr(handlers, "apply", apply)
    with pytest.raises(handlers.SchedulerIncomplete, match=r"^1 subject\(s\) failed; 2 event"):
        await handlers.run_scheduler(_Pool(), POLICY, T0)
    assert done == ["sub_a", "sub_b"]


async def test_an_outage_stops_the_round_to_be_retried_whole(monkeypatch):
    async def due(conn, now, review_days, window_days):
        return ["sub_a", "sub_b"]

    async def apply(conn, subject_id, command, policy, clock, seen=None):
        raise ConnectionResetError("database away")

    monkeypatch.setattr(handlers.adapters, "due_subjects", due)
    monkeypatch.setattr(handlers.adapters, "try_lock_subject", free)
    monkeypatch.setattr(handlers, "apply", apply)
    with pytest.raises(ConnectionResetError):
        await handlers.run_scheduler(_Pool(), POLICY, T0)


async def test_a_subject_someone_else_holds_is_left_to_the_next_round_not_waited_for(monkeypatch):
    """A consumer's batch holds its subjects for its whole run: waiting for one could outlast
    the statement timeout and end the round for every subject after it."""
    done: list[str] = []

    async def due(conn, now, review_days, window_days):
        return ["sub_a", "sub_held", "sub_b"]

    async def held_elsewhere(conn, subject_id):
        return subject_id != "sub_held"

    async def apply(conn, subject_id, command, policy, clock, seen=None):
        done.append(subject_id)
        return None, ["an event"]

    monkeypatch.setattr(handlers.adapters, "due_subjects", due)
    monkeypatch.setattr(handlers.adapters, "try_lock_subject", held_elsewhere)
    monkeypatch.setattr(handlers, "apply", apply)
    assert await handlers.run_scheduler(_Pool(), POLICY, T0) == 2
    assert done == ["sub_a", "sub_b"]


async def test_each_subject_s_tick_is_stamped_when_it_is_had_never_before_the_round(monkeypatch):
    """A long round: a batch may decide on a subject after the round began and before its tick."""
    stamps: list = []
    times = iter([T0 + timedelta(seconds=5), T0 - timedelta(seconds=1)])

    async def due(conn, now, review_days, window_days):
        return ["sub_a", "sub_b"]

    async def apply(conn, subject_id, command, policy, clock, seen=None):
        stamps.append(clock())
        return None, []

    monkeypatch.setattr(handlers.adapters, "due_subjects", due)
    monkeypatch.setattr(handlers.adapters, "try_lock_subject", free)
    monkeypatch.setattr(handlers, "apply", apply)
    await handlers.run_scheduler(_Pool(), POLICY, T0, lambda: next(times))
    assert stamps == [T0 + timedelta(seconds=5), T0]  # a clock behind the round's start: the start
