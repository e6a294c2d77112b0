"""Open WebUI's tool servers kept equal to the extensions the proxy serves (SPEC 11).

The mechanism (Open WebUI's own config code, run in the webui container) lives in
`openwebui.py`; this module decides what Open WebUI should hold and records what
it was last given.
"""

from __future__ import annotations

from .. import config, openwebui
from ..errors import StackError
from ..schemas import ToolServerSync
from .context import Context
from .extension_runtime import ready_extensions


def tool_servers_lag(ctx: Context) -> bool:
    """Whether Open WebUI may not hold what it should, as far as the CLI last knew."""
    return sorted(ready_extensions(ctx)) != sorted(ctx.state.openwebui_tool_servers or [])


def tool_servers_involved(ctx: Context) -> bool:
    """Whether Open WebUI holds, or should hold, any tool server of ours at all."""
    return bool(ctx.state.enabled_extensions or ctx.state.openwebui_tool_servers)


def sync_tool_servers(ctx: Context, *, write: bool = True) -> ToolServerSync:
    """Make Open WebUI's tool servers match the served extensions (or, without `write`, compare).

    Never raises for Open WebUI's sake: a failure comes back as outcome "failed" with
    the reason, for the command to turn into a warning with the fix.
    """
    wanted = ready_extensions(ctx)
    entries = openwebui.tool_server_entries(wanted, ctx.env.MCP_PROXY_API_KEY, ctx.env.EXTENSIONS_VISIBLE_TO)
    try:
        result = openwebui.reconcile(ctx.compose(), entries, write=write)
    except StackError as exc:
        return ToolServerSync(outcome="failed", detail=exc.message)
    if write:
        ctx.state = config.set_openwebui_tool_servers(ctx.home, wanted)
    return result
