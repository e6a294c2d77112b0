"""`status` makes the same small number of Docker API calls whatever it has to report."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ollama_stack_cli import docker_client, stack
from ollama_stack_cli.commands import status

from .conftest import StackHome
from .test_extensions import add_extension


@pytest.fixture
def api_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Record every Engine API request while still sending it to the real engine."""
    calls: list[str] = []
    real = docker_client.Engine._request

    def counting(self: docker_client.Engine, method: str, path: str, *args: object, **kwargs: object) -> object:
        calls.append(f"{method} {path}")
        return real(self, method, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(docker_client.Engine, "_request", counting)
    yield calls


def write_stdio_extensions(home: Path, count: int) -> None:
    for i in range(count):
        folder = home / "extensions" / f"bulk{i:02d}"
        folder.mkdir(parents=True)
        manifest = {"name": folder.name, "mcp": {"transport": "stdio", "command": "x"}}
        (folder / "mcp-config.json").write_text(json.dumps(manifest))


def test_status_api_calls_do_not_grow_with_extensions(stack_running: StackHome, api_calls: list[str]) -> None:
    home = stack_running
    add_extension(home, "echo")
    assert home.cli("extensions", "enable", "echo").code == 0
    assert home.cli("extensions", "start", "echo").code == 0

    before = status.run(stack.load(home.path))
    with_none = list(api_calls)
    api_calls.clear()
    write_stdio_extensions(home.path, 20)
    state = json.loads((home.path / ".ollama-stack.json").read_text())
    state["enabled_extensions"] = sorted(["echo", *(f"bulk{i:02d}" for i in range(20))])
    (home.path / ".ollama-stack.json").write_text(json.dumps(state))
    after = status.run(stack.load(home.path))

    assert len(after.extensions) == len(before.extensions) + 20
    assert before.running and after.running
    assert with_none == ["GET /containers/json"]
    assert api_calls == with_none
