"""The real mcpo from PyPI, on the host, serving the config the CLI generates.

mcp-server-time (a real stdio MCP server) is a user extension named by path; the
test checks that its tools appear in mcpo's OpenAPI document, that the key guards
them, and that `extensions enable` reaches a running mcpo through hot reload.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import REPO, StackHome, free_ports

KEY = "test-key-not-a-secret"


def end(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process this test started: politely, then for sure."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def mcp_venvs() -> Path:
    """The venvs of tests/tools/setup_mcp_venvs.sh (.ci/run builds them once)."""
    root = Path(os.environ.get("OLLAMA_STACK_TEST_MCP_VENVS", REPO / ".mcp-venvs"))
    result = subprocess.run(
        ["bash", str(REPO / "tests/tools/setup_mcp_venvs.sh"), str(root)], capture_output=True, text=True
    )
    if result.returncode != 0:
        pytest.fail(f"could not set up mcpo and mcp-server-time: {result.stderr[-2000:]}")
    return root


def add_time_extension(home: StackHome, name: str, venvs: Path) -> None:
    folder = home.path / "extensions" / name
    folder.mkdir(parents=True)
    manifest = {
        "name": name,
        "description": "mcp-server-time on the host",
        "mcp": {
            "transport": "stdio",
            "command": str(venvs / "time" / "bin" / "mcp-server-time"),
            "args": ["--local-timezone=UTC"],
        },
    }
    (folder / "mcp-config.json").write_text(json.dumps(manifest))


def request(url: str, body: dict[str, Any] | None = None, key: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


@pytest.fixture
def mcpo(stack_home: StackHome, mcp_venvs: Path) -> Iterator[tuple[StackHome, str, Path]]:
    add_time_extension(stack_home, "hosttime", mcp_venvs)
    enabled = stack_home.cli("extensions", "enable", "hosttime")
    assert enabled.code == 0, enabled.stderr
    config = stack_home.path / "mcpo" / "config.json"
    (port,) = free_ports(1)
    log = stack_home.path / "mcpo.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(mcp_venvs / "mcpo" / "bin" / "mcpo"), "--host", "127.0.0.1", "--port", str(port),
             "--api-key", KEY, "--config", str(config), "--hot-reload"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while request(f"{base}/openapi.json")[0] != 200:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield stack_home, base, mcp_venvs
    finally:
        end(proc)


def test_generated_config_serves_the_tools_behind_the_key(mcpo: tuple[StackHome, str, Path]) -> None:
    _, base, _ = mcpo

    status, document = request(f"{base}/hosttime/openapi.json")

    assert status == 200
    assert {"/get_current_time", "/convert_time"} <= set(document["paths"])
    assert request(f"{base}/hosttime/get_current_time", {"timezone": "UTC"})[0] == 401
    status, answer = request(f"{base}/hosttime/get_current_time", {"timezone": "UTC"}, key=KEY)
    assert status == 200 and answer["timezone"] == "UTC"


def test_enable_reaches_a_running_proxy_by_hot_reload(mcpo: tuple[StackHome, str, Path]) -> None:
    home, base, venvs = mcpo
    add_time_extension(home, "latertime", venvs)

    assert home.cli("extensions", "enable", "latertime").code == 0

    deadline = time.monotonic() + 30
    status = 0
    while status != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        status, answer = request(f"{base}/latertime/get_current_time", {"timezone": "UTC"}, key=KEY)
    assert status == 200, "mcpo never served the newly enabled extension"
    assert answer["timezone"] == "UTC"
    servers = json.loads((home.path / "mcpo" / "config.json").read_text())["mcpServers"]
    assert sorted(servers) == ["hosttime", "latertime"]


def test_with_no_extension_enabled_mcpo_starts_on_the_built_in_server(stack_home: StackHome, mcp_venvs: Path) -> None:
    """The config `start` writes when nothing is enabled, run by the real mcpo (mcpo exits on an empty one)."""
    assert stack_home.cli("start", "--platform", "cpu", "--timeout", "60").code == 0
    folder = stack_home.path / "mcpo"
    servers = json.loads((folder / "config.json").read_text())["mcpServers"]
    assert list(servers) == ["ollama-stack"]
    # The container's paths, mapped to the host: /app/config is the home's mcpo folder, `python` the venv's.
    entry = servers["ollama-stack"]
    host_config = stack_home.path / "mcpo-host.json"
    host_config.write_text(
        json.dumps(
            {
                "mcpServers": {
                    "ollama-stack": {
                        "command": str(mcp_venvs / "mcpo" / "bin" / entry["command"]),
                        "args": [arg.replace("/app/config", str(folder)) for arg in entry["args"]],
                    }
                }
            }
        )
    )
    (port,) = free_ports(1)
    log = stack_home.path / "mcpo.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [str(mcp_venvs / "mcpo" / "bin" / "mcpo"), "--host", "127.0.0.1", "--port", str(port),
             "--api-key", KEY, "--config", str(host_config)],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        status, answer = 0, None
        while status != 200:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
            status, answer = request(f"{base}/ollama-stack/stack_info", {}, key=KEY)
        assert "extensions enable" in json.dumps(answer)
    finally:
        end(proc)
