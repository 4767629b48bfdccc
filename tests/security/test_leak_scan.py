"""No NHS number or narrative on any topic, in any log, or in the sanctions and reporting tables.

The scan runs after everything else in the session (tests/security/conftest.py moves it
last), over what the whole run produced: every record (key, value, headers) of every
`vanda.*` topic, every log file under the pipeline's home, and every table of the
`sanctions` and `reporting` schemas dumped as text. Intake's schema is not scanned: it
legitimately keeps the narrative. Nor is intake's submissions topic (and its DLQ): it is
intake's input, written by upstream systems, like the body of an HTTP report.

It cannot pass vacuously: the scanner is shown to find a planted number in a string, a
file and a record; the scan first sends its own probe report (an NHS number and a
narrative) through the pipeline and refuses to pass unless it read the probe's event; and
the same table dump is shown to find the probe's narrative where it belongs, in intake.

Findings name the place (topic[partition]@offset, file:line, table row) and a masked token.
"""

from __future__ import annotations

from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from schemas.topics import SUBMISSIONS
from tests.conftest import ROOT
from tests.factories import report
from tests.integration.kafka_reader import read_until
from tests.security.helpers import intake_headers
from tests.security.scanner import (
    Finding,
    Needles,
    collect_needles,
    nhs_like_tokens,
    scan_file,
    scan_lines,
    scan_text,
)
from vanda.dlq import read_all

SCANNED_SCHEMAS = ("sanctions", "reporting")
# Third-party servers' own logs are full of 10-digit numbers that are not identifiers
# (Java identity hash codes, fetch session ids, snapshot ids), so there only the exact
# numbers and narratives the suite sent are looked for. Their stdout is the same stream.
THIRD_PARTY_LOGS = {"broker.log", "kafka.out", "controller.log", "server.log", "state-change.log"}
PLANTED = "9434765919"  # tests/factories.py TEST_NHS_NUMBER: valid check digit
PROBE_NHS = "9990000220"  # test range, valid check digit: sent by the scan itself
PROBE_NARRATIVE = "Leak probe narrative: threw a chair at the porter."


def needles() -> Needles:
    return collect_needles(ROOT / "tests", [ROOT / "vanda" / "synthetic.py"])


# --- the scanner finds what it is meant to find (no pipeline needed) -------------------


@pytest.mark.parametrize("text", [
    f"subject {PLANTED} seen", f'{{"nhs_number": "{PLANTED}"}}', "nhs=943 476 5919;", "x 943-476-5919\n",
    f"[{PLANTED}]",
])
def test_scanner_finds_a_planted_nhs_number(text):
    assert nhs_like_tokens(text), text
    assert list(scan_text(text, "planted", Needles(frozenset(), frozenset())))


@pytest.mark.parametrize("text", [
    "9434765918",  # wrong check digit
    "id 19434765919 and 9434765919a",  # part of a longer token
    "sub_" + "a" * 40, "e3b0c442-98fc-1c14-9afb-f4c8996fb924", "offset 1771234567890",
])
def test_scanner_ignores_what_is_not_an_nhs_number(text):
    assert nhs_like_tokens(text) == []


def test_scanner_finds_planted_needles_in_a_file(tmp_path):
    log = tmp_path / "service.log"
    log.write_text("2026-03-01 INFO started\n"
                   f"2026-03-01 ERROR rejected report for {PLANTED}\n"
                   "2026-03-01 INFO He shouted at the nurse.\n")
    found = list(scan_file(log, needles()))
    assert {f.where for f in found} == {f"{log}:2", f"{log}:3"}
    assert all(PLANTED not in str(f) for f in found), "findings must mask the number"
    # Exact needles are found even where the pattern is switched off (third-party logs).
    assert [f.where for f in scan_file(log, needles(), pattern=False)] == [f"{log}:2", f"{log}:3"]


def test_needles_include_the_suites_numbers_and_narratives():
    collected = needles()
    assert {PLANTED, "9990000018"} <= collected.numbers
    assert "0000000000" not in collected.numbers  # valid by mod 11, but not an identifier
    assert any(p.startswith("He shouted at the nurse") for p in collected.phrases)
    assert any(p.startswith("Synthetic narrative") for p in collected.phrases)


def test_a_record_is_scanned_in_its_key_value_and_headers():
    record = ConsumerRecord("vanda.incidents.v1", 0, 7, 0, 0, b"k", b"{}", None, 0, 2,
                            [("vanda-dlq-error", f"nhs_number: {PLANTED} is wrong".encode())])
    assert [str(f) for f in scan_record(record, needles())] == [
        "vanda.incidents.v1[0]@7 header vanda-dlq-error: 943****919"]


# --- the scan of the whole run ------------------------------------------------------------


def scan_record(record: ConsumerRecord, found_needles: Needles) -> list[Finding]:
    where = f"{record.topic}[{record.partition}]@{record.offset}"
    parts = [("key", record.key or b""), ("value", record.value or b"")]
    parts += [(f"header {name}", name.encode() + b"=" + (value or b"")) for name, value in record.headers or ()]
    return [f for label, raw in parts
            for f in scan_text(raw.decode("utf-8", errors="replace"), f"{where} {label}", found_needles)]


