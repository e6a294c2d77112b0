"""`update`: pull newer images while the stack runs, then recreate only what changed."""

from __future__ import annotations

from .. import stack
from ..errors import StackError
from ..output import Output, confirm
from ..schemas import UpdateReport


def run(ctx: stack.Context, output: Output, yes: bool, timeout: float) -> UpdateReport:
    listed = stack.containers(ctx)
    targets = stack.update_targets(ctx, listed)
    count = len({t.image for t in targets})
    if any(t.running for t in targets):
        output.progress(f"Pulling {count} image(s); the stack keeps running...")
    else:
        output.progress(f"Pulling {count} image(s); the stack is not running, so nothing will be recreated...")
    stack.pull_updates(ctx, stream=output.interactive)

    changes, changed = stack.image_changes(ctx, targets)

    names = [t.label for t in changed]
    if not names:
        output.progress("Everything is up to date; nothing recreated.")
        return UpdateReport(project=ctx.project, changes=changes, recreated=[])
    if not confirm(output, f"Recreate {', '.join(names)} with the new images?", yes, "Recreating running services"):
        output.progress("Left the running services as they are; the new images are pulled.")
        return UpdateReport(project=ctx.project, changes=changes, recreated=[])

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
            raise StackError(
                f"{bad[0]} did not answer after the update.",
                f"See `ollama-stack logs {bad[0]}`.",
                slug="health_timeout",
            )
    return UpdateReport(project=ctx.project, changes=changes, recreated=names)


def render(report: UpdateReport, output: Output) -> None:
    if output.json_mode:
        output.emit(report)
        return
    for change in report.changes:
        same = change.old_id == change.new_id
        note = "recreated" if change.recreated else ("unchanged" if same else "new image pulled")
        output.out.print(f"  {change.service:<18} {change.old_id or '-':<12} -> {change.new_id or '-':<12}  {note}")
