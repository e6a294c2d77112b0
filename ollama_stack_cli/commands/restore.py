"""`restore FILE`: put an archive's data and files back, checking all of it on the way in (SPEC 13)."""

from __future__ import annotations

from pathlib import Path

from .. import stack
from ..errors import StackError
from ..output import Output, TransferDisplay, confirm
from ..schemas import RestoreReport


def run(ctx: stack.Context, output: Output, archive: Path, yes: bool) -> RestoreReport:
    manifest = stack.archive_manifest(archive)  # the first member only: the rest is checked as it is unpacked
    if manifest.project != ctx.project:
        output.warn(
            f"The archive comes from project {manifest.project}; it is restored under this home's {ctx.project}."
        )
    running = bool(stack.ours(ctx, stack.containers(ctx)))
    if running and not confirm(
        output,
        f"Replace {ctx.project}'s data with the archive's? It stops once the archive has been verified.",
        yes,
        "Stopping the running stack",
    ):
        raise StackError("Cancelled: nothing was changed.", slug="cancelled")
    pull = stack.image_for_helpers(ctx, manifest)
    if pull:
        output.progress("No image of the stack is on this engine yet: pulling Open WebUI's (start needs it too)...")
        with TransferDisplay(output, plain_every=5.0) as display:
            stack.pull_images(ctx, pull, lambda p: display.update(p.image, p.completed, p.total, p.done), ctx.platform)
    size = archive.stat().st_size
    with TransferDisplay(output, plain_every=5.0, say_done=False) as display:
        return stack.restore(
            ctx,
            archive.resolve(),
            manifest,
            running,
            output.progress,
            lambda done: display.update(archive.name, done, size),
        )


def render(report: RestoreReport, output: Output) -> None:
    if output.json_mode:
        output.emit(report)
        return
    volumes = ", ".join(report.volumes) or "no volume"
    output.result(f"Restored {volumes} and {', '.join(report.files) or 'no file'} from {report.path}.")
    if not report.started:
        output.result("Start the stack with `ollama-stack start`.")
