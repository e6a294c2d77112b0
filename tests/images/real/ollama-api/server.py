"""Ollama API stand-in for the real-services tests (stdlib only).

Serves the parts of Ollama's HTTP API that Open WebUI and the ollama-stack CLI
call, on 0.0.0.0:11434 (OLLAMA_HOST), with models kept as real files under
OLLAMA_MODELS (default ~/.ollama/models) in Ollama's layout (manifests/ and
blobs/). The "model" answers deterministically; see README.md beside this file
for the exact chat rules (reply()).

Run: python3 server.py [--host H] [--port P] [--seed-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

VERSION = "0.13.0"
DEFAULT_MODEL = "stand-in:latest"
SEED_BYTES = 1 << 20
GREETING = "Hello from the ollama-stack stand-in. You said: "
TOOL_PREFIX = "The tool said: "
LEGACY_MARKER = "Available Tools:"
TIME_TOOL = "get_current_time"
TIME_ARGS = {"timezone": "UTC"}

MANIFEST_MT = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MT = "application/vnd.docker.container.image.v1+json"
MODEL_MT = "application/vnd.ollama.image.model"


# --------------------------------------------------------------------------- the "model"


def _text(content: Any) -> str:
    """Message content as text (OpenAI-style content parts are joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "\n".join(parts)
    return "" if content is None else str(content)


def _last_user(messages: list[dict[str, Any]]) -> str:
    for msg in reversed(messages):
        if msg.get("role") == "user":
            return _text(msg.get("content"))
    return ""


def extract_sources(text: str) -> str:
    """The tool result Open WebUI put into a message: the bodies of the <source> tags
    inside its (last) <context>, else that context's body, else the whole text.

    Only inside <context>: Open WebUI's prompt template itself mentions "<source>" tags
    in its instructions, before the real ones.
    """
    contexts = re.findall(r"<context>(.*?)</context>", text, flags=re.S)
    scope = contexts[-1] if contexts else text
    bodies = [b.strip() for b in re.findall(r"<source\b[^>]*>(.*?)</source>", scope, flags=re.S)]
    if bodies:
        return "\n".join(bodies)
    return scope.strip()


def legacy_tool_names(system_text: str) -> list[str]:
    """Tool names from the JSON specs after 'Available Tools:' in a system prompt."""
    after = system_text.split(LEGACY_MARKER, 1)[-1]
    names: list[str] = []
    start = after.find("[")
    if start >= 0:
        try:
            specs, _ = json.JSONDecoder().raw_decode(after[start:])
            for spec in specs if isinstance(specs, list) else []:
                if isinstance(spec, dict):
                    name = spec.get("name") or (spec.get("function") or {}).get("name")
                    if isinstance(name, str):
                        names.append(name)
        except ValueError:
            pass
    if not names:
        names = re.findall(r'"name"\s*:\s*"([^"]+)"', after)
    return names


def _task_reply(prompt: str) -> str | None:
    """Open WebUI's background tasks (title, tags, follow-ups, queries) want JSON."""
    if "### Task:" not in prompt:
        return None
    if '"title"' in prompt:
        return json.dumps({"title": "Stand-in chat"})
    if '"tags"' in prompt:
        return json.dumps({"tags": ["General"]})
    if '"follow_ups"' in prompt:
        return json.dumps({"follow_ups": []})
    if '"queries"' in prompt:
        return json.dumps({"queries": []})
    return None


def reply(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The stand-in model: an assistant message {"role", "content"[, "tool_calls"]}.

    Rules, first match wins (README.md documents them for the e2e tests):
    1. a system message contains 'Available Tools:' (Open WebUI's legacy/"default"
       function calling task): if the last user message contains "time" and a listed
       tool's name contains get_current_time, the content is exactly
       {"tool_calls": [{"name": NAME, "parameters": {"timezone": "UTC"}}]}, else
       {"tool_calls": []};
    2. the last user message is an Open WebUI background task ("### Task:" asking for
       JSON title/tags/follow_ups/queries): a minimal valid JSON answer;
    3. tool results follow the last user message (role "tool"): "The tool said: " +
       their contents, joined by newlines;
    4. the last user message contains <context> or <source (or, failing that, a system
       message holds <source> tags): "The tool said: " + the <source> bodies;
    5. `tools` offered, the last user message contains "time", and an offered function's
       name contains get_current_time: a tool call to it with {"timezone": "UTC"},
       empty content;
    6. otherwise "Hello from the ollama-stack stand-in. You said: " + last user message.
    """
    last = _last_user(messages)
    asks_time = "time" in last.lower()

    systems = [_text(m.get("content")) for m in messages if m.get("role") == "system"]
    legacy = next((s for s in systems if LEGACY_MARKER in s), None)
    if legacy is not None:
        calls = []
        if asks_time:
            name = next((n for n in legacy_tool_names(legacy) if TIME_TOOL in n), None)
            if name:
                calls.append({"name": name, "parameters": dict(TIME_ARGS)})
        return {"role": "assistant", "content": json.dumps({"tool_calls": calls})}

    task = _task_reply(last)
    if task is not None:
        return {"role": "assistant", "content": task}

    trailing: list[str] = []
    for msg in reversed(messages):
        if msg.get("role") == "user":
            break
        if msg.get("role") == "tool":
            trailing.append(_text(msg.get("content")))
    if trailing:
        return {"role": "assistant", "content": TOOL_PREFIX + "\n".join(reversed(trailing))}

    if "<context>" in last or "<source" in last:
        return {"role": "assistant", "content": TOOL_PREFIX + extract_sources(last)}
    for s in systems:
        if "<source" in s:
            return {"role": "assistant", "content": TOOL_PREFIX + extract_sources(s)}

    if tools and asks_time:
        for tool in tools:
            fn = tool.get("function") if isinstance(tool, dict) else None
            name = fn.get("name") if isinstance(fn, dict) else None
            if isinstance(name, str) and TIME_TOOL in name:
                call = {"id": "call_standin_0", "function": {"index": 0, "name": name, "arguments": dict(TIME_ARGS)}}
                return {"role": "assistant", "content": "", "tool_calls": [call]}

    return {"role": "assistant", "content": GREETING + last}


def chunks(text: str) -> list[str]:
    """Streaming pieces: words with their following whitespace (joined = text)."""
    return re.findall(r"\S+\s*|\s+", text) or [""]


# --------------------------------------------------------------------------- model store


def now_iso() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat()


def parse_name(name: str) -> tuple[str, str, str, str]:
    """'model[:tag]', 'ns/model[:tag]' or 'host/ns/model[:tag]' -> (host, ns, model, tag)."""
    name = name.strip()
    tag = "latest"
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        base, tag = name.rsplit(":", 1)
    else:
        base = name
    parts = [p for p in base.split("/") if p]
    if not parts or not tag:
        raise ValueError(f"invalid model name {name!r}")
    if len(parts) == 1:
        parts = ["registry.ollama.ai", "library", *parts]
    elif len(parts) == 2:
        parts = ["registry.ollama.ai", *parts]
    host, ns, model = parts[0], "/".join(parts[1:-1]), parts[-1]
    return host, ns, model, tag


def display_name(name: str) -> str:
    host, ns, model, tag = parse_name(name)
    if host == "registry.ollama.ai" and ns == "library":
        return f"{model}:{tag}"
    if host == "registry.ollama.ai":
        return f"{ns}/{model}:{tag}"
    return f"{host}/{ns}/{model}:{tag}"


def _pattern(name: str) -> bytes:
    return hashlib.sha256(("ollama-stack stand-in " + name).encode()).digest() * 2048  # 64 KiB


class Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock = threading.Lock()

    @property
    def manifests(self) -> Path:
        return self.root / "manifests"

    @property
    def blobs(self) -> Path:
        return self.root / "blobs"

    def manifest_path(self, name: str) -> Path:
        host, ns, model, tag = parse_name(name)
        return self.manifests.joinpath(host, *ns.split("/"), model, tag)

    def blob_path(self, digest: str) -> Path:
        return self.blobs / digest.replace(":", "-")

    def list(self) -> list[dict[str, Any]]:
        out = []
        if not self.manifests.is_dir():
            return out
        for path in sorted(p for p in self.manifests.rglob("*") if p.is_file()):
            rel = path.relative_to(self.manifests).parts
            if len(rel) < 4:
                continue
            name = display_name(f"{'/'.join(rel[:-1])}:{rel[-1]}")
            try:
                info = self.info(name)
            except (OSError, ValueError):
                continue
            if info:
                out.append(info)
        return out

    def info(self, name: str) -> dict[str, Any] | None:
        path = self.manifest_path(name)
        if not path.is_file():
            return None
        raw = path.read_bytes()
        manifest = json.loads(raw)
        size = manifest["config"]["size"] + sum(layer["size"] for layer in manifest["layers"])
        modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).astimezone().isoformat()
        shown = display_name(name)
        return {
            "name": shown,
            "model": shown,
            "modified_at": modified,
            "size": size,
            "digest": hashlib.sha256(raw).hexdigest(),
            "details": details(),
        }

    def write_manifest(self, name: str, layer_digest: str, layer_size: int) -> None:
        config = json.dumps({"model_format": "gguf", "model_family": "stand-in", "file_type": "Q4_0"}).encode()
        config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
        self.blob_path(config_digest).write_bytes(config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MT,
            "config": {"mediaType": CONFIG_MT, "digest": config_digest, "size": len(config)},
            "layers": [{"mediaType": MODEL_MT, "digest": layer_digest, "size": layer_size}],
        }
        path = self.manifest_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(manifest))
        tmp.replace(path)

    def layer_for(self, name: str, size: int) -> tuple[str, int]:
        """The digest of the deterministic layer of `size` bytes pulled for `name`."""
        pattern, h, left = _pattern(display_name(name)), hashlib.sha256(), size
        while left > 0:
            piece = pattern[: min(left, len(pattern))]
            h.update(piece)
            left -= len(piece)
        return "sha256:" + h.hexdigest(), size

    def seed(self, name: str = DEFAULT_MODEL, size: int = SEED_BYTES) -> None:
        digest, size = self.layer_for(name, size)
        self.blobs.mkdir(parents=True, exist_ok=True)
        blob = self.blob_path(digest)
        if not blob.exists():
            with open(blob, "wb") as f:
                self._write_pattern(f, name, size)
        self.write_manifest(name, digest, size)

    @staticmethod
    def _write_pattern(f: Any, name: str, size: int) -> None:
        pattern, left = _pattern(display_name(name)), size
        while left > 0:
            piece = pattern[: min(left, len(pattern))]
            f.write(piece)
            left -= len(piece)

    def delete(self, name: str) -> bool:
        with self.lock:
            path = self.manifest_path(name)
            if not path.is_file():
                return False
            path.unlink()
            used = set()
            for other in self.manifests.rglob("*"):
                if other.is_file():
                    try:
                        m = json.loads(other.read_text())
                        used.add(m["config"]["digest"])
                        used.update(layer["digest"] for layer in m["layers"])
                    except (OSError, ValueError, KeyError):
                        pass
            for blob in self.blobs.glob("sha256-*"):
                if blob.name.replace("-", ":", 1) not in used and not blob.name.endswith("-partial"):
                    blob.unlink(missing_ok=True)
            return True


def details() -> dict[str, Any]:
    return {
        "parent_model": "",
        "format": "gguf",
        "family": "stand-in",
        "families": ["stand-in"],
        "parameter_size": "1M",
        "quantization_level": "Q4_0",
    }


# --------------------------------------------------------------------------- HTTP


class ClientGone(Exception):
    pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ollama-stack-stand-in"
    store: Store
    loaded: dict[str, float]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if os.environ.get("STANDIN_QUIET") != "1":
            sys.stderr.write(f"[stand-in] {self.address_string()} {format % args}\n")

    # ---- plumbing
    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("request body must be a JSON object")
        return data

    def _send(self, status: int, payload: Any = None, content_type: str = "application/json") -> None:
        if isinstance(payload, (bytes, str)):
            body = payload.encode() if isinstance(payload, str) else payload
        elif payload is None:
            body = b""
        else:
            body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        self._send(status, {"error": message})

    def _start_stream(self, content_type: str = "application/x-ndjson") -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        try:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            raise ClientGone from exc

    def _line(self, obj: dict[str, Any]) -> None:
        self._chunk(json.dumps(obj).encode() + b"\n")

    def _end_stream(self) -> None:
        self._chunk(b"")

    # ---- routing
    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/":
            self._send(200, "Ollama is running", "text/plain; charset=utf-8")
        elif path == "/api/version":
            self._send(200, {"version": VERSION})
        elif path == "/api/tags":
            self._send(200, {"models": self.store.list()})
        elif path == "/api/ps":
            self._send(200, {"models": self._ps()})
        elif path == "/v1/models":
            data = [
                {"id": m["name"], "object": "model", "created": int(time.time()), "owned_by": "library"}
                for m in self.store.list()
            ]
            self._send(200, {"object": "list", "data": data})
        else:
            self._send(404, "404 page not found", "text/plain")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch({"/api/delete": self.api_delete})

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch(
            {
                "/api/show": self.api_show,
                "/api/chat": self.api_chat,
                "/api/generate": self.api_generate,
                "/api/pull": self.api_pull,
                "/api/delete": self.api_delete,
                "/v1/chat/completions": self.v1_chat,
            }
        )

    def _dispatch(self, routes: dict[str, Any]) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        route = routes.get(path)
        if route is None:
            self._send(404, "404 page not found", "text/plain")
            return
        try:
            body = self._body()
        except ValueError as exc:
            self._error(400, f"invalid request body: {exc}")
            return
        try:
            route(body)
        except ClientGone:
            self.close_connection = True

    # ---- helpers
    def _ps(self) -> list[dict[str, Any]]:
        out, now = [], time.time()
        for name, until in list(self.loaded.items()):
            if until < now:
                self.loaded.pop(name, None)
                continue
            info = self.store.info(name)
            if info:
                expires = datetime.fromtimestamp(until, timezone.utc).astimezone().isoformat()
                out.append({**info, "expires_at": expires, "size_vram": 0, "context_length": 4096})
        return out

    def _model(self, body: dict[str, Any]) -> str | None:
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name.strip():
            self._error(400, "model is required")
            return None
        try:
            info = self.store.info(name)
        except ValueError:
            info = None
        if info is None:
            self._error(404, f"model '{name}' not found")
            return None
        keep = body.get("keep_alive")
        if keep in (0, "0", "0s"):
            self.loaded.pop(info["name"], None)
        else:
            self.loaded[info["name"]] = time.time() + 300
        return info["name"]

    # ---- endpoints
    def api_show(self, body: dict[str, Any]) -> None:
        name = self._model(body)
        if name is None:
            return
        info = self.store.info(name) or {}
        self._send(
            200,
            {
                "modelfile": f"# Modelfile generated by the ollama-stack stand-in\nFROM {name}\n",
                "parameters": "",
                "template": "{{ .Prompt }}",
                "details": details(),
                "model_info": {"general.architecture": "stand-in", "general.parameter_count": 1000000},
                "capabilities": ["completion", "tools"],
                "modified_at": info.get("modified_at", now_iso()),
            },
        )

    def _timings(self, model: str, message: dict[str, Any] | None, text: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"model": model, "created_at": now_iso()}
        if message is not None:
            out["message"] = message
        if text is not None:
            out["response"] = text
        return out

    def _final(self, base: dict[str, Any], n: int) -> dict[str, Any]:
        return {
            **base,
            "done": True,
            "done_reason": "stop",
            "total_duration": 1_000_000,
            "load_duration": 100_000,
            "prompt_eval_count": 1,
            "prompt_eval_duration": 100_000,
            "eval_count": n,
            "eval_duration": 500_000,
        }

    def api_chat(self, body: dict[str, Any]) -> None:
        model = self._model(body)
        if model is None:
            return
        messages = body.get("messages") or []
        if not messages:  # load / unload request
            self._send(
                200,
                {
                    **self._timings(model, {"role": "assistant", "content": ""}, None),
                    "done": True,
                    "done_reason": "unload" if body.get("keep_alive") == 0 else "load",
                },
            )
            return
        answer = reply(messages, body.get("tools"))
        if body.get("stream") is False:
            self._send(200, self._final(self._timings(model, answer, None), len(chunks(answer["content"]))))
            return
        self._start_stream()
        pieces = chunks(answer["content"]) if answer["content"] else []
        if answer.get("tool_calls"):
            self._line({**self._timings(model, answer, None), "done": False})
            pieces = []
        for piece in pieces:
            self._line({**self._timings(model, {"role": "assistant", "content": piece}, None), "done": False})
        self._line(self._final(self._timings(model, {"role": "assistant", "content": ""}, None), len(pieces)))
        self._end_stream()

    def api_generate(self, body: dict[str, Any]) -> None:
        model = self._model(body)
        if model is None:
            return
        prompt = body.get("prompt") or ""
        messages = []
        if body.get("system"):
            messages.append({"role": "system", "content": body["system"]})
        messages.append({"role": "user", "content": prompt})
        text = reply(messages)["content"] if prompt else ""
        if body.get("stream") is False:
            self._send(200, {**self._final(self._timings(model, None, text), len(chunks(text))), "context": [1, 2, 3]})
            return
        self._start_stream()
        pieces = chunks(text) if text else []
        for piece in pieces:
            self._line({**self._timings(model, None, piece), "done": False})
        self._line({**self._final(self._timings(model, None, ""), len(pieces)), "context": [1, 2, 3]})
        self._end_stream()

    def api_pull(self, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name")
        stream = body.get("stream") is not False
        if not isinstance(name, str) or not name.strip():
            self._error(400, "model is required")
            return
        try:
            shown = display_name(name)
        except ValueError as exc:
            self._error(400, str(exc))
            return
        if parse_name(name)[2].startswith(("missing", "nonexistent")):
            self._error(500, "pull model manifest: file does not exist")
            return
        size = pull_size(name)
        delay = float(os.environ.get("STANDIN_PULL_DELAY", "0.05"))
        step = int(os.environ.get("STANDIN_PULL_CHUNK", str(1 << 20)))
        digest, size = self.store.layer_for(shown, size)
        short = digest.split(":", 1)[1][:12]
        if stream:
            self._start_stream()
        emit = self._line if stream else (lambda obj: None)
        emit({"status": "pulling manifest"})
        store = self.store
        store.blobs.mkdir(parents=True, exist_ok=True)
        blob = store.blob_path(digest)
        partial = blob.with_name(blob.name + "-partial")
        try:
            if not blob.exists():
                pattern, done = _pattern(shown), 0
                with open(partial, "wb") as f:
                    emit({"status": f"pulling {short}", "digest": digest, "total": size, "completed": 0})
                    while done < size:
                        n = min(step, size - done)
                        buf = (pattern * (n // len(pattern) + 1))[:n]
                        f.write(buf)
                        f.flush()
                        done += n
                        emit({"status": f"pulling {short}", "digest": digest, "total": size, "completed": done})
                        if delay:
                            time.sleep(delay)
                partial.replace(blob)
            else:
                emit({"status": f"pulling {short}", "digest": digest, "total": size, "completed": size})
            emit({"status": "verifying sha256 digest"})
            emit({"status": "writing manifest"})
            store.write_manifest(shown, digest, size)
        except OSError as exc:
            msg = f"write {partial}: {exc.strerror or exc}"
            if stream:
                self._line({"error": msg})
                self._end_stream()
            else:
                self._error(500, msg)
            return
        if stream:
            self._line({"status": "success"})
            self._end_stream()
        else:
            self._send(200, {"status": "success"})

    def api_delete(self, body: dict[str, Any]) -> None:
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name.strip():
            self._error(400, "model is required")
            return
        try:
            ok = self.store.delete(name)
        except ValueError:
            ok = False
        if not ok:
            self._error(404, f"model '{name}' not found")
            return
        self.loaded.pop(display_name(name), None)
        self._send(200)

    def v1_chat(self, body: dict[str, Any]) -> None:
        model = self._model(body)
        if model is None:
            return
        answer = reply(body.get("messages") or [], body.get("tools"))
        created = int(time.time())
        calls = [
            {
                "id": c.get("id", f"call_{i}"),
                "index": i,
                "type": "function",
                "function": {"name": c["function"]["name"], "arguments": json.dumps(c["function"]["arguments"])},
            }
            for i, c in enumerate(answer.get("tool_calls") or [])
        ]
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": answer["content"]}
            if calls:
                message["tool_calls"] = calls
            self._send(
                200,
                {
                    "id": "chatcmpl-standin",
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_ollama",
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                },
            )
            return
        self._start_stream("text/event-stream")
        head = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": created, "model": model}

        def event(delta: dict[str, Any], reason: str | None) -> None:
            obj = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}
            self._chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

        if calls:
            event({"role": "assistant", "content": "", "tool_calls": calls}, None)
        else:
            for piece in chunks(answer["content"]):
                event({"role": "assistant", "content": piece}, None)
        event({"role": "assistant", "content": ""}, finish)
        self._chunk(b"data: [DONE]\n\n")
        self._end_stream()


def pull_size(name: str) -> int:
    """Bytes a pull of `name` writes: a tag like `64mb` asks for that many MiB (tests of the
    free-space check), else STANDIN_PULL_BYTES (16 MiB)."""
    sized = re.fullmatch(r"(\d{1,6})mb", parse_name(name)[3])
    if sized:
        return int(sized.group(1)) << 20
    return int(os.environ.get("STANDIN_PULL_BYTES", str(16 << 20)))


def make_server(host: str, port: int, models_dir: Path) -> ThreadingHTTPServer:
    store = Store(models_dir)
    handler = type("BoundHandler", (Handler,), {"store": store, "loaded": {}})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


def default_models_dir() -> Path:
    return Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models")


def host_port(value: str) -> tuple[str, int]:
    value = value.split("://", 1)[-1]
    host, _, port = value.rpartition(":")
    if not host:
        return value or "0.0.0.0", 11434
    return host, int(port or 11434)


def main(argv: list[str] | None = None) -> int:
    default_host, default_port = host_port(os.environ.get("OLLAMA_HOST", "0.0.0.0:11434"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=default_host)
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--models", type=Path, default=default_models_dir())
    parser.add_argument("--seed-only", action="store_true", help="install the stand-in model and exit")
    args = parser.parse_args(argv)

    store = Store(args.models)
    if args.seed_only:
        store.seed()
        print(f"seeded {DEFAULT_MODEL} in {args.models}")
        return 0
    # A fresh, empty models dir (e.g. a tmpfs or bind mount) gets the stand-in model;
    # one that was used (manifests/ exists) is left as it is.
    if not (args.models / "manifests").exists():
        args.models.mkdir(parents=True, exist_ok=True)
        store.seed()

    server = make_server(args.host, args.port, args.models)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    print(f"ollama stand-in {VERSION} listening on {args.host}:{args.port}, models in {args.models}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
