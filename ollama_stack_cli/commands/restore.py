"""`restore FILE`: verify the whole archive, then put its data and files back (SPEC 13)."""

from __future__ import annotations

from pathlib import Path

from .. import stack
from ..errors import StackError
from ..output import Output, confirm
from ..schemas import RestoreReport


def run(ctx: stack.Context, output: Output, archive: Path, yes: bool) -> RestoreReport:
    output.progress(f"Verifying {archive} (every checksum, the database's integrity)...")
    manifest = stack.verify_archive(archive)
    if manifest.project != ctx.project:
        output.warn(
            f"The archive comes from project {manifest.project}; it is restored under this home's {ctx.project}."
        )
    running = bool(stack.ours(ctx, stack.containers(ctx)))
    if running and not confirm(
        output, f"Stop {ctx.project} and replace its data with the archive's?", yes, "Stopping the running stack"
    ):
        raise StackError("Cancelled: nothing was changed.", slug="cancelled")
    return stack.restore(ctx, archive.resolve(), manifest, running, output.progress)


def render(report: RestoreReport, output: Output) -> None:
    if output.json_mode:
        output.emit(report)
        return
    volumes = ", ".join(report.volumes) or "no volume"
    output.result(f"Restored {volumes} and {', '.join(report.files) or 'no file'} from {report.path}.")
    if not report.started:
        output.result("Start the stack with `ollama-stack start`.")
