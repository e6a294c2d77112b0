"""start's options (--no-wait, --update, -q), compose missing or v1, and the proxy with nothing enabled."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .conftest import RegistryStack, StackHome, container_ids

FAIL_WEBUI = "services:\n  webui:\n    environment:\n      STUB_FAIL_HEALTH: '1'\n"


def test_no_wait_returns_before_the_services_answer(stack_home: StackHome) -> None:
    (stack_home.path / "docker-compose.override.yml").write_text(FAIL_WEBUI)  # webui never answers
    assert stack_home.cli("extensions", "enable", "time").code == 0

    # Waiting would end in a health timeout (exit 1) after 5 s: exit 0 means it did not wait.
    result = stack_home.cli("start", "--platform", "cpu", "--no-wait", "--timeout", "5", "--json")

    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["running"] is True and doc["healthy"] is False
    assert {c.status for c in stack_home.containers()} == {"running"} and len(stack_home.containers()) == 3
    assert "Timed out" not in result.stderr and "webui: " not in result.stderr
    # Open WebUI's tool servers cannot be set before it answers: the user is told what to run later.
    assert "ollama-stack extensions sync" in result.stderr, result.stderr


def test_start_update_pulls_and_recreates_what_changed(registry_stack_running: RegistryStack) -> None:
    home = registry_stack_running.home
    before = container_ids(home)
    new_id = registry_stack_running.publish_new("webui")

    plain = home.cli("start", "--platform", "cpu", "--timeout", "60")
    assert plain.code == 0 and container_ids(home) == before, plain.stderr  # healthy: nothing to do

    updated = home.cli("start", "--platform", "cpu", "--update", "--timeout", "60", "--json")

    assert updated.code == 0, updated.stderr
    assert updated.json()["healthy"] is True
    after = container_ids(home)
    assert after["webui"] != before["webui"]
    assert home.client.containers.get(after["webui"]).image.id == new_id
    assert after["ollama"] == before["ollama"] and after["mcp_proxy"] == before["mcp_proxy"]


def test_quiet_start_prints_no_progress_and_starts_the_stack(stack_home: StackHome) -> None:
    result = stack_home.cli("-q", "start", "--platform", "cpu", "--timeout", "60")

    assert result.code == 0
    assert result.stderr == "", result.stderr  # no "Starting", "Creating", health lines or warnings
    assert f"http://127.0.0.1:{stack_home.ports['webui']}" in result.stdout  # the result still prints
    status = stack_home.cli("status", "--json").json()
    assert status["healthy"] is True and len(stack_home.containers()) == 3


def test_quiet_keeps_every_commands_result(stack_home: StackHome) -> None:
    # -q is "only errors and results": the report asked for is the result.
    check = stack_home.cli("-q", "check")
    listed = stack_home.cli("-q", "extensions", "list")
    info = stack_home.cli("-q", "extensions", "info", "time")

    assert "engine" in check.stdout and "ready" in check.stdout, check.stdout
    assert "time" in listed.stdout and "fetch" in listed.stdout, listed.stdout
    assert "transport:" in info.stdout, info.stdout
    assert check.stderr == listed.stderr == info.stderr == ""


# --- compose missing, or v1 ---------------------------------------------------


def no_compose_env(tmp_path: Path, v1: bool = False) -> dict[str, str]:
    """PATH with only the docker CLI (and a v1 docker-compose if asked); a DOCKER_CONFIG without plugins."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = next(Path(d) / "docker" for d in os.environ["PATH"].split(os.pathsep) if (Path(d) / "docker").is_file())
    (bin_dir / "docker").symlink_to(docker)
    if v1:
        script = bin_dir / "docker-compose"
        script.write_text(
            '#!/bin/sh\nif [ "$1 $2" = "version --short" ]; then echo 1.29.2; exit 0; fi\n'
            'echo "docker-compose version 1.29.2, build 5becea4c"\n'
        )
        script.chmod(0o755)
    config = tmp_path / "docker-config"
    config.mkdir()
    return {"PATH": str(bin_dir), "DOCKER_CONFIG": str(config)}


def test_compose_missing_is_exit_4_with_the_hint(stack_home: StackHome, tmp_path: Path) -> None:
    env = no_compose_env(tmp_path)

    result = stack_home.cli("start", "--platform", "cpu", env=env)
    as_json = stack_home.cli("start", "--platform", "cpu", "--json", env=env)

    assert result.code == 4, result.stderr
    assert "Error: Docker Compose v2 was not found." in result.stderr
    assert "Hint: Install Docker Compose v2" in result.stderr and "docker-compose-plugin" in result.stderr
    assert as_json.code == 4 and as_json.json()["error"]["code"] == "docker_unavailable"
    assert stack_home.containers() == [] and stack_home.networks() == []


def test_compose_v1_is_refused_by_name(stack_home: StackHome, tmp_path: Path) -> None:
    result = stack_home.cli("start", "--platform", "cpu", env=no_compose_env(tmp_path, v1=True))

    assert result.code == 4, result.stderr
    assert "docker-compose 1.29.2 is Compose v1" in result.stderr
    assert "Hint: Install Docker Compose v2" in result.stderr
    assert stack_home.containers() == []


# --- the proxy with no extension enabled ------------------------------------------


def test_proxy_with_no_extension_enabled_gets_a_valid_config_and_starts(stack_running: StackHome) -> None:
    home = stack_running
    assert json.loads((home.path / ".ollama-stack.json").read_text())["enabled_extensions"] == []

    on_disk = json.loads((home.path / "mcpo" / "config.json").read_text())
    [proxy] = [c for c in home.containers() if c.labels["com.docker.compose.service"] == "mcp_proxy"]
    code, mounted = proxy.exec_run(["cat", "/app/config/config.json"])

    # mcpo exits on an empty `mcpServers`: with no extension it gets only the built-in server.
    assert on_disk == {
        "mcpServers": {"ollama-stack": {"command": "python", "args": ["/app/config/ollama_stack_server.py"]}}
    }
    assert code == 0 and json.loads(mounted) == on_disk  # what mcpo reads is that file
    code, source = proxy.exec_run(["cat", "/app/config/ollama_stack_server.py"])
    assert code == 0 and b"FastMCP" in source  # the server it names is there too
    assert proxy.status == "running"
    health = {s["name"]: s["health"] for s in home.cli("status", "--json").json()["services"]}
    assert health["mcp_proxy"] == "healthy"
