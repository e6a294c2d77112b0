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
