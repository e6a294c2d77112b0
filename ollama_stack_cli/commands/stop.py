"""`stop`: remove the stack's containers and network; volumes always stay."""

from __future__ import annotations

from .. import stack
from ..output import Output
from ..schemas import StackStatus


def run(ctx: stack.Context, output: Output) -> StackStatus:
    listed = stack.containers(ctx)
    if not stack.ours(ctx, listed) and not stack.networks(ctx):
        output.progress(f"{ctx.project} is not running; nothing to stop.")
        return stack.build_status(ctx, probe=False, listed=listed)
    output.progress(f"Stopping {ctx.project}...")
    # Nothing to undo if it fails (removed containers cannot come back); stop again finishes it.
    with stack.operation(ctx, "stop", ["compose_down"], output.progress, listed=listed) as journal:
        with journal.step("compose_down"):
            stack.stop_all_extensions(ctx)  # first, so the network can go
            ctx.compose().down()
    return stack.build_status(ctx, probe=False)


def render(result: StackStatus, output: Output) -> None:
    if output.json_mode:
        output.emit(result)
        return
    output.result(f"{result.project} is stopped. Volumes (models, chats) are kept.")
