"""The status table's short uptimes."""

from __future__ import annotations

import pytest

from ollama_stack_cli.commands.status import short_uptime


@pytest.mark.parametrize(
    ("docker", "short"),
    [
        ("Less than a second", "<1s"),
        ("3 seconds", "3s"),
        ("About a minute", "1m"),
        ("12 minutes", "12m"),
        ("About an hour", "1h"),
        ("5 hours", "5h"),
        ("2 days", "2d"),
        ("3 weeks", "3w"),
        ("4 months", "4mo"),
        ("2 years", "2y"),
        (None, "-"),
        ("something new", "something new"),
    ],
)
def test_short_uptime(docker: str | None, short: str) -> None:
    assert short_uptime(docker) == short
