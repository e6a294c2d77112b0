"""The command surface: help, version, usage errors, --json on read commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer

from ollama_stack_cli import __version__
from ollama_stack_cli.main import app

READ_COMMANDS = {"status"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ollama_stack_cli.main", *args], capture_output=True, text=True, timeout=60
    )


def test_version_and_help() -> None:
    assert run("--version").stdout.strip() == f"ollama-stack {__version__}"
    help_text = run("--help").stdout
    for command in ("start", "stop", "restart", "status"):
        assert command in help_text


def test_usage_error_is_exit_2_and_json_when_asked() -> None:
    plain = run("status", "--bogus")
    assert plain.returncode == 2 and "No such option" in plain.stderr
    as_json = run("status", "--json", "--bogus")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["error"]["code"] == "usage"


def test_unknown_platform_is_refused() -> None:
    result = run("start", "--platform", "gpu")
    assert result.returncode == 1 and "Unknown platform 'gpu'" in result.stderr


@pytest.mark.parametrize("name", sorted(READ_COMMANDS | {"start", "stop", "restart"}))
def test_commands_offer_json(name: str) -> None:
    command = typer.main.get_command(app)
    sub = command.commands[name]  # type: ignore[attr-defined]
    assert "--json" in [opt for param in sub.params for opt in getattr(param, "opts", [])]


def test_global_options_may_follow_the_command() -> None:
    from ollama_stack_cli.main import hoist_global_options

    assert hoist_global_options(["status", "--home", "/h", "-q", "--json"]) == [
        "--home",
        "/h",
        "-q",
        "status",
        "--json",
    ]
    assert hoist_global_options(["logs", "webui", "--lock-timeout=3"]) == ["--lock-timeout=3", "logs", "webui"]
    assert hoist_global_options(["logs", "--", "-q"]) == ["logs", "--", "-q"]
