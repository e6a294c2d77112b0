"""Taking an installation away: its containers and networks, and its volumes only when asked."""

from __future__ import annotations

from .. import config
from ..schemas import StackState
from .context import Context
from .extension_runtime import stop_all_extensions


def remove_installation(ctx: Context) -> None:
    """Stop extensions and core, then remove whatever else carries this installation's label."""
    stop_all_extensions(ctx)
    ctx.compose().down()
    # Anything else carrying our label (a renamed service, a stray extension) goes too.
    ctx.engine.remove_containers([c.id for c in ctx.engine.containers() if c.installation == ctx.project])
    ctx.engine.remove_networks(ctx.engine.networks(ctx.project))


def remove_volumes(ctx: Context, names: list[str]) -> list[str]:
    """Delete these volumes (models, chats): returns the ones that could not be removed."""
    failed = ctx.engine.remove_volumes(names)
    if len(failed) < len(names):
        # Open WebUI starts over on a new volume: it holds no tool server of ours any more.
        ctx.state = _forget_tool_servers(ctx)
    return failed


def _forget_tool_servers(ctx: Context) -> StackState:
    if not ctx.state.openwebui_tool_servers:
        return ctx.state
    return config.set_openwebui_tool_servers(ctx.home, [])
