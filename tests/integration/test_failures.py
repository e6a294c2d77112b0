"""Bad input and a hostile environment: one clear line, the documented exit code, nothing lost."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import ENTRY_POINT, STUB_IMAGE, StackHome


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def test_taken_port_fails_before_anything_is_created(stack_home: StackHome) -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", stack_home.ports["webui"]))
        listener.listen()

        result = stack_home.cli("start", "--platform", "cpu")
        as_json = stack_home.cli("start", "--platform", "cpu", "--json")

    assert result.code == 1
    line = _one_error_line(result.stderr)
    assert str(stack_home.ports["webui"]) in line and "WEBUI_PORT" in line
    assert as_json.code == 1 and as_json.json()["error"]["code"] == "port_in_use"
    assert stack_home.containers() == [] and stack_home.networks() == []


def test_engine_down_is_exit_4(stack_home: StackHome) -> None:
    env = {"DOCKER_HOST": f"unix://{stack_home.path}/no-such.sock"}
    for args in (("start",), ("stop",), ("status",)):
        result = stack_home.cli(*args, env=env)
        assert result.code == 4, (args, result.stderr)
        assert "Docker engine" in _one_error_line(result.stderr)
    doc = stack_home.cli("status", "--json", env=env)
    assert doc.code == 4 and doc.json()["error"]["code"] == "docker_unavailable"


@pytest.mark.parametrize(
    "content",
    ['{"schema_version": 1, "platform": ', '{"schema_version": 99}', '{"platform": "gpu"}', "[]"],
)
def test_corrupt_state_file_is_reported_and_kept(stack_home: StackHome, content: str) -> None:
    state = stack_home.path / ".ollama-stack.json"
    state.write_text(content)

    for args in (("start", "--platform", "cpu"), ("status",), ("stop",)):
        result = stack_home.cli(*args)
        assert result.code == 1, (args, result.stderr)
        assert str(state) in _one_error_line(result.stderr)

    assert state.read_text() == content
    assert stack_home.containers() == []


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("OLLAMA_PORT=99999", "OLLAMA_PORT"),
        ("WEBUI_PORT=http", "WEBUI_PORT"),
        ("BIND_ADDRESS=127.0.0.1 -p 9:9", "BIND_ADDRESS"),
        ("PROJECT_NAME=../../etc", "PROJECT_NAME"),
        ('WEBUI_IMAGE="img --privileged"', "WEBUI_IMAGE"),
        ('MCP_PROXY_API_KEY="a\nb"', "MCP_PROXY_API_KEY"),
    ],
)
def test_hostile_env_values_are_refused_by_key(stack_home: StackHome, line: str, key: str) -> None:
    env_file = stack_home.path / ".env"
    env_file.write_text(env_file.read_text() + line + "\n")
    before = env_file.read_text()

    result = stack_home.cli("start", "--platform", "cpu")

    assert result.code == 1
    error = _one_error_line(result.stderr)
    assert key in error and str(env_file) in error
    assert env_file.read_text() == before
    assert stack_home.containers() == []


def test_health_timeout_names_the_service_and_shows_its_logs(stack_home: StackHome) -> None:
    (stack_home.path / "docker-compose.override.yml").write_text(
        "services:\n  webui:\n    environment:\n      STUB_FAIL_HEALTH: '1'\n"
    )

    # Started without waiting, then ollama and the proxy seen answering: the short --timeout below
    # can only run out on webui, however slow this machine is.
    assert stack_home.cli("start", "--platform", "cpu", "--no-wait").code == 0
    wait_for_health(stack_home, {"ollama": "healthy", "mcp_proxy": "healthy"})

    result = stack_home.cli("start", "--platform", "cpu", "--timeout", "3")

    assert result.code == 1
    line = _one_error_line(result.stderr)
    assert "webui" in line and str(stack_home.ports["webui"]) in line
    assert "Last log lines of webui" in result.stderr
    # A slow service is not a failed start: the stack stays for the user to inspect.
    assert {c.status for c in stack_home.containers()} == {"running"}
    status = stack_home.cli("status", "--json")
    services = {s["name"]: s["health"] for s in status.json()["services"]}
    assert services["webui"] in ("unhealthy", "starting") and services["ollama"] == "healthy"


def wait_for_health(home: StackHome, wanted: dict[str, str]) -> None:
    """Poll `status --json` until the services named are in the states given (a minute at most)."""
    deadline = time.monotonic() + 60
    while True:
        doc = home.cli("status", "--json").json()
        health = {s["name"]: s["health"] for s in doc["services"]}
        if all(health.get(name) == state for name, state in wanted.items()):
            return
        assert time.monotonic() < deadline, health
        time.sleep(0.2)


def test_service_that_exits_fails_fast(stack_home: StackHome) -> None:
    (stack_home.path / "docker-compose.override.yml").write_text(
        "services:\n  ollama:\n    environment:\n      STUB_EXIT: '1'\n"
    )

    result = stack_home.cli("start", "--platform", "cpu", "--timeout", "120")

    assert result.code == 1
    assert "ollama stopped while starting" in _one_error_line(result.stderr)


def test_gpu_the_engine_cannot_use_is_rolled_back(stack_home: StackHome, docker_client) -> None:
    volume = docker_client.volumes.create(
        f"{stack_home.project}_ollama_models", labels={"ollama-stack.installation": stack_home.project}
    )

    result = stack_home.cli("start", "--platform", "nvidia")

    assert result.code == 1
    assert "NVIDIA" in _one_error_line(result.stderr)
    assert "Rolled back" in result.stderr
    assert stack_home.containers() == [] and stack_home.networks() == []
    # The volume that was there is kept; the one this failed start created is not left behind.
    assert [v.name for v in stack_home.volumes()] == [volume.name]
    assert not (stack_home.path / ".ollama-stack.json").exists()


def test_failed_start_over_a_running_stack_brings_it_back(stack_running: StackHome) -> None:
    result = stack_running.cli("start", "--platform", "nvidia")

    assert result.code == 1
    assert "NVIDIA" in _one_error_line(result.stderr)
    assert "brought the previous stack back up" in result.stderr
    status = stack_running.cli("status", "--json")
    assert status.code == 0, status.stderr
    data = status.json()
    assert data["platform"] == "cpu" and data["healthy"] is True
    assert {c.status for c in stack_running.containers()} == {"running"} and len(stack_running.containers()) == 3


def test_bind_address_of_another_machine_is_one_clear_error(stack_home: StackHome) -> None:
    env_file = stack_home.path / ".env"
    env_file.write_text(env_file.read_text() + "BIND_ADDRESS=192.0.2.10\n")  # TEST-NET-1: never on this host

    result = stack_home.cli("start", "--platform", "cpu")

    assert result.code == 1
    assert "not an address of this machine" in _one_error_line(result.stderr)
    assert stack_home.containers() == []


def test_an_unknown_platform_is_refused_before_anything_is_created(tmp_path: Path, docker_client: object) -> None:
    home = tmp_path / "never-made"
    env = {k: v for k, v in os.environ.items() if k != "OLLAMA_STACK_HOME"}

    result = subprocess.run(
        [*ENTRY_POINT, "--home", str(home), "start", "--platform", "gpu"],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )

    assert result.returncode == 2, result.stderr
    assert "Unknown platform 'gpu'" in result.stderr and "cpu, nvidia, rocm, apple" in result.stderr
    assert not home.exists()  # no home, no lock, no journal


def test_rocm_on_an_engine_without_amd_devices_fails_clearly_and_rolls_back(stack_home: StackHome) -> None:
    if Path("/dev/kfd").exists():
        pytest.fail("this test needs an engine host without /dev/kfd")
    with (stack_home.path / ".env").open("a") as env:
        env.write(f"OLLAMA_ROCM_IMAGE={STUB_IMAGE}\nHSA_OVERRIDE_GFX_VERSION=10.3.0\n")

    result = stack_home.cli("start", "--platform", "rocm", "--json")

    assert result.code == 1, result.stderr
    error = result.json()["error"]
    assert error["code"] == "gpu_unavailable" and "/dev/kfd" in error["message"], error
    assert "--platform rocm was given but no /dev/kfd" in result.stderr
    assert stack_home.containers() == [] and stack_home.networks() == []
