"""What a new user hit (issue 15, item 1): each test failed before its fix."""

from __future__ import annotations

import re

import pytest

from .conftest import StackHome
from .tty import run_tty

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _screen(text: str) -> list[str]:
    return [ANSI.sub("", line) for line in text.splitlines()]


def test_status_table_is_readable_at_80_columns(stack_running: StackHome) -> None:
    result = run_tty(stack_running, "status", columns=80)

    assert result.code == 0, result.stdout
    lines = _screen(result.stdout)
    # Warnings (e.g. about a teammate's installation on this engine) are soft-wrapped by the terminal.
    table = [line for line in lines if not line.startswith("Warning:")]
    assert all(len(line) <= 80 for line in table), "\n".join(lines)
    for service in ("ollama", "webui", "mcp_proxy"):
        [row] = [line for line in lines if line.split()[:1] == [service]]
        words = row.split()
        assert words[1] == "running" and words[2] == "healthy", row
        assert f"http://127.0.0.1:{stack_running.ports[service]}" in row, row
    assert "…" not in result.stdout


def _cli_into_closed_pipe(home: StackHome, *args: str) -> tuple[int, str]:
    """Like `ollama-stack ARGS | head -0`: the reader is gone before the first write."""
    import os
    import subprocess

    from .conftest import ENTRY_POINT

    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if k != "OLLAMA_STACK_HOME"}
    proc = subprocess.run(
        [*ENTRY_POINT, "--home", str(home.path), *args],
        stdin=subprocess.DEVNULL,
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=120,
    )
    os.close(write_end)
    return proc.returncode, proc.stderr


def test_a_closed_pipe_is_not_an_error(stack_running: StackHome) -> None:
    for args in (("status",), ("status", "--json"), ("extensions", "list")):
        code, stderr = _cli_into_closed_pipe(stack_running, *args)
        assert code == 0, (args, stderr)
        assert "Error" not in stderr and "Traceback" not in stderr, (args, stderr)

    stack_running.cli("stop")
    code, stderr = _cli_into_closed_pipe(stack_running, "status")
    assert code == 3 and "Error" not in stderr, stderr


