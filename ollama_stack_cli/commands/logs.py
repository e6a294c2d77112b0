"""`logs [TARGET]`: the core, one service, or one extension, through `docker compose logs`."""

from __future__ import annotations

import difflib
from pathlib import Path

from .. import extensions, stack
from ..docker_client import find_compose
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
        compose = stack.compose_for(ctx, platform, command)
        return compose.stream(*args, *([target] if target else []))
    found = extensions.discover(home)
    if target in found and found[target].has_compose:
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


def validate_tail(value: str) -> str:
    if value != "all" and not (value.isdigit()):
        raise StackError(f"Invalid --tail {value!r}.", "Use a number of lines or 'all'.", code=ExitCode.USAGE)
    return value
