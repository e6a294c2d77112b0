"""`backup`: one verified archive of the home's files and Open WebUI's data (SPEC 13)."""

from __future__ import annotations

from pathlib import Path

from .. import stack
from ..output import Output, TransferDisplay
from ..schemas import BackupReport


def run(ctx: stack.Context, output: Output, path: Path | None, include_models: bool) -> BackupReport:
    running = stack.service_running(ctx, stack.containers(ctx), "webui")
    target = path or stack.default_backup_path(ctx)
    output.progress(f"Backing up {ctx.project} to {target}...")
    with TransferDisplay(output, plain_every=5.0, say_done=False) as display:
        return stack.backup(
            ctx, target, include_models, running, output.progress, lambda key, done: display.update(key, done, 0)
        )


def render(report: BackupReport, output: Output) -> None:
    if output.json_mode:
        output.emit(report)
        return
    size = report.size / 1e6
    volumes = ", ".join(report.volumes) or "no volume"
    output.result(f"Backup written and verified: {report.path} ({size:.1f} MB; {volumes}).")
    output.result("It holds your secrets (.env) and chats: it is readable by you only (mode 0600); keep it safe.")
