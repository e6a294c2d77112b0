"""`models list|pull|rm|ps|update`: the stack's Ollama models (SPEC 12)."""

from __future__ import annotations

from .. import stack
from ..errors import ExitCode, StackError
from ..output import Output, TransferDisplay, confirm, human_size
from ..schemas import LoadedModelList, ModelList, ModelPullReport, ModelRemoval


def list_(ctx: stack.Context) -> ModelList:
    return stack.models.installed(ctx)


def ps(ctx: stack.Context) -> LoadedModelList:
    return stack.models.loaded(ctx)


def pull(ctx: stack.Context, output: Output, names: list[str], force: bool) -> ModelPullReport:
    return _pull_each(ctx, output, names, force, "pull")


def update(ctx: stack.Context, output: Output) -> ModelPullReport:
    names = [m.name for m in stack.models.installed(ctx).models]
    if not names:
        output.progress("No model is installed; nothing to update.")
        return ModelPullReport(models=[])
    output.progress(f"Checking {len(names)} model(s) for updates...")
    return _pull_each(ctx, output, names, False, "update")


def _pull_each(ctx: stack.Context, output: Output, names: list[str], force: bool, action: str) -> ModelPullReport:
    try:
        with TransferDisplay(output, plain_every=1.0, say_done=False) as display:
            report = stack.models.pull_each(
                ctx,
                names,
                lambda t: display.update(t.name, t.completed, t.total, t.done),
                lambda name, exc: output.warn(f"{name}: {exc.message}"),
                force=force,
            )
    except KeyboardInterrupt:  # the display has stopped and the connection is closed: Ollama stops
        raise StackError(
            "Interrupted; the pull was cancelled.",
            "Ollama keeps what it downloaded and resumes from there when you pull again.",
            code=ExitCode.INTERRUPTED,
            slug="interrupted",
        ) from None
    if report.failed:
        _summary(report, output)
        raise StackError(
            f"Could not {action} {', '.join(report.failed)}; the others are done.",
            "The warnings above say why; run the command again for the ones that failed.",
            slug=f"{action}_failed",
        )
    return report


def remove(ctx: stack.Context, output: Output, names: list[str], yes: bool) -> ModelRemoval:
    stack.models.require_installed(ctx, names)  # an unknown name fails before the question
    listed = ", ".join(names)
    if not confirm(output, f"Remove {listed}?", yes, f"Removing {listed}"):
        raise StackError("Nothing removed.", slug="cancelled")
    return ModelRemoval(removed=stack.models.remove(ctx, names))


# --- rendering ----------------------------------------------------------------


def render_list(result: ModelList, output: Output) -> None:
    rows = [(m.name, human_size(m.size), m.digest, m.modified_at[:19].replace("T", " ")) for m in result.models]
    empty = "No model is installed. Get one: ollama-stack models pull llama3.2"
    _table(result, output, ("NAME", "SIZE", "DIGEST", "MODIFIED"), rows, empty)


def render_ps(result: LoadedModelList, output: Output) -> None:
    rows = [
        (m.name, human_size(m.size), human_size(m.size_vram), m.expires_at[:19].replace("T", " "))
        for m in result.models
    ]
    _table(result, output, ("NAME", "MEMORY", "VRAM", "UNTIL"), rows, "No model is loaded.")


def _table(
    document: ModelList | LoadedModelList,
    output: Output,
    header: tuple[str, str, str, str],
    rows: list[tuple[str, str, str, str]],
    empty: str,
) -> None:
    """The JSON document, or an aligned table (name left, sizes right), or what to do when empty."""
    if output.json_mode:
        output.emit(document)
        return
    if not rows:
        output.result(empty)
        return
    for a, b, c, d in [header, *rows]:
        output.result(f"{a:<32} {b:>9}  {c:<12}  {d}")


def render_pull(report: ModelPullReport, output: Output) -> None:
    if output.json_mode:
        output.emit(report)
        return
    _summary(report, output)


def _summary(report: ModelPullReport, output: Output) -> None:
    if output.json_mode or output.quiet:
        return
    for m in report.models:
        if m.error:
            output.progress(f"  {m.name}: failed ({m.error})")
        elif m.before is None:
            output.result(f"  {m.name}: pulled, {human_size(m.downloaded)} ({m.after})")
        elif m.changed:
            output.result(f"  {m.name}: updated {m.before} -> {m.after}")
        else:
            output.result(f"  {m.name}: already current ({m.after})")


def render_remove(result: ModelRemoval, output: Output) -> None:
    if output.json_mode:
        output.emit(result)
        return
    for name in result.removed:
        output.result(f"Removed {name}.")
