"""The Ollama API stand-in (tests/images/real/ollama-api/server.py): its chat rules
and its HTTP endpoints, run in-process on a free loopback port."""

from __future__ import annotations

import http.client
import importlib.util
import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SERVER = Path(__file__).resolve().parents[1] / "images" / "real" / "ollama-api" / "server.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ollama_standin_server", SERVER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


srv = _load()

TIME_TOOL = {"type": "function", "function": {"name": "tool_get_current_time_post", "parameters": {}}}
OTHER_TOOL = {"type": "function", "function": {"name": "tool_fetch_post", "parameters": {}}}


# --------------------------------------------------------------------------- chat rules


def test_plain_answer_echoes_last_user_message() -> None:
    msgs = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": "hi"},
    ]
    assert srv.reply(msgs) == {"role": "assistant", "content": "Hello from the ollama-stack stand-in. You said: hi"}


def test_native_tool_call_for_time_question() -> None:
    out = srv.reply([{"role": "user", "content": "What TIME is it?"}], [OTHER_TOOL, TIME_TOOL])
    assert out["content"] == ""
    assert [c["function"]["name"] for c in out["tool_calls"]] == ["tool_get_current_time_post"]
    assert out["tool_calls"][0]["function"]["arguments"] == {"timezone": "UTC"}


def test_no_tool_call_without_time_tool_or_time_question() -> None:
    assert "tool_calls" not in srv.reply([{"role": "user", "content": "what time?"}], [OTHER_TOOL])
    assert "tool_calls" not in srv.reply([{"role": "user", "content": "hello"}], [TIME_TOOL])


def test_tool_result_message_is_quoted_verbatim() -> None:
    msgs = [
        {"role": "user", "content": "what time is it"},
        {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "tool_get_current_time_post"}}]},
        {"role": "tool", "content": '{"datetime": "2026-01-01T00:00:00+00:00"}'},
    ]
    out = srv.reply(msgs, [TIME_TOOL])
    assert out == {"role": "assistant", "content": 'The tool said: {"datetime": "2026-01-01T00:00:00+00:00"}'}


def test_legacy_tool_call_json() -> None:
    specs = [{"name": "tool_fetch_post", "parameters": {}}, {"name": "tool_get_current_time_post", "parameters": {}}]
    system = "Available Tools: " + json.dumps(specs) + "\nReturn only JSON."
    out = srv.reply([{"role": "system", "content": system}, {"role": "user", "content": "Query: what time is it"}])
    assert json.loads(out["content"]) == {
        "tool_calls": [{"name": "tool_get_current_time_post", "parameters": {"timezone": "UTC"}}]
    }
    assert out["content"] == json.dumps(json.loads(out["content"]))
    other = srv.reply([{"role": "system", "content": system}, {"role": "user", "content": "Query: hello"}])
    assert json.loads(other["content"]) == {"tool_calls": []}


def test_legacy_context_answer_quotes_source() -> None:
    user = 'Answer.\n<context><source id="1" name="time/get_current_time">{"timezone": "UTC"}</source></context>\nq'
    out = srv.reply([{"role": "user", "content": user}])
    assert out["content"] == 'The tool said: {"timezone": "UTC"}'


def test_background_tasks_get_json() -> None:
    out = srv.reply([{"role": "user", "content": '### Task:\nGenerate a title. JSON: { "title": "..." }'}])
    assert json.loads(out["content"]) == {"title": "Stand-in chat"}


def test_chunks_rejoin() -> None:
    text = "Hello  from the\nstand-in. "
    assert "".join(srv.chunks(text)) == text


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("stand-in", "stand-in:latest"),
        ("llama3.2:1b", "llama3.2:1b"),
        ("user/model:q4", "user/model:q4"),
        ("host:5000/ns/model:tag", "host:5000/ns/model:tag"),
    ],
)
def test_display_name(name: str, shown: str) -> None:
    assert srv.display_name(name) == shown


# --------------------------------------------------------------------------- HTTP


@pytest.fixture()
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, int, Path]]:
    monkeypatch.setenv("STANDIN_QUIET", "1")
    monkeypatch.setenv("STANDIN_PULL_BYTES", str(3 << 20))
    monkeypatch.setenv("STANDIN_PULL_CHUNK", str(1 << 20))
    monkeypatch.setenv("STANDIN_PULL_DELAY", "0")
    models = tmp_path / "models"
    srv.Store(models).seed()
    httpd = srv.make_server("127.0.0.1", 0, models)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", httpd.server_address[1], models
    finally:
        httpd.shutdown()
        httpd.server_close()


