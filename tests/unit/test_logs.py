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


def _app_logging_one_line(records: list[logging.LogRecord]):
    from fastapi import FastAPI

    from vanda.runtime.http import install_error_handlers
    from vanda.runtime.logs import Correlation

    app = FastAPI()
    install_error_handlers(app)
    logger = logging.getLogger("test.correlation")
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    handler.addFilter(Correlation())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    @app.get("/x")
    async def x() -> dict:
        logger.info("handled")
        return {}

    return app


def test_a_request_s_id_is_returned_and_carried_by_its_log_lines():
    from fastapi.testclient import TestClient

    records: list[logging.LogRecord] = []
    client = TestClient(_app_logging_one_line(records))
    given = "0b7e4b52-9f8e-4c3a-a0f1-2d3c4b5a6978"
    response = client.get("/x", headers={"X-Request-ID": given})
    assert response.headers["X-Request-ID"] == given
    assert records[-1].correlation_id == given
    assert json.loads(JsonLines().format(records[-1]))["correlation_id"] == given


def test_a_missing_or_free_text_request_id_is_replaced_by_a_fresh_one():
    import uuid

    from fastapi.testclient import TestClient

    records: list[logging.LogRecord] = []
    client = TestClient(_app_logging_one_line(records))
    first = client.get("/x").headers["X-Request-ID"]
    # Whatever a caller puts there lands in every log line: an NHS number must not.
    second = client.get("/x", headers={"X-Request-ID": "9434765919"}).headers["X-Request-ID"]
    assert uuid.UUID(first) and uuid.UUID(second) and first != second
    assert [r.correlation_id for r in records] == [first, second]
    # An error answer carries it too.
    assert client.get("/nowhere").headers["X-Request-ID"]


async def test_lines_logged_while_an_event_is_applied_carry_the_event_id(caplog):
    from types import SimpleNamespace

    from vanda.runtime.logs import Correlation
    from vanda.runtime.service import correlated

    async def apply(conn, event):
        logging.getLogger("test.apply").warning("applying")
        return []

    caplog.handler.addFilter(Correlation())
    assert await correlated(apply)(None, SimpleNamespace(id="evt-1")) == []
    assert [r.correlation_id for r in caplog.records] == ["evt-1"]