def _one_error_line(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def test_logs_of_a_stopped_stack_say_so_and_exit_3(stack_home: StackHome) -> None:
    for args in (("logs",), ("logs", "webui")):
        result = stack_home.cli(*args)
        assert result.code == 3, (args, result.stderr)
        assert "not running" in _one_error_line(result.stderr)
        assert "ollama-stack start" in result.stderr


def test_logs_since_garbage_is_a_usage_error(stack_running: StackHome) -> None:
    bad = stack_running.cli("logs", "--since", "garbage")
    good = stack_running.cli("logs", "--since", "10m", "--tail", "5")
    dated = stack_running.cli("logs", "webui", "--since", "2026-01-02T13:00:00")

    assert bad.code == 2, bad.stderr
    assert "--since" in _one_error_line(bad.stderr) and "10m" in bad.stderr
    assert good.code == 0 and dated.code == 0, good.stderr + dated.stderr


def test_unknown_names_are_usage_errors_listing_the_valid_ones(stack_home: StackHome) -> None:
    for args in (
        ("logs", "nope"),
        ("extensions", "info", "nope"),
        ("extensions", "enable", "nope"),
        ("extensions", "disable", "nope"),
        ("extensions", "start", "nope"),
        ("extensions", "stop", "nope"),
        ("extensions", "restart", "nope"),
        ("extensions", "info", "Bad/Name"),
    ):
        result = stack_home.cli(*args)
        assert result.code == 2, (args, result.stderr)
        line = _one_error_line(result.stderr)
        assert "nope" in line or "Bad/Name" in line, (args, line)
        valid = ("webui", "mcp_proxy") if args[0] == "logs" else ("time", "fetch")
        if "nope" in args:
            assert all(name in result.stderr for name in valid), (args, result.stderr)
        as_json = stack_home.cli(*args, "--json") if args[0] == "extensions" else None
        if as_json is not None:
            assert as_json.code == 2 and as_json.json()["error"]["exit_code"] == 2
    assert stack_home.containers() == []


def test_two_services_on_one_port_are_refused_naming_both_keys(stack_home: StackHome) -> None:
    env_file = stack_home.path / ".env"
    env_file.write_text(env_file.read_text() + f"WEBUI_PORT={stack_home.ports['ollama']}\n")

    check = stack_home.cli("check", "--json")
    start = stack_home.cli("start", "--platform", "cpu")

    assert check.code == 1
    failing = [c for c in check.json()["checks"] if c["status"] == "fail"]
    assert failing and all("OLLAMA_PORT" in c["detail"] and "WEBUI_PORT" in c["detail"] for c in failing), failing
    assert start.code == 1, start.stderr
    line = _one_error_line(start.stderr)
    assert "OLLAMA_PORT" in line and "WEBUI_PORT" in line and str(stack_home.ports["ollama"]) in line
    assert stack_home.containers() == [] and stack_home.networks() == [] and stack_home.volumes() == []


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_files_saved_with_a_utf8_bom_are_read_by_every_reader(stack_home: StackHome, newline: str) -> None:
    """Notepad writes a BOM: .env, the state file and a user's mcp-config.json."""
    env_file = stack_home.path / ".env"
    lines = ["WEBUI_SECRET_KEY=", *env_file.read_text().splitlines()]  # start fills the first line's key
    env_file.write_bytes(b"\xef\xbb\xbf" + newline.join(lines).encode() + newline.encode())
    state = stack_home.path / ".ollama-stack.json"
    state.write_bytes(b"\xef\xbb\xbf" + b'{"schema_version": 1, "enabled_extensions": []}' + newline.encode())
    ext = stack_home.path / "extensions" / "mine"
    ext.mkdir(parents=True)
    manifest = '{"name": "mine", "mcp": {"transport": "stdio", "command": "true"}}'
    (ext / "mcp-config.json").write_bytes(b"\xef\xbb\xbf" + manifest.encode())

    for args in (("status", "--json"), ("check", "--json"), ("extensions", "list", "--json")):
        result = stack_home.cli(*args)
        assert "Error" not in result.stderr and result.code in (0, 3), (args, result.stdout, result.stderr)
    listed = {e["name"]: e for e in stack_home.cli("extensions", "list", "--json").json()["extensions"]}
    assert listed["mine"]["state"] != "invalid", listed["mine"]

    started = stack_home.cli("start", "--platform", "cpu", "--timeout", "60", "--json")
    assert started.code == 0, started.stderr
    assert started.json()["project"] == stack_home.project
    keys = [line.split("=", 1)[0].lstrip("\ufeff") for line in env_file.read_text().splitlines() if "=" in line]
    assert keys.count("WEBUI_SECRET_KEY") == 1 and keys.count("MCP_PROXY_API_KEY") == 1, keys
    assert stack_home.cli("extensions", "enable", "mine").code == 0
    assert stack_home.cli("stop").code == 0


def test_a_home_that_is_a_file_is_named_as_such(stack_home: StackHome) -> None:
    import shutil

    shutil.rmtree(stack_home.path)
    stack_home.path.write_text("not a folder\n")

    for args in (("status",), ("start", "--platform", "cpu"), ("extensions", "list"), ("logs",)):
        result = stack_home.cli(*args)
        assert result.code == 1, (args, result.stderr)
        line = _one_error_line(result.stderr)
        assert "not a directory" in line and str(stack_home.path) in line, (args, line)
        assert "permission" not in result.stderr.lower(), (args, result.stderr)
    check = stack_home.cli("check", "--json")
    assert check.code == 1
    home = next(c for c in check.json()["checks"] if c["name"] == "home")
    assert home["status"] == "fail" and "not a directory" in home["detail"], home
    assert stack_home.path.read_text() == "not a folder\n"


def test_a_failed_pull_at_a_terminal_says_what_failed(stack_home: StackHome) -> None:
    env_file = stack_home.path / ".env"
    env_file.write_text(env_file.read_text() + "OLLAMA_IMAGE=127.0.0.1:9/ostest-missing:1\n")

    result = run_tty(stack_home, "update", "--yes", columns=100)

    assert result.code == 1, result.stdout
    [line] = [ANSI.sub("", x) for x in result.stdout.splitlines() if "Error:" in x]
    assert "Pulling failed" in line and not line.rstrip().endswith(":"), line
    assert "Could not pull docker compose" not in line, line
    screen = ANSI.sub("", result.stdout)
    above = screen[: screen.index("Error: Pulling failed")]
    assert "Error" in above or "error" in above, screen  # compose's streamed messages say what failed


def test_state_file_from_a_newer_version_says_so(stack_home: StackHome) -> None:
    state = stack_home.path / ".ollama-stack.json"
    state.write_text('{"schema_version": 99}')

    result = stack_home.cli("status")

    assert result.code == 1
    line = _one_error_line(result.stderr)
    assert "newer version" in line and str(state) in line, line
    assert "Input should be" not in result.stderr
    assert state.read_text() == '{"schema_version": 99}'


def test_a_duplicate_env_key_is_a_warning_naming_both_lines(stack_home: StackHome) -> None:
    env_file = stack_home.path / ".env"
    lines = env_file.read_text().splitlines()
    first = next(i for i, line in enumerate(lines, 1) if line.startswith("WEBUI_PORT="))
    env_file.write_text("\n".join(lines) + "\nWEBUI_PORT=" + str(stack_home.ports["webui"]) + "\n")
    second = len(lines) + 1

    status = stack_home.cli("status", "--json")
    check = stack_home.cli("check", "--json")

    [warning] = [w for w in status.json()["warnings"] if "WEBUI_PORT" in w]
    assert f"lines {first} and {second}" in warning, warning
    env_check = next(c for c in check.json()["checks"] if c["name"] == "env-file")
    assert env_check["status"] == "warn" and f"lines {first} and {second}" in env_check["detail"], env_check


def test_quiet_status_still_prints_the_result(stack_running: StackHome) -> None:
    result = stack_running.cli("-q", "status")

    assert result.code == 0
    assert "webui" in result.stdout and "healthy" in result.stdout


def test_enable_messages_match_what_happens(stack_home: StackHome) -> None:
    first = stack_home.cli("extensions", "enable", "time")
    again = stack_home.cli("extensions", "enable", "time")

    assert first.code == 0 and again.code == 0, first.stderr + again.stderr
    assert "reloads" not in first.stderr and "when the stack starts" in first.stderr, first.stderr
    assert "already enabled" in again.stderr and "Enabled" not in again.stderr, again.stderr


def test_update_of_a_stopped_stack_does_not_claim_it_runs(stack_home: StackHome) -> None:
    result = stack_home.cli("update", "--yes")

    assert "keeps running" not in result.stderr, result.stderr


def test_answering_no_to_uninstall_remove_volumes_removes_nothing(stack_running: StackHome) -> None:
    before = sorted(c.id for c in stack_running.containers())
    volumes = sorted(v.name for v in stack_running.volumes())

    result = run_tty(stack_running, "uninstall", "--remove-volumes", answers=[("for good?", "n\r")])

    assert "Deleting volumes" not in result.stdout
    assert sorted(c.id for c in stack_running.containers()) == before, result.stdout
    assert sorted(v.name for v in stack_running.volumes()) == volumes
    assert result.code == 1 and "nothing was removed" in result.stdout.lower(), result.stdout


def test_start_warns_when_ports_are_exposed(stack_home: StackHome) -> None:
    env_file = stack_home.path / ".env"
    env_file.write_text(env_file.read_text() + "BIND_ADDRESS=0.0.0.0\n")

    result = stack_home.cli("start", "--platform", "cpu", "--timeout", "60")

    assert result.code == 0, result.stderr
    assert "Warning:" in result.stderr and "0.0.0.0" in result.stderr, result.stderr