def call(server: tuple[str, int, Path], method: str, path: str, body: Any = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(server[0], server[1], timeout=10)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def ndjson(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def test_basics(server: tuple[str, int, Path]) -> None:
    assert call(server, "GET", "/") == (200, b"Ollama is running")
    status, raw = call(server, "GET", "/api/version")
    assert status == 200 and "version" in json.loads(raw)
    status, raw = call(server, "GET", "/api/tags")
    assert [m["name"] for m in json.loads(raw)["models"]] == ["stand-in:latest"]
    status, raw = call(server, "POST", "/api/show", {"model": "stand-in"})
    assert status == 200 and json.loads(raw)["details"]["format"] == "gguf"
    status, raw = call(server, "POST", "/api/show", {"model": "nope"})
    assert status == 404 and "error" in json.loads(raw)
    status, raw = call(server, "GET", "/v1/models")
    assert [m["id"] for m in json.loads(raw)["data"]] == ["stand-in:latest"]


def test_chat_stream_and_not(server: tuple[str, int, Path]) -> None:
    req = {"model": "stand-in:latest", "messages": [{"role": "user", "content": "hey you"}]}
    status, raw = call(server, "POST", "/api/chat", req)
    lines = ndjson(raw)
    assert status == 200 and lines[-1]["done"] is True
    assert "".join(x["message"]["content"] for x in lines) == "Hello from the ollama-stack stand-in. You said: hey you"
    status, raw = call(server, "POST", "/api/chat", {**req, "stream": False, "tools": [TIME_TOOL]})
    assert json.loads(raw)["message"]["content"].endswith("You said: hey you")
    status, raw = call(server, "GET", "/api/ps")
    assert [m["name"] for m in json.loads(raw)["models"]] == ["stand-in:latest"]
    req = {
        "model": "stand-in",
        "stream": False,
        "messages": [{"role": "user", "content": "time?"}],
        "tools": [TIME_TOOL],
    }
    message = json.loads(call(server, "POST", "/api/chat", req)[1])["message"]
    assert message["tool_calls"][0]["function"]["name"] == "tool_get_current_time_post"
    status, raw = call(server, "POST", "/api/generate", {"model": "stand-in", "prompt": "p", "stream": False})
    assert json.loads(raw)["response"].endswith("You said: p")
    status, raw = call(server, "POST", "/v1/chat/completions", {"model": "stand-in", "messages": req["messages"]})
    assert json.loads(raw)["choices"][0]["message"]["content"].endswith("You said: time?")


def test_pull_list_delete(server: tuple[str, int, Path]) -> None:
    status, raw = call(server, "POST", "/api/pull", {"model": "tiny:1b"})
    lines = ndjson(raw)
    assert status == 200 and lines[-1] == {"status": "success"}
    progress = [x for x in lines if "completed" in x]
    assert progress[-1]["completed"] == progress[-1]["total"] == 3 << 20
    assert progress[0]["digest"].startswith("sha256:")
    blob = server[2] / "blobs" / progress[0]["digest"].replace(":", "-")
    assert blob.stat().st_size == 3 << 20
    names = [m["name"] for m in json.loads(call(server, "GET", "/api/tags")[1])["models"]]
    assert sorted(names) == ["stand-in:latest", "tiny:1b"]
    assert call(server, "DELETE", "/api/delete", {"model": "tiny:1b"})[0] == 200
    assert not blob.exists()
    assert call(server, "DELETE", "/api/delete", {"model": "tiny:1b"})[0] == 404
    status, raw = call(server, "POST", "/api/pull", {"model": "missing-model", "stream": False})
    assert status == 500 and "error" in json.loads(raw)


def test_pull_stops_when_client_goes_away(server: tuple[str, int, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("STANDIN_PULL_BYTES", str(64 << 10 << 10))  # 64 MiB, 64 KiB a step
    monkeypatch.setenv("STANDIN_PULL_CHUNK", str(64 << 10))
    monkeypatch.setenv("STANDIN_PULL_DELAY", "0.01")
    conn = http.client.HTTPConnection(server[0], server[1], timeout=10)
    conn.request("POST", "/api/pull", body=json.dumps({"model": "big:1"}))
    resp = conn.getresponse()
    for _ in range(3):
        assert resp.readline()
    conn.sock.shutdown(2)  # type: ignore[union-attr]
    conn.close()
    partial = next((server[2] / "blobs").glob("*-partial"))
    time.sleep(0.5)
    size = partial.stat().st_size
    time.sleep(0.5)
    assert partial.stat().st_size == size < 64 << 20
    names = [m["name"] for m in json.loads(call(server, "GET", "/api/tags")[1])["models"]]
    assert names == ["stand-in:latest"]


def test_tool_result_comes_from_the_context_not_from_the_templates_instructions() -> None:
    user = (
        "Cite with <source> tags: each <source> tag includes an explicit id attribute.\n"
        '<context><source id="1" name="time">{"datetime": "2026-01-01T00:00:00+00:00"}</source></context>\n'
        "What time is it?"
    )
    answer = srv.reply([{"role": "user", "content": user}], tools=None)
    assert answer["content"] == 'The tool said: {"datetime": "2026-01-01T00:00:00+00:00"}'


def test_a_sized_tag_pulls_that_many_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STANDIN_PULL_BYTES", str(1 << 20))
    assert srv.pull_size("big:80mb") == 80 << 20
    assert srv.pull_size("ns/small:2mb") == 2 << 20
    assert srv.pull_size("plain:7b") == srv.pull_size("plain") == 1 << 20
