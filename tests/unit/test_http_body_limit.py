"""The body limit, driven as the server drives it: declared lengths, chunked bodies, a client that leaves."""

from __future__ import annotations

import orjson
import pytest

from vanda.runtime.http import LimitBody

Message = dict


def _request(chunks: list[bytes], *, declared: int | None = None, leaves: bool = False, path: str = "/v1/x"):
    headers = [(b"content-length", str(declared).encode())] if declared is not None else []
    scope = {"type": "http", "method": "POST", "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": headers, "scheme": "http", "server": ("test", 80), "root_path": ""}
    messages = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1 or leaves}
                for i, c in enumerate(chunks)]
    messages.append({"type": "http.disconnect"})

    async def receive() -> Message:
        return messages.pop(0)

    return scope, receive


async def _run(scope, receive, max_bytes: int = 10, larger: dict[str, int] | None = None):
    seen: dict[str, object] = {}
    sent: list[Message] = []

    async def app(scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen["body"] = body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def send(message: Message) -> None:
        sent.append(message)

    await LimitBody(app, max_bytes, larger or {})(scope, receive, send)
    status = next((m["status"] for m in sent if m["type"] == "http.response.start"), None)
    return status, seen.get("body"), b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize(("chunks", "declared", "status", "body"), [
    ([b"0123456789"], 10, 200, b"0123456789"),  # exactly the limit
    ([b"0123456789x"], 11, 413, None),  # refused on the declared length, unread
    ([b"01234", b"56789"], None, 200, b"0123456789"),  # chunked: read, then handed on whole
    ([b"01234", b"56789", b"x"], None, 413, None),  # chunked and over: refused, the route never runs
    ([b""], None, 200, b""),
])
async def test_bodies_over_the_limit_are_refused_before_the_route(chunks: list[bytes], declared: int | None,
                                                                  status: int, body: bytes | None) -> None:
    got_status, got_body, answer = await _run(*_request(chunks, declared=declared))
    assert (got_status, got_body) == (status, body)
    if status == 413:
        assert orjson.loads(answer)["errors"] == [{"field": "(body)", "reason": "request body over 10 bytes"}]


async def test_a_path_may_allow_more() -> None:
    assert (await _run(*_request([b"x" * 50], declared=50, path="/v1/big"), larger={"/v1/big": 64}))[0] == 200
    assert (await _run(*_request([b"x" * 50], declared=50, path="/v1/other"), larger={"/v1/big": 64}))[0] == 413


async def test_a_client_that_leaves_mid_body_gets_no_answer_and_the_route_never_runs() -> None:
    assert await _run(*_request([b"01234"], leaves=True)) == (None, None, b"")


async def test_a_declared_length_that_is_not_a_number_is_refused() -> None:
    scope, receive = _request([b"x"])
    scope["headers"] = [(b"content-length", b"1e3")]
    assert (await _run(scope, receive))[0] == 413
