"""One real stack, checked the way a person would check it.

The tests share one stack (Open WebUI's first boot takes ~25 s) and run in file
order: the welcome page is looked at before the first account exists, the
accounts are made once, then the extensions, chats, drift repair and a restart.
Tests marked "SPEC 11" check the Open WebUI integration contract (extensions as
global tool servers at any time, `check` drift, `extensions sync`).
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import StackHome

from . import browser, owui
from .conftest import (
    ALL_USERS_READ,
    MCP_PROXY_IMAGE,
    MODEL,
    OLLAMA_IMAGE,
    START_TIMEOUT,
    WEBUI_IMAGE,
    RealStack,
    accounts,
    boot,
    by_id,
    public,
)

TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


@pytest.fixture(scope="module")
def stack(real_home: StackHome) -> RealStack:
    """`time` enabled on the stopped stack, then the first start (Open WebUI's first boot)."""
    return boot(real_home, "time")


@pytest.fixture(scope="module")
def people(stack: RealStack) -> RealStack:
    """The admin (first sign-up) and a plain user, made once for the module."""
    return accounts(stack) if stack.admin is None else stack


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: OLLAMA_STACK_E2E_ARTIFACTS to keep them, else the test's tmp."""
    folder = Path(os.environ.get("OLLAMA_STACK_E2E_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(url: str, token: str | None, body: dict[str, Any] | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    return urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=30)


def http_status(url: str, token: str | None = None, body: dict[str, Any] | None = None) -> int:
    try:
        with _open(url, token, body) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def http_body(url: str, token: str | None = None, body: dict[str, Any] | None = None) -> str:
    with _open(url, token, body) as response:
        return str(response.read().decode())


def admin_of(stack: RealStack) -> owui.Session:
    assert stack.admin is not None
    return stack.admin


def user_of(stack: RealStack) -> owui.Session:
    assert stack.user is not None
    return stack.user


def shown(admin: owui.Session) -> dict[str, dict[str, Any]]:
    """The admin's tool-server entries by `info.id`, without their keys (safe in assertion output)."""
    return {name: public(entry) for name, entry in by_id(admin.tool_servers()).items()}


def entry_of(stack: RealStack, name: str) -> dict[str, Any] | None:
    return shown(admin_of(stack)).get(name)


def check_named(stack: RealStack, name: str) -> dict[str, Any]:
    result = stack.home.cli("check", "--json")
    checks = {c["name"]: c for c in result.json()["checks"]}
    assert name in checks, f"`check --json` has no {name!r} check: {sorted(checks)}"
    return dict(checks[name])


# --- 1. start -----------------------------------------------------------------


def test_start_reaches_healthy_on_the_real_images_and_the_urls_answer(stack: RealStack) -> None:
    document = stack.start
    services = {s["name"]: s for s in document["services"]}

    states = [(s["name"], s["state"], s["health"]) for s in services.values()]
    assert document["running"] and document["healthy"], states
    assert set(services) == {"ollama", "webui", "mcp_proxy"}
    for service, image in (("webui", WEBUI_IMAGE), ("mcp_proxy", MCP_PROXY_IMAGE), ("ollama", OLLAMA_IMAGE)):
        assert stack.container(service).image.id == stack.home.client.images.get(image).id, service
    status = stack.home.cli("status", "--json")
    assert status.code == 0, status.stderr
    assert status.json()["healthy"] is True
    assert services["webui"]["url"] == stack.webui
    assert http_status(f"{services['webui']['url']}/health") == 200
    assert http_status(f"{services['ollama']['url']}/api/version") == 200
    assert http_status(f"{services['mcp_proxy']['url']}/openapi.json") == 200
    # The enabled extension's tools are served by the real mcpo, behind the key.
    assert "/get_current_time" in json.loads(http_body(f"{stack.proxy}/time/openapi.json"))["paths"]
    tool = f"{stack.proxy}/time/get_current_time"
    assert http_status(tool, body={"timezone": "UTC"}) == 401
    answer = json.loads(http_body(tool, stack.env_value("MCP_PROXY_API_KEY"), body={"timezone": "UTC"}))
    assert answer["timezone"] == "UTC" and TIMESTAMP.search(answer["datetime"])


# --- 8a. the browser, before any account ---------------------------------------


def test_browser_shows_the_get_started_welcome_before_any_account(stack: RealStack, shots: Path) -> None:
    assert stack.admin is None, "run before the accounts are made (file order)"

    dom = browser.dump_dom(stack.webui + "/", until=r"Welcome to your AI home")

    assert re.search(r"<button[^>]*>\s*(<[^>]+>\s*)*Get started", dom), dom[-2000:]
    assert "Internal Error" not in dom
    # The welcome page shows its full-window picture: a 500 page or a blank one is a few KB.
    browser.screenshot(stack.webui + "/", shots / "welcome.png", min_bytes=100_000)


# --- 2. accounts -----------------------------------------------------------------


def test_first_signup_is_admin_and_the_admin_adds_a_plain_user_who_signs_in(people: RealStack) -> None:
    admin, user = admin_of(people), user_of(people)

    assert admin.role == "admin"
    assert user.role == "user" and user.email == "user@example.com"
    # Sign-up closes after the first account: others are added by the admin.
    with pytest.raises(owui.ApiError) as refused:
        owui.signup(people.webui, "Late", "late@example.com", "late-pass-e2e")
    assert refused.value.status == 403
    # The plain user is not an admin.
    with pytest.raises(owui.ApiError) as forbidden:
        user.tool_servers()
    assert forbidden.value.status in (401, 403)


# --- 8b. the browser, once an admin exists -------------------------------------------


def test_browser_shows_the_sign_in_form_once_an_admin_exists(people: RealStack, shots: Path) -> None:
    dom = browser.dump_dom(people.webui + "/auth", until=r"Sign in to Open WebUI")

    assert re.search(r"<input[^>]*type=\"email\"", dom), dom[-3000:]
    assert re.search(r"<input[^>]*type=\"password\"", dom), dom[-3000:]
    assert "Welcome to your AI home" not in dom and "Internal Error" not in dom
    browser.screenshot(people.webui + "/auth", shots / "sign-in.png", min_bytes=12_000)


# --- 6. a chat --------------------------------------------------------------------


def test_the_plain_user_sees_the_model_and_a_chat_is_answered_by_the_stand_in(people: RealStack) -> None:
    user = user_of(people)

    assert MODEL in user.models()
    answer = user.chat(MODEL, "Hello there, e2e")

    assert owui.answer_text(answer) == "Hello from the ollama-stack stand-in. You said: Hello there, e2e"


# --- 3. SPEC 11: the extension's tool server, for every user -----------------------


def test_spec11_enabled_extension_is_a_global_tool_server_every_user_sees(people: RealStack) -> None:
    entry = entry_of(people, "time")

    assert entry is not None, shown(admin_of(people))
    assert entry["url"] == "http://mcp_proxy:8000/time"
    assert entry["path"] == "openapi.json" and entry["auth_type"] == "bearer"
    assert entry["config"]["enable"] is True
    assert entry["config"]["access_grants"] == ALL_USERS_READ
    key_is_the_proxy_key = by_id(admin_of(people).tool_servers())["time"].get("key") == people.env_value(
        "MCP_PROXY_API_KEY"
    )
    assert key_is_the_proxy_key, "the entry's bearer key is not the .env's MCP_PROXY_API_KEY"
    # What the plain user's chat tool menu lists (fetched through the proxy by Open WebUI).
    assert "server:time" in owui.wait_until("the user's tools list server:time", lambda: user_of(people).tool_ids())


# --- 7. SPEC 11: the tool round trip ------------------------------------------------


def test_spec11_tool_round_trip_legacy_function_calling(people: RealStack) -> None:
    user = user_of(people)
    calls_before = people.logs("mcp_proxy").count("Calling endpoint: get_current_time")

    answer = user.chat(MODEL, "What time is it now?", tool_ids=["server:time"], params={"function_calling": "legacy"})

    text = owui.answer_text(answer)
    assert text.startswith("The tool said:"), text[:500]
    # mcp-server-time's own answer, handed back through Open WebUI's context.
    assert re.search(r'"datetime": "' + TIMESTAMP.pattern, text), text[-800:]
    assert '"timezone": "UTC"' in text, text[-800:]
    assert people.logs("mcp_proxy").count("Calling endpoint: get_current_time") == calls_before + 1


def test_spec11_tool_round_trip_native_function_calling_in_a_chat(people: RealStack) -> None:
    user = user_of(people)
    user_id, assistant_id = str(uuid.uuid4()), str(uuid.uuid4())
    question = "Native: what time is it?"
    body = {
        "model": MODEL,
        "stream": True,
        "messages": [{"role": "user", "content": question}],
        "tool_ids": ["server:time"],
        "id": assistant_id,
        "parent_id": None,
        "user_message": {"id": user_id, "role": "user", "content": question, "parentId": None, "childrenIds": []},
    }
    user.call("POST", "/api/chat/completions", body, timeout=120)

    def stored_answer() -> str | None:
        for chat in user.call("GET", "/api/v1/chats/"):
            full = user.call("GET", f"/api/v1/chats/{chat['id']}")
            message = (full["chat"].get("history") or {}).get("messages", {}).get(assistant_id)
            if message and message.get("done"):
                return str(message.get("content", ""))
        return None

    content = owui.wait_until("the chat's stored answer", stored_answer, timeout=60)
    assert "The tool said:" in content, content[:1500]
    assert re.search(r'"datetime": "' + TIMESTAMP.pattern, content), content[:1500]


# --- 4. SPEC 11: enable after first boot, disable; the admin's own entry stays ------


def test_spec11_enable_and_disable_after_first_boot_reach_open_webui_at_once(people: RealStack) -> None:
    admin, user = admin_of(people), user_of(people)
    handmade = {
        "url": "http://tools.example.invalid:9000",
        "path": "openapi.json",
        "type": "openapi",
        "auth_type": "none",
        "key": "",
        "config": {"enable": False, "access_grants": []},
        "info": {"id": "handmade", "name": "An admin's own server"},
    }
    admin.set_tool_servers([*admin.tool_servers(), handmade])
    before = shown(admin)

    enabled = people.home.cli("extensions", "enable", "fetch")
    assert enabled.code == 0, enabled.stderr

    after = shown(admin)  # at once: no restart, no waiting
    assert "fetch" in after, after
    assert after["fetch"]["url"] == "http://mcp_proxy:8000/fetch"
    assert after["fetch"]["config"]["access_grants"] == ALL_USERS_READ
    assert after["handmade"] == before["handmade"]
    assert after["time"] == before["time"]
    owui.wait_until("the user's tools list server:fetch", lambda: "server:fetch" in user.tool_ids())

    disabled = people.home.cli("extensions", "disable", "fetch")
    assert disabled.code == 0, disabled.stderr

    assert shown(admin) == before
    assert "server:fetch" not in user.tool_ids()
    # Leave only what the CLI manages, for the drift check below.
    admin.set_tool_servers([c for c in admin.tool_servers() if (c.get("info") or {}).get("id") != "handmade"])


# --- 9. SPEC 11: check reports drift, sync repairs it ---------------------------------


def test_spec11_check_warns_on_drift_and_extensions_sync_repairs_it(people: RealStack) -> None:
    admin = admin_of(people)
    assert check_named(people, "openwebui-tool-servers")["status"] == "pass"

    # Behind the CLI's back: the admin deletes the extension's entry.
    admin.set_tool_servers([c for c in admin.tool_servers() if (c.get("info") or {}).get("id") != "time"])
    drift = check_named(people, "openwebui-tool-servers")

    assert drift["status"] == "warn", drift
    assert "time" in drift["detail"], drift
    assert "ollama-stack extensions sync" in (drift.get("fix") or ""), drift
    synced = people.home.cli("extensions", "sync")
    assert synced.code == 0, synced.stderr
    assert check_named(people, "openwebui-tool-servers")["status"] == "pass"
    assert entry_of(people, "time") is not None


# --- 5. an admin setting survives `restart` -------------------------------------------


def test_an_admin_setting_survives_restart(people: RealStack) -> None:
    banner = {
        "id": "e2e-banner",
        "type": "info",
        "title": "",
        "content": "Maintenance on Sunday (e2e)",
        "dismissible": True,
        "timestamp": 1_700_000_000,
    }
    admin_of(people).set_banners([banner])
    assert [b["id"] for b in user_of(people).banners()] == ["e2e-banner"]

    restarted = people.home.cli("restart", "--platform", "cpu", "--timeout", START_TIMEOUT, "--json", timeout=600)

    assert restarted.code == 0, restarted.stderr[-3000:]
    assert restarted.json()["healthy"] is True
    # Tokens stay valid: the WEBUI_SECRET_KEY in .env is kept across restarts.
    banners = user_of(people).banners()
    assert [(b["id"], b["content"]) for b in banners] == [("e2e-banner", "Maintenance on Sunday (e2e)")]


# --- 4b. SPEC 11: EXTENSIONS_VISIBLE_TO=admins ----------------------------------------


def test_spec11_extensions_visible_to_admins_hides_them_from_plain_users(people: RealStack) -> None:
    people.set_env("EXTENSIONS_VISIBLE_TO", "admins")
    for command in (("extensions", "disable", "time"), ("extensions", "enable", "time")):
        result = people.home.cli(*command)
        assert result.code == 0, result.stderr

    entry = entry_of(people, "time")

    assert entry is not None and entry["config"]["enable"] is True
    assert not entry["config"].get("access_grants"), public(entry)
    owui.wait_until("the admin's tools list server:time", lambda: "server:time" in admin_of(people).tool_ids())
    assert "server:time" not in user_of(people).tool_ids()


# --- 5. SPEC 12: models -------------------------------------------------------------


def test_spec12_a_model_pulled_with_the_cli_appears_in_open_webuis_model_list(people: RealStack) -> None:
    name = "e2e-pulled:2mb"
    assert name not in admin_of(people).models()

    result = people.home.cli("models", "pull", name, "--json")

    assert result.code == 0, result.stderr
    assert result.json()["changed"] == [name]
    owui.wait_until(f"Open WebUI lists {name}", lambda: name in admin_of(people).models())
