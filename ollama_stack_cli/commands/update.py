"""`update`: pull newer images while the stack runs, then recreate only what changed; undoable."""

from __future__ import annotations

from .. import stack
from ..errors import StackError
from ..output import Output, confirm
from ..schemas import UpdateReport
from . import start as start_cmd


def run(ctx: stack.Context, output: Output, yes: bool, timeout: float) -> UpdateReport:
    listed = stack.containers(ctx)
    targets = stack.update_targets(ctx, listed)
    local = stack.without_origin(ctx, targets)
    for target in local:
        output.progress(f"Skipping {target.label}: {target.image} was built locally (no registry to pull from).")
    count = len({t.image for t in targets if t not in local})
    if any(t.running for t in targets):
        output.progress(f"Pulling {count} image(s); the stack keeps running...")
    else:
        output.progress(f"Pulling {count} image(s); the stack is not running, so nothing will be recreated...")
    stack.pull_updates(ctx, stream=output.interactive, skip=local)

    changes, changed = stack.image_changes(ctx, targets)
    skipped = [t.label for t in local]

    names = [t.label for t in changed]
    if not names:
        output.progress("Everything is up to date; nothing recreated.")
        return UpdateReport(project=ctx.project, changes=changes, recreated=[], skipped=skipped)
    if not confirm(output, f"Recreate {', '.join(names)} with the new images?", yes, "Recreating running services"):
        output.progress("Left the running services as they are; the new images are pulled.")
        return UpdateReport(project=ctx.project, changes=changes, recreated=[], skipped=skipped)

    record = stack.keep_previous(ctx, changed, stack.service_running(ctx, listed, "webui"), output.progress)
    with stack.operation(ctx, "update", ["recreate"], output.progress, listed=listed) as journal:
        with journal.step("recreate"):
            output.progress(f"Recreating {', '.join(names)}...")
            stack.recreate(ctx, changed)
    for change in changes:
        change.recreated = change.service in names
    core = [s for s in stack.expected_services(ctx.platform) if s.name in {t.label for t in changed}]
    if core:
        final = stack.wait_healthy(ctx, core, timeout, lambda _: None)
        bad = [name for name, state in final.items() if state != "healthy"]
        if bad:
            output.warn(f"{bad[0]} did not become healthy after the update; putting the previous images and data back.")
            undo(ctx, output, record, timeout)
            raise StackError(
                f"{bad[0]} did not become healthy after the update, so the previous images and data were put back.",
                "The new image is still pulled; see what it logged with `docker logs`, or report it upstream.",
                slug="update_rolled_back",
            )
    return UpdateReport(project=ctx.project, changes=changes, recreated=names, backup=record.backup, skipped=skipped)


def undo(ctx: stack.Context, output: Output, record: stack.UpdateRecord, timeout: float) -> list[str]:
    """Put the previous images and data back, then start the stack again."""
    running = bool(stack.ours(ctx, stack.containers(ctx)))
    labels = stack.roll_back_update(ctx, record, running, output.progress)
    fresh = stack.load(ctx.home)
    fresh._engine, fresh._compose_command = ctx._engine, ctx._compose_command
    start_cmd.run(fresh, output, platform=None, wait=True, timeout=timeout, update=False)
    return labels


def rollback(ctx: stack.Context, output: Output, yes: bool, timeout: float) -> UpdateReport:
    """`update --rollback`: back to the images and data from before the last update."""
    record = stack.last_update(ctx)
    what = ", ".join(i.label for i in record.images) or "no image"
    if not confirm(
        output,
        f"Put back the images ({what}) and data from before the update of {record.created}?",
        yes,
        "Rolling back the last update",
    ):
        raise StackError("Cancelled: nothing was changed.", slug="cancelled")
    labels = undo(ctx, output, record, timeout)
    return UpdateReport(project=ctx.project, changes=[], recreated=labels, backup=record.backup, rolled_back=True)


def render(report: UpdateReport, output: Output) -> None:
    if output.json_mode:
        output.emit(report)
        return
    if report.rolled_back:
        output.result(
            f"Rolled back {', '.join(report.recreated) or 'nothing'} to the images and data before the update."
        )
        return
    for change in report.changes:
        same = change.old_id == change.new_id
        note = "recreated" if change.recreated else ("unchanged" if same else "new image pulled")
        output.out.print(f"  {change.service:<18} {change.old_id or '-':<12} -> {change.new_id or '-':<12}  {note}")
    if report.backup:
        output.result(
            f"The previous data is backed up in {report.backup}; `ollama-stack update --rollback` undoes this update."
        )
