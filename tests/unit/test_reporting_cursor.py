"""Worklist page cursors: what one page hands out, the next reads back; anything else is refused."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.reporting.domain import cursor


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=1))])), st.uuids())
def test_a_cursor_reads_back_as_the_position_it_was_made_from(at, item):
    token = cursor.encode(at, item)
    assert cursor.decode(token) == (at, item)
    assert token.isascii() and "=" not in token and "/" not in token and "+" not in token


def test_no_cursor_means_the_first_page():
    assert cursor.decode(None) is None


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.mark.parametrize("token", [
    "", "not-a-cursor", "%%%",
    _b64("2025-01-01T00:00:00+00:00"),  # no id
    _b64(f"yesterday|{uuid.uuid4()}"),
    _b64(f"2025-01-01T00:00:00|{uuid.uuid4()}"),  # no time zone
    _b64("2025-01-01T00:00:00+00:00|not-a-uuid"),
])
def test_anything_else_is_refused(token):
    with pytest.raises(cursor.BadCursor, match="start again"):
        cursor.decode(token)


def test_the_order_of_cursors_follows_the_order_of_items():
    at = datetime(2025, 1, 1, tzinfo=UTC)
    first, second = sorted([uuid.uuid4(), uuid.uuid4()])
    assert cursor.decode(cursor.encode(at, first)) < cursor.decode(cursor.encode(at, second))
