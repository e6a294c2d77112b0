"""Logs of the core, one service, or one extension, through `docker compose logs`."""

from __future__ import annotations

import difflib

from ..errors import ExitCode, StackError
from .context import Context, expected_services
from .extension_runtime import extension_compose, extension_containers


def stream_logs(ctx: Context, target: str | None, args: list[str]) -> int:
    """Pass compose's log output on as it comes (secrets masked); returns its exit code."""
    services = [s.name for s in expected_services(ctx.platform)]
    if target is None or target in services:
        listed = ctx.engine.containers()
        ours = [c for c in listed if c.project == ctx.project and c.installation == ctx.project]
        if not [c for c in ours if target is None or c.service == target]:
            _not_running(target or ctx.project)
        return ctx.compose().stream(*args, *([target] if target else []))
    found = ctx.extensions
    if target in found and found[target].has_compose:
        if not extension_containers(ctx, ctx.engine.containers(), target):
            _not_running(f"Extension {target}")
        return extension_compose(ctx, found[target], ctx.platform, for_up=False).stream(*args)
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
