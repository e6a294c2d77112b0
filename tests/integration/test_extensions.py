"""Extensions against the real engine: their own compose project on the stack network."""

from __future__ import annotations

import json

from .conftest import LABEL, STUB_IMAGE, StackHome
from .test_safety import spawn

COMPOSE = f"""services:
  echo:
    image: {STUB_IMAGE}
    volumes:
      - echo_data:/data
volumes:
  echo_data:
networks:
  default:
    name: ${{STACK_NETWORK}}
    external: true
"""


def add_extension(home: StackHome, name: str, compose: bool = True, **manifest: object) -> None:
    folder = home.path / "extensions" / name
    folder.mkdir(parents=True)
    data = {
        "name": name,
        "description": f"{name} test server",
        "version": "0.1.0",
        "mcp": {"transport": "streamable-http", "url": f"http://{name}:8000/mcp"},
        **manifest,
    }
    (folder / "mcp-config.json").write_text(json.dumps(data))
    if compose:
        (folder / "docker-compose.yml").write_text(COMPOSE)


def proxy_servers(home: StackHome) -> dict[str, object]:
    return json.loads((home.path / "mcpo" / "config.json").read_text())["mcpServers"]


def ext_states(home: StackHome) -> dict[str, str]:
    return {e["name"]: e["state"] for e in home.cli("status", "--json").json()["extensions"]}


def test_user_extension_lifecycle(stack_running: StackHome) -> None:
    home = stack_running
    add_extension(home, "echo")

    refused = home.cli("extensions", "start", "echo")
    assert refused.code == 1 and "extensions enable echo" in refused.stderr

    assert home.cli("extensions", "enable", "echo").code == 0
    assert proxy_servers(home)["echo"] == {"type": "streamable-http", "url": "http://echo:8000/mcp"}
    started = home.cli("extensions", "start", "echo", "--json")
    assert started.code == 0, started.stderr
    assert started.json()["state"] == "running"

    [container] = [c for c in home.containers() if c.labels.get("ollama-stack.extension") == "echo"]
    assert container.labels["com.docker.compose.project"] == f"{home.project}-ext-echo"
    assert container.labels[LABEL] == home.project
    assert list(container.attrs["NetworkSettings"]["Networks"]) == [f"{home.project}_default"]
    volume = f"{home.project}-ext-echo_echo_data"
    assert volume in [v.name for v in home.volumes()]
    assert ext_states(home)["echo"] == "running"

    assert home.cli("extensions", "stop", "echo").code == 0
    assert [c for c in home.containers() if c.labels.get("ollama-stack.extension")] == []
    assert volume in [v.name for v in home.volumes()]

    assert home.cli("extensions", "restart", "echo").code == 0
    assert ext_states(home)["echo"] == "running"
    # Restarting a running extension gives it a new container, not the same one left alone.
    [before] = [c.id for c in home.containers() if c.labels.get("ollama-stack.extension") == "echo"]
    assert home.cli("extensions", "restart", "echo").code == 0
    [after] = [c for c in home.containers() if c.labels.get("ollama-stack.extension") == "echo"]
    assert after.id != before and after.status == "running"
    proxy = next(c for c in home.containers() if c.labels["com.docker.compose.service"] == "mcp_proxy")
    started_before = proxy.attrs["State"]["StartedAt"]
    disabled = home.cli("extensions", "disable", "echo")
    assert disabled.code == 0, disabled.stderr
    # mcpo never drops a removed server on hot reload, so disable restarts it in place.
    restarted = home.client.containers.get(proxy.id)
    assert restarted.attrs["State"]["StartedAt"] != started_before
    assert restarted.status == "running"
    assert "echo" not in proxy_servers(home)
    assert [c for c in home.containers() if c.labels.get("ollama-stack.extension")] == []
    assert ext_states(home)["echo"] == "absent"


def test_core_stop_and_start_take_enabled_extensions_along(stack_running: StackHome) -> None:
    home = stack_running
    add_extension(home, "echo")
    assert home.cli("extensions", "enable", "echo").code == 0
    assert home.cli("extensions", "start", "echo").code == 0

    stopped = home.cli("stop")
    assert stopped.code == 0, stopped.stderr
    assert home.containers() == [] and home.networks() == []

    started = home.cli("start", "--platform", "cpu", "--timeout", "60")
    assert started.code == 0, started.stderr
    assert ext_states(home)["echo"] == "running"


def test_extension_needs_a_running_stack_and_its_env_keys(stack_home: StackHome) -> None:
    add_extension(stack_home, "echo")
    add_extension(stack_home, "keyed", compose=False, env=["KEYED_TOKEN"], mcp={"transport": "stdio", "command": "k"})
    assert stack_home.cli("extensions", "enable", "echo").code == 0

    not_running = stack_home.cli("extensions", "start", "echo")
    assert not_running.code == 1 and "ollama-stack start" in not_running.stderr

    needs_key = stack_home.cli("extensions", "enable", "keyed")
    assert needs_key.code == 1 and "KEYED_TOKEN" in needs_key.stderr
    with (stack_home.path / ".env").open("a") as handle:
        handle.write("KEYED_TOKEN=s3cret-value\n")
    assert stack_home.cli("extensions", "enable", "keyed").code == 0
    assert proxy_servers(stack_home)["keyed"]["env"] == {"KEYED_TOKEN": "s3cret-value"}  # type: ignore[index]
    listing = stack_home.cli("extensions", "list")
    assert "s3cret-value" not in listing.stdout + listing.stderr


