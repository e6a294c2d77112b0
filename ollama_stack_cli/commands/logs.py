"""`logs [TARGET]`: the core, one service, or one extension, through `docker compose logs`."""

from __future__ import annotations

import difflib
import re
from pathlib import Path

from .. import extensions, stack
from ..docker_client import Engine, find_compose
from ..errors import ExitCode, StackError


def run(home: Path, target: str | None, follow: bool, tail: str, since: str | None) -> int:
    ctx = stack.load(home)
    platform = ctx.state.platform or "cpu"
    command = find_compose()
    args = ["logs", "--tail", tail]
    if follow:
        args.append("--follow")
    if since:
        args += ["--since", since]

    services = [s.name for s in stack.expected_services(platform)]
    if target is None or target in services:
        ours = [c for c in Engine().containers() if c.project == ctx.project and c.installation == ctx.project]
        if not [c for c in ours if target is None or c.service == target]:
            _not_running(target or ctx.project)
        compose = stack.compose_for(ctx, platform, command)
        return compose.stream(*args, *([target] if target else []))
    found = extensions.discover(home)
    if target in found and found[target].has_compose:
        if not stack.extension_containers(ctx, Engine(), target):
            _not_running(f"Extension {target}")
        compose = stack.extension_compose(ctx, found[target], platform, command, for_up=False)
        return compose.stream(*args)
    if target in found:
        raise StackError(
            f"Extension {target!r} has no containers of its own; it runs inside the proxy.",
            "See its output with: ollama-stack logs mcp_proxy",
            code=ExitCode.USAGE,
            slug="unknown_target",
        )
    valid = services + [name for name, ext in found.items() if ext.has_compose]
    close = difflib.get_close_matches(target, valid, n=1)
    raise StackError(
        f"Unknown logs target {target!r}.",
        (f"Did you mean {close[0]!r}? " if close else "") + f"Valid targets: {', '.join(valid)}.",
        code=ExitCode.USAGE,
        slug="unknown_target",
    )


def _not_running(what: str) -> None:
    raise StackError(
        f"{what} is not running, so there are no logs to show.",
        "Start it with `ollama-stack start` (extensions: `ollama-stack extensions start NAME`).",
        code=ExitCode.NOT_RUNNING,
        slug="not_running",
    )


# What `docker logs --since` accepts: a duration (10m, 1h30m, 1.5h), a Unix time, or an
# RFC 3339 date or date-time, optionally with a zone.
_SINCE = re.compile(
    r"^(?:(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+"
    r"|\d+(?:\.\d+)?"
    r"|\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:\d{2})?)$"
)


def validate_since(value: str | None) -> str | None:
    if value is not None and not _SINCE.match(value):
        raise StackError(
            f"Invalid --since {value!r}.",
            "Use a duration like 10m or 1h30m, or a time like 2026-01-02T13:00:00.",
            code=ExitCode.USAGE,
            slug="usage",
        )
    return value


def validate_tail(value: str) -> str:
    if value != "all" and not (value.isdigit()):
        raise StackError(f"Invalid --tail {value!r}.", "Use a number of lines or 'all'.", code=ExitCode.USAGE)
    return value
