"""A small Open WebUI 0.12.4 API client for the real-services tier (stdlib only).

Only what a person does through the UI, over the same endpoints the UI calls:
sign up, sign in, add a user, read and write the tool servers (admin), list the
tools a user may pick in a chat, share a model, set banners, and chat.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

ALL_USERS_READ: list[dict[str, str]] = [{"principal_type": "user", "principal_id": "*", "permission": "read"}]


class ApiError(Exception):
    """An HTTP error answer: status and the body Open WebUI sent (never the request's secrets)."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:500]}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Session:
    """One signed-in account."""

    base: str
    token: str = field(repr=False)
    email: str
    role: str

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        return request(self.base, method, path, body, token=self.token, timeout=timeout)

    # --- what a user sees ---------------------------------------------------

    def tools(self) -> list[dict[str, Any]]:
        """The tools a user can pick in a chat (the chat's tool menu): GET /api/v1/tools/.

        Tool servers appear as `server:<info.id>`, only when Open WebUI could fetch their
        OpenAPI document and the user passes the connection's access grants.
        """
        return list(self.call("GET", "/api/v1/tools/"))

    def tool_ids(self) -> set[str]:
        return {str(tool["id"]) for tool in self.tools()}

    def models(self) -> list[str]:
        return [str(model["id"]) for model in self.call("GET", "/api/models")["data"]]

    def banners(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/api/v1/configs/banners"))

    def chat(self, model: str, text: str, **extra: Any) -> dict[str, Any]:
        """POST /api/chat/completions, not streamed: the OpenAI-shaped answer."""
        body = {"model": model, "stream": False, "messages": [{"role": "user", "content": text}], **extra}
        answer = self.call("POST", "/api/chat/completions", body, timeout=120)
        assert isinstance(answer, dict), f"chat answered {answer!r}"
        return answer

    # --- admin ----------------------------------------------------------------

    def add_user(self, name: str, email: str, password: str, role: str = "user") -> dict[str, Any]:
        body = {"name": name, "email": email, "password": password, "role": role}
        return dict(self.call("POST", "/api/v1/auths/add", body))

    def tool_servers(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/api/v1/configs/tool_servers")["TOOL_SERVER_CONNECTIONS"])

    def set_tool_servers(self, connections: list[dict[str, Any]]) -> list[dict[str, Any]]:
        answer = self.call("POST", "/api/v1/configs/tool_servers", {"TOOL_SERVER_CONNECTIONS": connections})
        return list(answer["TOOL_SERVER_CONNECTIONS"])

    def set_banners(self, banners: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(self.call("POST", "/api/v1/configs/banners", {"banners": banners}))

    def share_model(self, model_id: str) -> dict[str, Any]:
        """Give every user read access to a model (Admin > Models > access: public)."""
        body = {
            "id": model_id,
            "base_model_id": None,
            "name": model_id,
            "meta": {},
            "params": {},
            "access_grants": ALL_USERS_READ,
        }
        return dict(self.call("POST", "/api/v1/models/create", body))


def request(base: str, method: str, path: str, body: Any = None, token: str | None = None, timeout: float = 60) -> Any:
    headers = {"Accept": "application/json"}
    data = None
    if body is not None:
        headers["Content-Type"] = "application/json"
        data = json.dumps(body).encode()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        raise ApiError(method, path, exc.code, exc.read().decode(errors="replace")) from None
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:  # a streamed (SSE) or plain-text reply
        return raw.decode(errors="replace")


def signup(base: str, name: str, email: str, password: str) -> Session:
    answer = request(base, "POST", "/api/v1/auths/signup", {"name": name, "email": email, "password": password})
    return Session(base=base, token=answer["token"], email=answer["email"], role=answer["role"])


def signin(base: str, email: str, password: str) -> Session:
    answer = request(base, "POST", "/api/v1/auths/signin", {"email": email, "password": password})
    return Session(base=base, token=answer["token"], email=answer["email"], role=answer["role"])


def wait_until(what: str, probe: Any, timeout: float = 30, interval: float = 0.5) -> Any:
    """Call probe() until it returns something truthy; fail naming `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s (last: {last!r})")
        time.sleep(interval)


def answer_text(answer: dict[str, Any]) -> str:
    """The assistant's text in an OpenAI-shaped chat completion."""
    return str(answer["choices"][0]["message"]["content"])
