"""Home resolution, state and .env files: pure file logic on tmp_path."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ollama_stack_cli import config
from ollama_stack_cli.errors import StackError
from ollama_stack_cli.schemas import StackState


def test_home_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_STACK_HOME", str(tmp_path / "from-env"))
    assert config.resolve_home(str(tmp_path / "flag")) == tmp_path / "flag"
    assert config.resolve_home(None) == tmp_path / "from-env"
    monkeypatch.delenv("OLLAMA_STACK_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user" / ".config"))
    assert config.resolve_home(None) == tmp_path / "user" / ".config" / "ollama-stack"


def test_first_env_is_private_and_has_every_key_and_two_secrets(isolated_home: Path) -> None:
    env = config.ensure_env(isolated_home)

    assert stat.S_IMODE(os.stat(isolated_home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(isolated_home / ".env").st_mode) == 0o600
    text = (isolated_home / ".env").read_text()
    for key in (
        "PROJECT_NAME",
        "OLLAMA_IMAGE",
        "WEBUI_IMAGE",
        "MCP_PROXY_IMAGE",
        "OLLAMA_PORT",
        "WEBUI_PORT",
        "MCP_PROXY_PORT",
        "BIND_ADDRESS",
        "WEBUI_SECRET_KEY",
        "MCP_PROXY_API_KEY",
    ):
        assert f"\n{key}=" in text
    assert env.PROJECT_NAME == "ollama-stack" and env.BIND_ADDRESS == "127.0.0.1"
    assert len(env.WEBUI_SECRET_KEY) >= 40 and env.WEBUI_SECRET_KEY != env.MCP_PROXY_API_KEY


def test_secrets_are_kept_and_user_lines_survive(isolated_home: Path) -> None:
    isolated_home.mkdir()
    (isolated_home / ".env").write_text("# mine\nexport MY_TOKEN=abc\nWEBUI_PORT=9090\nMCP_PROXY_API_KEY=\n")

    first = config.ensure_env(isolated_home)
    second = config.ensure_env(isolated_home)

    assert first == second
    text = (isolated_home / ".env").read_text()
    assert text.startswith("# mine\nexport MY_TOKEN=abc\nWEBUI_PORT=9090\n")
    assert text.count("MCP_PROXY_API_KEY=") == 1 and first.MCP_PROXY_API_KEY
    assert first.WEBUI_PORT == 9090
    assert config.read_env_values(isolated_home)["MY_TOKEN"] == "abc"


def test_read_env_creates_nothing(isolated_home: Path) -> None:
    assert config.read_env(isolated_home).PROJECT_NAME == "ollama-stack"
    assert config.read_state(isolated_home) == StackState()
    assert not isolated_home.exists()


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("OLLAMA_PORT=0", "OLLAMA_PORT"),
        ("BIND_ADDRESS=localhost", "BIND_ADDRESS"),
        ("PROJECT_NAME=Has Space", "PROJECT_NAME"),
        ("OLLAMA_IMAGE=-v/:/host", "OLLAMA_IMAGE"),
        ("WEBUI_SECRET_KEY=a$b", "WEBUI_SECRET_KEY"),
        ('OTHER="multi\nline"', "OTHER"),
    ],
)
def test_invalid_env_names_key_and_file_and_hides_secrets(isolated_home: Path, line: str, key: str) -> None:
    isolated_home.mkdir()
    (isolated_home / ".env").write_text(line + "\n")

    with pytest.raises(StackError) as info:
        config.ensure_env(isolated_home)

    assert key in info.value.message and str(isolated_home / ".env") in info.value.message
    assert "a$b" not in info.value.message
    assert (isolated_home / ".env").read_text() == line + "\n"


def test_corrupt_state_is_refused_and_left_alone(isolated_home: Path) -> None:
    isolated_home.mkdir()
    path = isolated_home / ".ollama-stack.json"
    path.write_text("{nope")
    with pytest.raises(StackError, match="not valid JSON"):
        config.read_state(isolated_home)
    path.write_text('{"schema_version": 1, "platform": "tpu"}')
    with pytest.raises(StackError, match="platform"):
        config.set_platform(isolated_home, "cpu")
    assert path.read_text() == '{"schema_version": 1, "platform": "tpu"}'


def test_state_write_is_atomic_and_keeps_unknown_keys(isolated_home: Path) -> None:
    isolated_home.mkdir()
    (isolated_home / ".ollama-stack.json").write_text('{"schema_version": 1, "future_key": [1, 2]}')

    config.set_platform(isolated_home, "nvidia")

    data = json.loads((isolated_home / ".ollama-stack.json").read_text())
    assert data["platform"] == "nvidia" and data["future_key"] == [1, 2]
    assert sorted(p.name for p in isolated_home.iterdir()) == [".ollama-stack.json"]


def test_compose_files_per_platform_and_override(isolated_home: Path) -> None:
    isolated_home.mkdir()
    assert [p.name for p in config.compose_files(isolated_home, "cpu")] == ["docker-compose.yml"]
    assert [p.name for p in config.compose_files(isolated_home, "apple")][-1] == "docker-compose.apple.yml"
    (isolated_home / "docker-compose.override.yml").write_text("services: {}\n")
    names = [p.name for p in config.compose_files(isolated_home, "nvidia")]
    assert names == ["docker-compose.yml", "docker-compose.nvidia.yml", "docker-compose.override.yml"]
    assert all(p.is_file() for p in config.compose_files(isolated_home, "nvidia"))


def test_proxy_config_never_has_empty_servers(isolated_home: Path) -> None:
    path = config.write_proxy_config(isolated_home, {})
    servers = json.loads(path.read_text())["mcpServers"]
    assert list(servers) == ["ollama-stack"]
    assert (isolated_home / "mcpo" / config.BUILTIN_SERVER_FILE).is_file()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('WEBUI_PORT=9000\nGITHUB_TOKEN="ghp_secretvalue\nOTHER=1\n', "Line 2"),
        ("MY-KEY=x\n", "Invalid key 'MY-KEY'"),
    ],
)
def test_env_lines_compose_would_reject_are_refused_without_echoing(
    isolated_home: Path, text: str, expected: str
) -> None:
    isolated_home.mkdir()
    (isolated_home / ".env").write_text(text)
    with pytest.raises(StackError) as info:
        config.read_env(isolated_home)
    assert expected in info.value.message and "ghp_secretvalue" not in info.value.message


def test_env_rewrite_keeps_lines_with_unicode_separators(isolated_home: Path) -> None:
    isolated_home.mkdir()
    (isolated_home / ".env").write_text("MY_NOTE=a\u2028b\n")
    config.ensure_env(isolated_home)
    assert config.read_env_values(isolated_home)["MY_NOTE"] == "a\u2028b"


def test_a_new_home_starts_from_the_shipped_default_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tmp_path / "resources"
    shipped.mkdir()
    (shipped / ".ollama-stack.json").write_text('{"schema_version": 1, "enabled_extensions": ["time"]}')
    monkeypatch.setattr(config, "resource_dir", lambda: shipped)

    state = config.read_state(tmp_path / "home")

    assert state.enabled_extensions == ["time"]
    assert not (tmp_path / "home").exists()  # reading creates nothing


def test_the_repo_default_state_is_the_empty_one() -> None:
    assert config.default_state() == StackState()


def test_atomic_write_keeps_the_old_file_when_the_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from ollama_stack_cli import config

    target = tmp_path / ".env"
    target.write_text("OLD=1\n")

    def failing_replace(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError):
        config.atomic_write(target, "NEW=2\n")

    assert target.read_text() == "OLD=1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]  # no temp file left


def test_an_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    assert config.write_if_changed(target, "{}\n") is True
    inode = target.stat().st_ino
    assert config.write_if_changed(target, "{}\n") is False
    assert target.stat().st_ino == inode  # an atomic rewrite would have replaced the file
    assert config.write_if_changed(target, "{}\n", mode=0o644) is True  # a new mode is a change
    assert config.write_if_changed(target, '{"a": 1}\n', mode=0o644) is True
    assert target.read_text() == '{"a": 1}\n'
