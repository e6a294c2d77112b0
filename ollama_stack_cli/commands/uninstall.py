"""`uninstall`: remove this installation's containers, networks and keep-tags; volumes only on request."""

from __future__ import annotations

from pathlib import Path

from .. import stack
from ..errors import StackError
from ..output import Output, confirm
from ..schemas import UninstallReport


def run(ctx: stack.Context, output: Output, remove_volumes: bool, yes: bool) -> UninstallReport:
    containers = stack.ours(ctx, stack.containers(ctx))
    networks = stack.networks(ctx)
    volumes = stack.volumes(ctx)

    if remove_volumes and volumes:
        output.warn(f"This deletes {len(volumes)} volume(s) with your models and chats: {', '.join(volumes)}.")
        if not confirm(output, "Delete these volumes for good?", yes, "Deleting volumes"):
            # "No" to the question asked is no to the command: nothing is removed.
            raise StackError(
                "Cancelled: nothing was removed.",
                "To remove the containers and keep the volumes: ollama-stack uninstall",
                slug="cancelled",
            )

    if containers or networks:
        with stack.operation(ctx, "uninstall", ["compose_down"], output.progress) as journal:
            with journal.step("compose_down"):
                stack.remove_installation(ctx)

    removed_volumes: list[str] = []
    if remove_volumes:
        failed = stack.remove_volumes(ctx, volumes)
        removed_volumes = [v for v in volumes if v not in failed]
        for name in failed:
            output.warn(f"Could not remove volume {name} (in use by a container outside this installation?).")
    kept = [v for v in volumes if v not in removed_volumes]
    # With or without --remove-volumes: nothing of this installation runs any more, so the
    # previous images `update` kept for a rollback are let go (an image goes only when no
    # other tag or container holds it). Its data backups stay in the home: the user's data.
    removed_tags, failed_tags = stack.remove_keep_tags(ctx)
    for tag in failed_tags:
        output.warn(f"Could not remove the tag {tag}.")
    return UninstallReport(
        project=ctx.project,
        removed_containers=sorted(c.name for c in containers),
        removed_networks=networks,
        removed_volumes=removed_volumes,
        kept_volumes=kept,
        removed_keep_tags=removed_tags,
        kept_backups=[str(path) for path in stack.update_backups(ctx)],
    )


def render(report: UninstallReport, output: Output, home: Path) -> None:
    if output.json_mode:
        output.emit(report)
        return
    out = output.out
    out.print(
        f"Removed {len(report.removed_containers)} container(s) and {len(report.removed_networks)} network(s) "
        f"of {report.project}."
    )
    if report.removed_volumes:
        out.print(f"Deleted volumes: {', '.join(report.removed_volumes)}.")
    if report.kept_volumes:
        out.print(f"Kept volumes (models, chats): {', '.join(report.kept_volumes)}; add --remove-volumes to delete.")
    if report.removed_keep_tags:
        out.print(
            f"Untagged {len(report.removed_keep_tags)} previous image(s) `update` kept for a rollback "
            f"({', '.join(report.removed_keep_tags)}): no longer pinned."
        )
    if report.kept_backups:
        folder = Path(report.kept_backups[0]).parent
        out.print(
            f"Kept {len(report.kept_backups)} data backup(s) taken by `update` in {folder}; "
            "`ollama-stack restore FILE` brings one back."
        )
    out.print(f"Settings remain in {home}; delete that folder to forget them.")
    out.print("To remove the CLI itself: `pipx uninstall ollama-stack` or `pip uninstall ollama-stack`.")
