"""The command surface: help, version, usage errors, --json on read commands."""

from __future__ import annotations

import json
import subprocess
import sys

import typer

from ollama_stack_cli import __version__
from ollama_stack_cli.main import app

READ_COMMANDS = {"status", "check", "extensions list", "extensions info"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ollama_stack_cli.main", *args], capture_output=True, text=True, timeout=60
    )


def test_version_and_help() -> None:
    assert run("--version").stdout.strip() == f"ollama-stack {__version__}"
    help_text = run("--help").stdout
    listed = {line.split()[1] for line in help_text.splitlines() if line.startswith("│ ") and len(line.split()) > 2}
    expected = {"start", "stop", "restart", "status", "logs", "check", "update", "uninstall", "extensions"}
    assert expected <= listed, listed
    ext_help = run("extensions", "--help").stdout
    ext_listed = {line.split()[1] for line in ext_help.splitlines() if line.startswith("│ ") and len(line.split()) > 2}
    assert {"list", "info", "enable", "disable", "start", "stop", "restart"} <= ext_listed, ext_listed


def test_usage_error_is_exit_2_and_json_when_asked() -> None:
    plain = run("status", "--bogus")
    assert plain.returncode == 2 and "No such option" in plain.stderr
    as_json = run("status", "--json", "--bogus")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["error"]["code"] == "usage"


def test_unknown_platform_is_refused() -> None:
    result = run("start", "--platform", "gpu")
    assert result.returncode == 2 and "Unknown platform 'gpu'" in result.stderr


def _walk(command: object, path: str = "") -> dict[str, object]:
    found = {path.strip(): command}
    for name, sub in getattr(command, "commands", {}).items():
        found.update(_walk(sub, f"{path} {name}"))
    return found


def test_every_read_command_offers_json() -> None:
    """Walk the whole command tree: a read command without --json fails here."""
    tree = _walk(typer.main.get_command(app))
    leaves = {path for path, cmd in tree.items() if path and not getattr(cmd, "commands", None)}
    assert READ_COMMANDS <= leaves
    without = [
        path
        for path in sorted(leaves)
        if "--json" not in [opt for p in tree[path].params for opt in getattr(p, "opts", [])]  # type: ignore[attr-defined]
    ]
    assert without == ["logs"], without  # logs streams text by nature


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


def test_help_shows_no_value_for_flags() -> None:
    for args in (("--help",), ("status", "--help"), ("start", "--help"), ("extensions", "enable", "--help")):
        text = run(*args).stdout
        assert "--json" in text or "--verbose" in text, text
        assert "<bool>" not in text, (args, text)


def test_only_the_invoked_command_is_built() -> None:
    from ollama_stack_cli.main import app_for

    def names(target: typer.Typer) -> set[str]:
        return set(getattr(typer.main.get_command(target), "commands", {}))

    assert names(app_for(["--home", "/h", "-q", "start", "--platform", "cpu"])) == {"start"}
    assert names(app_for(["--lock-timeout=3", "models", "list"])) == {"models"}
    everything = names(app)
    for args in (["--help"], [], ["--version"], ["strat"], ["-h", "start"]):
        assert names(app_for(args)) == everything, args


def test_plain_option_values_skip_pydantic_and_the_rest_read_as_typer_words_them() -> None:
    from typer.models import OptionInfo

    from ollama_stack_cli.typer_patches import plain_value

    bounded = OptionInfo(min=1)
    assert plain_value(float, bounded, "180") == 180.0 and isinstance(plain_value(float, bounded, "180"), float)
    assert plain_value(float, bounded, "2.5") == 2.5
    assert plain_value(float, bounded, 600.0) == 600.0
    assert plain_value(int, OptionInfo(), "7") == 7
    assert plain_value(str, OptionInfo(), "cpu") == "cpu"
    assert plain_value(bool, OptionInfo(), False) is False
    # Left to typer's own coercion: out of bounds, not plain digits, another type.
    for annotation, value in ((float, "0.5"), (float, "1e3"), (float, " 5"), (float, "inf"), (float, True)):
        assert plain_value(annotation, bounded, value) is None, value
    assert plain_value(str, OptionInfo(), b"cpu") is None
    assert plain_value(bool, OptionInfo(), "yes") is None

    bad = run("start", "--timeout", "abc")
    assert bad.returncode == 2 and "Invalid value for '--timeout'" in bad.stderr and "valid number" in bad.stderr
    low = run("start", "--timeout", "0.5")
    assert low.returncode == 2 and "greater than or equal to 1" in low.stderr
