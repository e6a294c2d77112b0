"""`restore FILE`: put a verified archive's data and files back, under the journal (SPEC 13).

Steps, each journaled: `stack_down` (only if it ran), `stash` (each volume's current
contents set aside inside it), `extract` (the archive streamed into the volumes by the
engine), `files` (`.env` and state, through config), `commit` (the stashes dropped).
Until `commit` starts, a failure, Ctrl-C or `kill -9` ends with the old data back
(`operation.rollback`); once it has started, the restore is finished instead. Never a mix.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path

from .. import config
from ..errors import StackError
from ..schemas import BackupManifest, RestoreReport
from .archive import CHUNK, HOME_PREFIX, VOLUME_PREFIX, read_archive
from .backup import HOME_FILES, helper_image
from .context import Context
from .extension_runtime import stop_all_extensions
from .operation import operation
from .volumes import Helpers, ensure_volume, finish_restore, volume_name

STEPS = ["stack_down", "stash", "extract", "files", "commit"]
ROOT = "/r"  # where the helper mounts the volumes, as the archive names them: /r/volumes/<volume>


def restore(
    ctx: Context, archive: Path, manifest: BackupManifest, running: bool, on_progress: Callable[[str], None]
) -> RestoreReport:
    """Replace the volumes and home files with the archive's (already verified)."""
    archived = _home_files(archive)
    home_files = config.restored_home_files(archived.get(config.ENV_FILE), archived.get(config.STATE_FILE), ctx.project)
    existing = ctx.engine.volumes(ctx.project)
    targets = [volume_name(ctx.project, v) for v in manifest.volumes]
    image = _image(ctx, manifest)
    helpers = Helpers(ctx.engine, ctx.project, image)
    with operation(ctx, "restore", STEPS, on_progress, stash=targets, helper_image=image) as journal:
        with journal.step("stack_down"):
            if running:
                on_progress(f"Stopping {ctx.project} for the restore...")
                stop_all_extensions(ctx)
                ctx.compose().down()
        with journal.step("stash"):
            for volume, name in zip(manifest.volumes, targets, strict=True):
                ensure_volume(ctx.engine, ctx.project, volume, existing)
                if name in existing:
                    helpers.stash(name, journal.entry.id)
        with journal.step("extract"):
            on_progress(f"Restoring {', '.join(manifest.volumes) or 'no volume'} from {archive.name}...")
            mounts = {
                name: f"{ROOT}/{VOLUME_PREFIX}{volume}" for volume, name in zip(manifest.volumes, targets, strict=True)
            }
            if mounts:
                with helpers.container(mounts) as container:
                    ctx.engine.put_archive(container, ROOT, _chunks(archive))
        journal.expect_files(home_files)  # so an undo knows these files as its own writing
        with journal.step("files"):
            config.write_home_files(ctx.home, home_files)
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a half-dropped stash is worth finishing
        try:
            with journal.step("commit"):
                finish_restore(ctx.engine, journal.entry)
        finally:
            signal.signal(signal.SIGINT, previous)
    return RestoreReport(
        path=str(archive),
        project=ctx.project,
        from_project=manifest.project,
        created=manifest.created,
        volumes=manifest.volumes,
        files=sorted(home_files),
        was_running=running,
    )


def _image(ctx: Context, manifest: BackupManifest) -> str:
    """An image on this engine for the helper containers: the stack's, else one the archive names."""
    try:
        return helper_image(ctx)
    except StackError:
        for image in manifest.images:
            if image.id and ctx.engine.image_id(image.id):
                return image.id
        raise


def _home_files(archive: Path) -> dict[str, str]:
    """The archive's `.env` and state file (small; they come right after the manifest)."""
    found: dict[str, str] = {}
    with read_archive(archive) as tar:
        tar.next()  # the manifest
        while (info := tar.next()) is not None:
            if not info.name.startswith(HOME_PREFIX):
                break
            name = info.name[len(HOME_PREFIX) :]
            if name in HOME_FILES and info.isreg():
                handle = tar.extractfile(info)
                assert handle is not None
                found[name] = handle.read().decode("utf-8")
    return found


def _chunks(archive: Path) -> Iterator[bytes]:
    """The archive file as it is read, for the engine to extract (it reads gzip too)."""
    with archive.open("rb") as raw:
        while chunk := raw.read(CHUNK):
            yield chunk
