"""`stop`: remove the stack's containers and network; volumes always stay."""

from __future__ import annotations

from pathlib import Path

from .. import stack
from ..docker_client import Engine, find_compose
from ..output import Output
from ..schemas import StackStatus


def run(home: Path, output: Output) -> StackStatus:
    ctx = stack.load(home)
    engine = Engine()
    ours = [c for c in engine.containers() if c.installation == ctx.project]
    networks = engine.networks(ctx.project)
    if not ours and not networks:
        output.progress(f"{ctx.project} is not running; nothing to stop.")
        return stack.build_status(ctx, engine, probe=False)
    output.progress(f"Stopping {ctx.project}...")
    platform = ctx.state.platform or "cpu"
    journal = stack.begin(ctx, engine, "stop", ["compose_down"], platform)
    try:
        with journal.step("compose_down"):
            command = find_compose()
            stack.stop_all_extensions(ctx, engine, command)  # first, so the network can go
            stack.compose_for(ctx, platform, command).down()
    except BaseException:
        # Nothing to undo (removed containers cannot be brought back); stop again finishes it.
        journal.close()
        raise
    journal.close()
    return stack.build_status(ctx, engine, probe=False)


def render(result: StackStatus, output: Output) -> None:
    if output.json_mode:
        output.emit(result)
        return
    output.result(f"{result.project} is stopped. Volumes (models, chats) are kept.")
