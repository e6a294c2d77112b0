"""Undoable updates: what `update` keeps before recreating, and putting it back (SPEC 13).

Before recreating, each replaced image id gets a local tag (so no prune removes it)
and Open WebUI's data is backed up into the home (`backups/`, the newest
`config.KEEP_UPDATE_BACKUPS` kept). The record of both, `backups/last-update.json`,
is what a failed update's automatic rollback and `update --rollback` return to:
the image references are pointed back at the old ids and the data is restored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from pydantic import ValidationError

from .. import config
from ..errors import StackError
from ..schemas import CORE_SERVICES, ImageTarget, PreviousImage, UpdateRecord
from .archive import DATA_VOLUME, archive_manifest
from .backup import backup
from .context import Context
from .extension_runtime import extension_compose, stop_all_extensions
from .operation import operation
from .restore import restore
from .volumes import volume_name

PREVIOUS_REPO = "ollama-stack-previous"


def keep_tag(project: str, label: str) -> str:
    """The tag that keeps a service's previous image (one per service, moved by each update)."""
    return f"{PREVIOUS_REPO}/{project}-{label.replace('/', '-')}:previous"


def without_origin(ctx: Context, targets: list[ImageTarget]) -> list[ImageTarget]:
    """Targets whose image is here but came from no registry (built locally): nothing to pull."""
    found = []
    for target in targets:
        image_id, digests = ctx.engine.image_origin(target.image)
        if image_id and not digests:
            found.append(target)
    return found


def keep_previous(
    ctx: Context, changed: list[ImageTarget], webui_running: bool, on_progress: Callable[[str], None]
) -> UpdateRecord:
    """Tag the images about to be replaced and back up Open WebUI's data; record both."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    images = []
    for target in changed:
        if not target.before_id:
            continue
        # One tag per service, moved by each update: only the last update can be rolled back.
        ctx.engine.tag_image(target.before_id, keep_tag(ctx.project, target.label))
        images.append(
            PreviousImage(
                label=target.label,
                image=target.image,
                old_id=target.before_id,
                new_id=ctx.engine.image_id(target.image),
            )
        )
    path: Path | None = None
    if volume_name(ctx.project, DATA_VOLUME) in ctx.engine.volumes(ctx.project):
        path = config.update_backup_path(ctx.home, stamp)
        on_progress(f"Backing up Open WebUI's data to {path} first, so the update can be undone...")
        backup(ctx, path, include_models=False, running=webui_running, on_progress=lambda _: None)
        config.prune_update_backups(ctx.home)
    record = UpdateRecord(created=stamp, backup=str(path) if path else None, images=images)
    config.write_update_record(ctx.home, record.model_dump_json(indent=2))
    return record


def remove_keep_tags(ctx: Context) -> tuple[list[str], list[str]]:
    """Untag this installation's keep-tags (uninstall): (removed, could not be removed).

    Untagging deletes an image only when no other tag and no container holds it. Only
    the exact tags this installation makes are touched: `<project>-*` alone would also
    match another installation named `<project>-<something>`.
    """
    found = ctx.engine.image_tags(f"{PREVIOUS_REPO}/{ctx.project}-*")
    if not found:
        return [], []
    ours = {keep_tag(ctx.project, label) for label in _service_labels(ctx)}
    removed, failed = [], []
    for tag in (t for t in found if t in ours):
        try:
            ctx.engine.untag(tag)
            removed.append(tag)
        except StackError:
            failed.append(tag)
    return removed, failed


def _service_labels(ctx: Context) -> set[str]:
    """Every label `update` may have tagged: core services, the last record's, extensions' services."""
    labels = {spec.name for spec in CORE_SERVICES}
    try:
        labels.update(image.label for image in last_update(ctx).images)
    except StackError:
        pass  # no record, or a damaged one
    for extension in ctx.extensions.values():
        if extension.valid and extension.has_compose:
            try:
                services = extension_compose(ctx, extension, ctx.platform, for_up=False).config().services
            except StackError:
                continue  # a broken compose file: it could not have been updated either
            labels.update(f"{extension.name}/{service}" for service in services)
    return labels


def update_backups(ctx: Context) -> list[Path]:
    """The data backups `update` took, kept in the home (uninstall leaves them: they are the user's data)."""
    return sorted((ctx.home / config.BACKUPS_DIR).glob("update-*.tar"))


def last_update(ctx: Context) -> UpdateRecord:
    text = config.read_update_record(ctx.home)
    if text is None:
        raise StackError(
            "There is no update to roll back: none was recorded in this home.",
            "`update` records the previous images and a data backup each time it recreates a service.",
            slug="no_update",
        )
    try:
        return UpdateRecord.model_validate_json(text)
    except ValidationError as exc:
        raise StackError(f"The update record is damaged: {exc.errors()[0]['msg']}.", slug="no_update") from None


def roll_back(ctx: Context, record: UpdateRecord, running: bool, on_progress: Callable[[str], None]) -> list[str]:
    """Point the images back at their previous ids and restore the data; the stack is left stopped.

    Returns the services whose image was put back. The caller starts the stack again.
    """
    for image in record.images:
        if ctx.engine.image_id(image.old_id) is None:
            raise StackError(
                f"The previous image of {image.label} ({image.old_id[:19]}) is no longer on this engine.",
                slug="rollback_failed",
            )
    for image in record.images:
        ctx.engine.tag_image(image.old_id, image.image)
    archive = Path(record.backup) if record.backup else None
    if archive is not None and archive.is_file():
        on_progress(f"Putting Open WebUI's data back from {archive}...")
        restore(ctx, archive, archive_manifest(archive), running, on_progress)
    elif running:
        with operation(ctx, "update --rollback", ["compose_down"], on_progress) as journal:
            with journal.step("compose_down"):
                stop_all_extensions(ctx)
                ctx.compose().down()
    return [image.label for image in record.images]