def test_invalid_extension_is_listed_and_others_keep_working(stack_home: StackHome) -> None:
    add_extension(stack_home, "good", compose=False, mcp={"transport": "stdio", "command": "x"})
    broken = stack_home.path / "extensions" / "broken"
    broken.mkdir()
    (broken / "mcp-config.json").write_text('{"name": "broken", "mcp": ')

    listing = stack_home.cli("extensions", "list", "--json")
    enable_broken = stack_home.cli("extensions", "enable", "broken")
    enable_good = stack_home.cli("extensions", "enable", "good")

    states = {e["name"]: e for e in listing.json()["extensions"]}
    assert states["broken"]["state"] == "invalid" and "not valid JSON" in states["broken"]["error"]
    assert states["good"]["state"] == "absent" and states["time"]["source"] == "bundled"
    assert enable_broken.code == 1 and "invalid" in enable_broken.stderr
    assert enable_good.code == 0


def test_racing_enables_never_lose_one(stack_home: StackHome) -> None:
    names = [f"race{i}" for i in range(4)]
    for name in names:
        add_extension(stack_home, name, compose=False, mcp={"transport": "stdio", "command": name})

    procs = [spawn(stack_home, "extensions", "enable", name) for name in names]
    outcomes = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]

    assert [code for code, _ in outcomes] == [0] * len(names), outcomes
    state = json.loads((stack_home.path / ".ollama-stack.json").read_text())
    assert state["enabled_extensions"] == names
    assert sorted(proxy_servers(stack_home)) == names


def test_extension_commands_refuse_hostile_names(stack_home: StackHome) -> None:
    for name in ("../../etc", "a/b", "UP"):
        result = stack_home.cli("extensions", "enable", name)
        assert result.code == 2 and "Invalid extension name" in result.stderr
    assert not (stack_home.path / ".ollama-stack.json").exists()


def test_stop_works_when_an_extension_compose_file_broke(stack_running: StackHome) -> None:
    home = stack_running
    add_extension(home, "echo")
    assert home.cli("extensions", "enable", "echo").code == 0
    assert home.cli("extensions", "start", "echo").code == 0
    (home.path / "extensions" / "echo" / "docker-compose.yml").write_text("services: [this is not compose\n")

    stopped = home.cli("stop")

    assert stopped.code == 0, stopped.stderr
    assert home.containers() == [] and home.networks() == []


def test_an_extension_that_fails_does_not_take_the_core_down(stack_home: StackHome) -> None:
    add_extension(stack_home, "echo")
    compose = stack_home.path / "extensions" / "echo" / "docker-compose.yml"
    compose.write_text(compose.read_text().replace(STUB_IMAGE, "127.0.0.1:9/ostest-missing:none"))
    assert stack_home.cli("extensions", "enable", "echo").code == 0

    started = stack_home.cli("start", "--platform", "cpu", "--timeout", "60")

    assert started.code == 0, started.stderr
    assert "Extension 'echo' did not start" in started.stderr
    status = stack_home.cli("status", "--json").json()
    assert status["healthy"] is True
    assert {e["name"]: e["state"] for e in status["extensions"]}["echo"] == "absent"


# --- Open WebUI's tool servers (the real Open WebUI is in tests/e2e; here: the failure paths) ---


def test_enable_while_stopped_says_open_webui_gets_it_at_the_next_start(stack_home: StackHome) -> None:
    result = stack_home.cli("extensions", "enable", "time")

    assert result.code == 0, result.stderr
    assert "Open WebUI gets the change at the next `ollama-stack start`" in result.stderr
    assert "Warning" not in result.stderr


def test_a_webui_that_is_not_open_webui_gives_a_warning_with_the_fix_never_silence(stack_running: StackHome) -> None:
    # The stub image has no Python: changing Open WebUI's settings must fail loudly.
    enabled = stack_running.cli("extensions", "enable", "time")
    sync = stack_running.cli("extensions", "sync", "--json")
    check = stack_running.cli("check", "--json")

    assert enabled.code == 0, enabled.stderr
    assert "Warning: Open WebUI's tool servers were not updated" in enabled.stderr
    assert "not an Open WebUI image" in enabled.stderr and "ollama-stack extensions sync" in enabled.stderr
    assert sync.code == 1
    assert "not an Open WebUI image" in sync.json()["error"]["message"]
    [tool_servers] = [c for c in check.json()["checks"] if c["name"] == "openwebui-tool-servers"]
    assert tool_servers["status"] == "warn" and "extensions sync" in tool_servers["fix"]
    assert check.code == 0  # a warning, not a failing check
    key = stack_running.env_text().split("MCP_PROXY_API_KEY=")[1].split()[0]
    for result in (enabled, sync, check):
        assert key not in result.stdout + result.stderr
