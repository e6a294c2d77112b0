"""Extensions: info, their images under update, platform refusal, and their platform overlays."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import STUB_IMAGE, RegistryStack, StackHome, container_ids, publish
from .test_extensions import COMPOSE, add_extension, ext_states, proxy_servers


def test_extensions_info_json_and_human(stack_home: StackHome) -> None:
    add_extension(stack_home, "echo", env=["ECHO_TOKEN"], platforms=["cpu", "nvidia"])
    with (stack_home.path / ".env").open("a") as handle:
        handle.write("ECHO_TOKEN=tok-value-123\n")
    assert stack_home.cli("extensions", "enable", "echo").code == 0

    doc = stack_home.cli("extensions", "info", "echo", "--json")
    human = stack_home.cli("extensions", "info", "echo")
    bundled = stack_home.cli("extensions", "info", "time", "--json")

    assert doc.code == 0, doc.stderr
    info = doc.json()
    folder = stack_home.path / "extensions" / "echo"
    assert info["name"] == "echo" and info["description"] == "echo test server" and info["version"] == "0.1.0"
    assert info["platforms"] == ["cpu", "nvidia"] and info["env"] == ["ECHO_TOKEN"]
    assert (info["mcp"]["transport"], info["mcp"]["url"]) == ("streamable-http", "http://echo:8000/mcp")
    assert info["enabled"] is True and info["state"] == "absent" and info["source"] == "user"
    assert info["path"] == str(folder) and info["has_compose"] is True
    assert info["valid"] is True and info["error"] is None

    assert human.code == 0, human.stderr
    lines = [line.strip() for line in human.stdout.splitlines()]
    assert lines[0] == "echo 0.1.0  (user)" and lines[1] == "echo test server"
    assert "enabled:         yes" in lines and "state:           absent" in lines
    assert f"path:            {folder}" in lines
    assert "containers:      yes (its own compose project)" in lines
    assert "transport:       streamable-http" in lines and "server:          http://echo:8000/mcp" in lines
    assert "platforms:       cpu, nvidia" in lines and "needs .env keys: ECHO_TOKEN" in lines
    assert "tok-value-123" not in human.stdout + doc.stdout

    assert bundled.code == 0 and bundled.json()["source"] == "bundled" and bundled.json()["enabled"] is False
    assert bundled.json()["mcp"]["transport"] == "stdio" and bundled.json()["has_compose"] is False


def test_extensions_info_of_an_invalid_one_says_why(stack_home: StackHome) -> None:
    broken = stack_home.path / "extensions" / "broken"
    broken.mkdir(parents=True)
    (broken / "mcp-config.json").write_text('{"name": "broken", "mcp": ')

    doc = stack_home.cli("extensions", "info", "broken", "--json")
    human = stack_home.cli("extensions", "info", "broken")

    assert doc.code == 0, doc.stderr
    assert doc.json()["valid"] is False and "not valid JSON" in doc.json()["error"]
    assert doc.json()["state"] == "invalid"
    assert "invalid: " in human.stdout and "not valid JSON" in human.stdout


# --- update of an extension's images -----------------------------------------------


def test_update_pulls_and_recreates_an_extension_image(
    registry_stack_running: RegistryStack,
    registry: str,
    docker_client: Any,
) -> None:
    home = registry_stack_running.home
    name = f"{registry_stack_running.tag}-echo"
    publish(docker_client, registry, name, "1")
    add_extension(home, "echo")
    compose = home.path / "extensions" / "echo" / "docker-compose.yml"
    compose.write_text(COMPOSE.replace(STUB_IMAGE, f"{registry}/{name}:test"))
    assert home.cli("extensions", "enable", "echo").code == 0
    started = home.cli("extensions", "start", "echo")
    assert started.code == 0, started.stderr
    [old] = [c for c in home.containers() if c.labels.get("ollama-stack.extension") == "echo"]
    core_before = container_ids(home)
    new_id = publish(docker_client, registry, name, "2")

    result = home.cli("update", "--yes", "--json")

    assert result.code == 0, result.stderr
    report = result.json()
    assert report["recreated"] == ["echo/echo"], report
    [new] = [c for c in home.containers() if c.labels.get("ollama-stack.extension") == "echo"]
    assert new.id != old.id and new.image.id == new_id and new.status == "running"
    core_after = {k: v for k, v in container_ids(home).items() if k != "echo"}
    assert core_after == {k: v for k, v in core_before.items() if k != "echo"}
    assert ext_states(home)["echo"] == "running"


# --- platforms ---------------------------------------------------------------------


def test_an_extension_for_another_platform_is_refused(stack_running: StackHome) -> None:
    add_extension(stack_running, "maconly", platforms=["apple"])
    state_before = (stack_running.path / ".ollama-stack.json").read_text()

    result = stack_running.cli("extensions", "enable", "maconly")

    assert result.code == 1
    assert "does not support the cpu platform" in result.stderr and "It supports: apple." in result.stderr
    assert (stack_running.path / ".ollama-stack.json").read_text() == state_before
    assert "maconly" not in proxy_servers(stack_running)


def test_an_extension_enabled_before_the_first_start_is_not_started_on_another_platform(
    stack_home: StackHome,
) -> None:
    add_extension(stack_home, "maconly", platforms=["apple"])
    assert stack_home.cli("extensions", "enable", "maconly").code == 0  # no platform chosen yet

    started = stack_home.cli("start", "--platform", "cpu", "--timeout", "60")

    assert started.code == 0, started.stderr
    assert [c for c in stack_home.containers() if c.labels.get("ollama-stack.extension")] == []
    assert "maconly" not in proxy_servers(stack_home)
    assert "Extension 'maconly' does not support the cpu platform; skipped." in started.stderr


OVERLAY = """services:
  echo:
    environment:
      OSTEST_OVERLAY: {platform}
"""
# No GPU here: the home override takes the GPU reservation off ollama, so the nvidia overlay
# files are used exactly as on a GPU machine and the stack still starts.
NO_GPU = "services:\n  ollama:\n    deploy: !reset {}\n"


@pytest.mark.parametrize("platform", ["cpu", "nvidia", "apple"])
def test_an_extension_gets_the_overlay_of_the_platform(stack_home: StackHome, platform: str) -> None:
    add_extension(stack_home, "echo")
    folder = stack_home.path / "extensions" / "echo"
    for overlay in ("nvidia", "apple"):
        (folder / f"docker-compose.{overlay}.yml").write_text(OVERLAY.format(platform=overlay))
    (stack_home.path / "docker-compose.override.yml").write_text(NO_GPU)
    assert stack_home.cli("extensions", "enable", "echo").code == 0

    started = stack_home.cli("start", "--platform", platform, "--timeout", "60", "--json")

    assert started.code == 0, started.stderr
    assert started.json()["platform"] == platform
    [echo] = [c for c in stack_home.containers() if c.labels.get("ollama-stack.extension") == "echo"]
    env = dict(item.split("=", 1) for item in echo.attrs["Config"]["Env"])
    assert env.get("OSTEST_OVERLAY") == (None if platform == "cpu" else platform), env
    assert json.loads((stack_home.path / ".ollama-stack.json").read_text())["platform"] == platform
