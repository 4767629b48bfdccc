"""Service logs are JSON lines carrying ids, never payloads."""

from __future__ import annotations

import json
import logging

from vanda.runtime.logs import JsonLines


def test_a_record_becomes_one_json_object_with_its_ids():
    record = logging.LogRecord("vanda.runtime.consumer", logging.ERROR, __file__, 1, "event %s rejected", ("e1",),
                               None)
    record.event_id, record.topic = "e1", "vanda.incidents.v1"
    line = JsonLines().format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "event e1 rejected" and entry["level"] == "ERROR"
    assert entry["event_id"] == "e1" and entry["topic"] == "vanda.incidents.v1"
