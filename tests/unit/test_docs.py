"""`vanda docs`: the checked-in AsyncAPI and OpenAPI documents, and how they are built."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from fastapi.testclient import TestClient

from schemas import topics
from vanda import docs_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def documents() -> dict[str, str]:
    return docs_cli.generated()


def test_checked_in_documents_match_the_code(documents: dict[str, str]) -> None:
    on_disk = {f"{kind}/{p.name}": p.read_text(encoding="utf-8")
               for kind in ("asyncapi", "openapi") for p in (ROOT / "docs" / kind).glob("*.json")}
    stale = sorted(n for n in set(on_disk) | set(documents) if on_disk.get(n) != documents.get(n))
    assert stale == [], "run `vanda docs` and commit docs/"


def test_check_reports_a_document_that_drifted(tmp_path: Path) -> None:
    docs_cli.write(tmp_path)
    assert docs_cli.stale(tmp_path) == []
    (tmp_path / "openapi" / "intake.json").write_text("{}\n")
    (tmp_path / "asyncapi" / "retired.json").write_text("{}\n")
    assert docs_cli.stale(tmp_path) == ["asyncapi/retired.json", "openapi/intake.json"]


def test_check_command_fails_on_drift(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docs_cli, "DOCS_DIR", tmp_path)
    with pytest.raises(typer.Exit):
        docs_cli.docs(check=True)
    docs_cli.docs()
    docs_cli.docs(check=True)


def test_every_service_has_both_documents(documents: dict[str, str]) -> None:
    assert set(documents) == {f"{kind}/{name}.json" for kind in ("asyncapi", "openapi")
                              for name in docs_cli.SERVICES}
    for name in docs_cli.SERVICES:
        asyncapi = json.loads(documents[f"asyncapi/{name}.json"])
        openapi = json.loads(documents[f"openapi/{name}.json"])
        assert asyncapi["asyncapi"].startswith("3.") and asyncapi["info"]["title"] == f"vanda {name}"
        assert openapi["openapi"].startswith("3.") and openapi["info"]["title"] == f"vanda {name}"
        assert {"/healthz", "/readyz", "/metrics"} <= set(openapi["paths"]), name


def test_documents_name_a_stable_broker_not_this_machine_s(documents: dict[str, str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "elsewhere:1234")
    asyncapi, _ = docs_cli.build("sanctions")
    assert [s["host"] for s in asyncapi["servers"].values()] == [docs_cli.DOCUMENTED_KAFKA]
    assert json.loads(documents["asyncapi/sanctions.json"]) == asyncapi


def test_every_channel_is_a_contract_topic_with_a_description(documents: dict[str, str]) -> None:
    names = {v for k, v in vars(topics).items() if k.isupper() and isinstance(v, str)}
    known = names | {topics.dead_letter(t) for t in names}
    for name in docs_cli.SERVICES:
        for channel_id, channel in json.loads(documents[f"asyncapi/{name}.json"])["channels"].items():
            assert channel["address"] in known, f"{channel_id}: not a topic in schemas/topics.py"
            assert channel["bindings"]["kafka"]["topic"] == channel["address"], channel_id
            assert channel.get("description"), f"{name}: {channel_id} has no description"


def test_building_the_documents_connects_to_nothing() -> None:
    # In a fresh interpreter, so module imports are covered too: any socket
    # connection while importing the services or building their apps fails.
    script = (
        "import socket\n"
        "def refuse(*args, **kwargs):\n"
        "    raise AssertionError(f'connection attempted: {args!r}')\n"
        "socket.socket.connect = refuse\n"
        "socket.socket.connect_ex = refuse\n"
        "socket.create_connection = refuse\n"
        "from vanda import docs_cli\n"
        "docs_cli.generated()\n"
        "print('built')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0 and "built" in result.stdout, result.stdout + result.stderr


def test_site_serves_every_document_without_try_it_out() -> None:
    client = TestClient(docs_cli.site())
    index = client.get("/")
    assert index.status_code == 200
    for name in docs_cli.SERVICES:
        assert f"/asyncapi/{name}" in index.text and f"/openapi/{name}" in index.text
        page = client.get(f"/asyncapi/{name}")
        assert page.status_code == 200 and "AsyncApiStandalone" in page.text
        assert "createTryItOutPlugin" not in page.text, "the viewer must not publish to a broker"
        assert client.get(f"/asyncapi/{name}.json").json()["info"]["title"] == f"vanda {name}"
        assert client.get(f"/openapi/{name}").status_code == 200
        assert client.get(f"/openapi/{name}.json").json()["info"]["title"] == f"vanda {name}"
    assert client.get("/asyncapi/nobody").status_code == 404


def _operations(document: dict) -> dict[str, set[str]]:
    """action (send, receive) -> addresses of the channels it names."""
    found: dict[str, set[str]] = {"send": set(), "receive": set()}
    for operation in document["operations"].values():
        channel = operation["channel"]["$ref"].rsplit("/", 1)[-1]
        found[operation["action"]].add(document["channels"][channel]["address"])
    return found


def test_each_service_documents_what_it_publishes_and_reads(documents: dict[str, str]) -> None:
    dlq = topics.dead_letter
    expected = {
        "intake": ({topics.INCIDENTS, dlq(topics.SUBMISSIONS)}, {topics.SUBMISSIONS}),
        "sanctions": ({topics.SANCTIONS, dlq(topics.INCIDENTS)}, {topics.INCIDENTS}),
        "reporting": ({topics.POLICE_REFERRALS, topics.BOARD_METRICS, topics.FOOTAGE, dlq(topics.INCIDENTS),
                       dlq(topics.SANCTIONS)},
                      {topics.INCIDENTS, topics.SANCTIONS}),
    }
    for name, (sends, receives) in expected.items():
        found = _operations(json.loads(documents[f"asyncapi/{name}.json"]))
        assert found["send"] == sends and found["receive"] == receives, name


def test_every_message_has_its_topic_s_payload(documents: dict[str, str]) -> None:
    from vanda.runtime.asyncapi import EVENT_TOPICS, PAYLOADS, events_on

    for name in docs_cli.SERVICES:
        document = json.loads(documents[f"asyncapi/{name}.json"])
        schemas = document["components"]["schemas"]
        for channel in document["channels"].values():
            source = channel["address"].removesuffix(".dlq")
            if source not in PAYLOADS:
                continue
            for message in channel["messages"].values():
                resolved = document["components"]["messages"][message["$ref"].rsplit("/", 1)[-1]]
                payload = schemas[resolved["payload"]["$ref"].rsplit("/", 1)[-1]]
                assert payload["title"] == PAYLOADS[source].__name__, (name, channel["address"])
                if source not in EVENT_TOPICS:
                    continue  # submissions are plain IncidentReport JSON, not CloudEvents
                # A topic with one event type refers to it directly, not through anyOf.
                events = {ref["$ref"].rsplit("/", 1)[-1] for ref in payload.get("anyOf", [payload])}
                assert events == {f"CloudEvent_{m.__name__}_" for m in events_on(source)}


def test_every_event_type_travels_on_exactly_one_topic() -> None:
    from schemas.events import EVENT_TYPES
    from vanda.runtime.asyncapi import EVENT_TOPICS, events_on

    placed = [model for topic in EVENT_TOPICS for model in events_on(topic)]
    assert sorted(m.__name__ for m in placed) == sorted(m.__name__ for m in EVENT_TYPES.values())