async def vanda_topics(bootstrap: str) -> list[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return sorted(t for t in await consumer.topics()
                      if t.startswith("vanda.") and not t.startswith(SUBMISSIONS))
    finally:
        await consumer.stop()


async def scan_topics(bootstrap: str, found_needles: Needles, probe: str) -> tuple[list[Finding], int, bool]:
    """Findings over every record of every vanda.* topic; how many records; whether `probe` was among them."""
    findings, count, seen = [], 0, False
    for topic in await vanda_topics(bootstrap):
        records = await read_all(bootstrap, topic, wait_s=20)
        count += len(records)
        for record in records:
            findings += scan_record(record, found_needles)
            seen = seen or probe.encode() in (record.value or b"")
    return findings, count, seen


def log_files(home: Path) -> list[Path]:
    """Every log under the pipeline's home: the services', the broker's and PostgreSQL's."""
    logs = [p for p in (home / "logs").rglob("*") if p.is_file()] if (home / "logs").exists() else []
    # Server logs kept with the data (the broker's, PostgreSQL's own log directory), not
    # the data itself: topic segments are read through Kafka, tables through PostgreSQL.
    for folder in (home / "data").glob("*"):
        logs += [p for p in folder.glob("*.log") if p.is_file()]
        logs += [p for p in folder.glob("log/*") if p.is_file()]
        logs += [p for p in folder.glob("logs/*") if p.is_file()]
    return sorted(set(logs))


def scan_logs(home: Path, found_needles: Needles) -> tuple[list[Finding], list[str]]:
    findings: list[Finding] = []
    files = log_files(home)
    for path in files:
        findings += scan_file(path, found_needles, pattern=path.name not in THIRD_PARTY_LOGS,
                              label=str(path.relative_to(home)))
    return findings, [str(p.relative_to(home)) for p in files]


async def scan_tables(dsn: str, found_needles: Needles,
                      schemas: tuple[str, ...] = SCANNED_SCHEMAS) -> tuple[list[Finding], int]:
    """Findings over every row of every table of `schemas`, each row as PostgreSQL writes it as text."""
    findings: list[Finding] = []
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE' ORDER BY 1, 2",
            list(schemas))
        for schema, table in tables:
            rows = await conn.fetch(f'SELECT t::text AS row FROM "{schema}"."{table}" AS t')
            for index, row in enumerate(rows):
                findings += scan_lines(row["row"], f"table {schema}.{table} row {index}", found_needles)
    finally:
        await conn.close()
    return findings, len(tables)


async def send_probe(pipeline) -> str:
    """A report carrying an NHS number and a narrative, followed until sanctions has decided on it.

    It makes the scan meaningful on any run, even alone: the number and narrative went in,
    the event and the card came out, and neither may carry them.
    """
    body = report(perpetrator={"kind": "patient", "nhs_number": PROBE_NHS, "age_band": "18_to_64"},
                  narrative=PROBE_NARRATIVE)
    async with httpx.AsyncClient(base_url=pipeline["INTAKE_URL"], headers=intake_headers(pipeline),
                                 timeout=30) as client:
        response = await client.post("/v1/incidents", json=body)
    assert response.status_code == 202, response.text
    receipt = response.json()
    cards = await read_until(pipeline["KAFKA_BOOTSTRAP_SERVERS"], "vanda.sanctions.v1",
                             lambda r: r.key == receipt["subject_id"].encode(), 1, timeout=90)
    assert cards, "the probe report never reached sanctions"
    return receipt["incident_id"]


@pytest.mark.integration
@pytest.mark.runs_last
async def test_no_nhs_number_or_narrative_leaks_anywhere(pipeline):
    probe = await send_probe(pipeline)
    found_needles = needles()
    assert PROBE_NHS in found_needles.numbers and any(PROBE_NARRATIVE.startswith(p) for p in found_needles.phrases)
    # Positive control on live data: intake keeps the narrative, and the table dump finds it there.
    in_intake, _ = await scan_tables(pipeline["DATABASE_URL"], found_needles, schemas=("intake",))
    assert any("incidents" in f.where for f in in_intake), "the table scan cannot see a narrative intake stores"

    topic_findings, records, probe_seen = await scan_topics(pipeline["KAFKA_BOOTSTRAP_SERVERS"], found_needles, probe)
    log_findings, files = scan_logs(Path(pipeline["HOME_DIR"]), found_needles)
    table_findings, tables = await scan_tables(pipeline["DATABASE_URL"], found_needles)
    # Nothing read would make a clean result meaningless: the probe's own event must have been read.
    assert probe_seen and {"logs/intake.log", "logs/sanctions.log", "logs/reporting.log"} <= set(files) and tables, \
        (records, files, tables)
    findings = topic_findings + log_findings + table_findings
    assert not findings, (f"{len(findings)} NHS-number-like token(s) or narrative(s) found"
                          f" (read {records} records, {len(files)} log files, {tables} tables):\n"
                          + "\n".join(str(f) for f in findings[:100]))
