"""What a new user hit (issue 15, item 1): each test failed before its fix."""

from __future__ import annotations

import re

from .conftest import StackHome
from .tty import run_tty

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _screen(text: str) -> list[str]:
    return [ANSI.sub("", line) for line in text.splitlines()]


def test_status_table_is_readable_at_80_columns(stack_running: StackHome) -> None:
    result = run_tty(stack_running, "status", columns=80)

    assert result.code == 0, result.stdout
    lines = _screen(result.stdout)
    assert all(len(line) <= 80 for line in lines), "\n".join(lines)
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
