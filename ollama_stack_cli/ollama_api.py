"""Ollama's HTTP API, spoken with the standard library (no printing, no Docker).

Why not PyPI `ollama` (the official client): importing it costs ~200 ms here (httpx,
anyio), which alone would put `models list --json` far past its goal of 1.2x a floor
that makes one stdlib `GET /api/tags` (SPEC 9). The CLI needs five endpoints and one
NDJSON stream it must be able to drop at once (a refused pull closes the connection,
and Ollama stops downloading); http.client does that in a few lines.

Failures become `StackError`s here: Ollama not answering names the URL (exit 1), and
Ollama's own refusals carry its words ("pull model manifest: file does not exist").
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .errors import StackError

TIMEOUT = 30.0
# A pull can sit silent for minutes while Ollama verifies a multi-GB blob.
STREAM_TIMEOUT = 600.0


class OllamaAPI:
    """One Ollama server at http://host:port."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host.strip("[]")
        self.port = port
        self.url = f"http://{host}:{port}"

    def tags(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/api/tags").get("models") or [])

    def ps(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/api/ps").get("models") or [])

    def delete(self, name: str) -> None:
        self._json("DELETE", "/api/delete", {"model": name})

    @contextmanager
    def pull(self, name: str) -> Iterator[Iterator[dict[str, Any]]]:
        """The pull's NDJSON events, one dict each; leaving the block closes the connection.

        Closing before `success` cancels the pull: Ollama stops when its client goes away.
        An `{"error": ...}` event is raised as a StackError with Ollama's reason.
        """
        conn = self._connection(STREAM_TIMEOUT)
        try:
            response = self._send(conn, "POST", "/api/pull", {"model": name, "stream": True})
            if response.status >= 400:
                raise self._refusal(response.status, response.read())
            yield self._events(response)
        finally:
            conn.close()

    def _events(self, response: http.client.HTTPResponse) -> Iterator[dict[str, Any]]:
        try:
            for line in response:
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict) and event.get("error"):
                    raise StackError(f"Ollama: {event['error']}", slug="ollama_error")
                if isinstance(event, dict):
                    yield event
        except (OSError, http.client.HTTPException) as exc:
            raise self.unreachable(exc) from exc

    # -- transport --

    def _connection(self, timeout: float = TIMEOUT) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _send(
        self, conn: http.client.HTTPConnection, method: str, path: str, body: dict[str, Any] | None
    ) -> http.client.HTTPResponse:
        headers = {"User-Agent": "ollama-stack", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=headers)
            return conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise self.unreachable(exc) from exc

    def _json(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        conn = self._connection()
        try:
            response = self._send(conn, method, path, body)
            try:
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise self.unreachable(exc) from exc
        finally:
            conn.close()
        if response.status >= 400:
            raise self._refusal(response.status, raw)
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except ValueError:
            raise StackError(
                f"{self.url}{path} did not answer like Ollama (not JSON).",
                "Is OLLAMA_PORT in the home's .env the stack's Ollama?",
                slug="ollama_error",
            ) from None
        return data if isinstance(data, dict) else {}

    def _refusal(self, status: int, raw: bytes) -> StackError:
        try:
            reason = str(json.loads(raw).get("error") or "")
        except (ValueError, AttributeError):
            reason = raw.decode("utf-8", "replace").strip()[:200]
        return StackError(f"Ollama: {reason or f'HTTP {status}'}", slug="ollama_error")

    def unreachable(self, exc: BaseException) -> StackError:
        detail = "connection refused" if isinstance(exc, ConnectionRefusedError) else (str(exc) or type(exc).__name__)
        return StackError(
            f"Ollama does not answer at {self.url} ({detail}).",
            "See `ollama-stack status` and `ollama-stack logs ollama`.",
            slug="ollama_unreachable",
        )
