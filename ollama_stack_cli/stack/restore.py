"""`restore FILE`: put an archive's data and files back, under the journal (SPEC 13).

Steps, each journaled: `stage` (the archive read once: every member checked as it
streams to the engine, which unpacks it into a hidden stage folder inside each
existing volume while the stack still runs, or straight into a volume the restore
creates), `stack_down` (only if it ran), `stash` (each existing volume's current
contents set aside inside it), `swap` (the staged contents moved into place), `files`
(`.env` and state, through config), `commit` (the stashes dropped). A bad archive
fails in `stage`: the staged data goes, nothing else was touched and a running stack
never stopped. Until `commit` starts, a failure, Ctrl-C or `kill -9` ends with the old
data back (`operation.rollback`); once it has started, the restore is finished
instead. Never a mix. Stashing and swapping are renames, so the stack is down only
for those.
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import config
from ..errors import StackError
from ..output import human_size
from ..schemas import BackupManifest, RestoreReport, ServiceSpec
from .archive import HOME_PREFIX, VOLUME_PREFIX, read_archive, refuse, staged_volumes
from .backup import HOME_FILES, helper_image
from .context import Context, expected_services
from .extension_runtime import stop_all_extensions
from .operation import operation
from .volumes import Helpers, ensure_volume, finish_restore, stage_dir, volume_name

STEPS = ["stage", "stack_down", "stash", "swap", "files", "commit"]
ROOT = "/r"  # where the helper mounts the volumes, by the archive's names: /r/<volume>


def restore(
    ctx: Context,
    archive: Path,
    manifest: BackupManifest,
    running: bool,
    on_progress: Callable[[str], None],
    on_bytes: Callable[[int], None] | None = None,
) -> RestoreReport:
    """Replace the volumes and home files with the archive's, checking all of it on the way in."""
    archived = _home_files(archive, manifest)
    home_files = config.restored_home_files(archived.get(config.ENV_FILE), archived.get(config.STATE_FILE), ctx.project)
    existing = ctx.engine.volumes(ctx.project)
    targets = [volume_name(ctx.project, v) for v in manifest.volumes]
    image = _image(ctx, manifest)
    helpers = Helpers(ctx.engine, ctx.project, image)
    with operation(ctx, "restore", STEPS, on_progress, stash=targets, helper_image=image) as journal:
        kept = [name for name in targets if name in existing]  # a volume the restore creates needs no swap
        with journal.step("stage"):
            on_progress(f"Verifying {archive.name} while unpacking it beside the current data...")
            into = {}
            for volume, name in zip(manifest.volumes, targets, strict=True):
                ensure_volume(ctx.engine, ctx.project, volume, existing)
                into[volume] = f"{volume}/{stage_dir(journal.entry.id)}" if name in kept else volume
            stream = staged_volumes(archive, into, on_bytes)
            if targets:
                mounts = {name: f"{ROOT}/{v}" for v, name in zip(manifest.volumes, targets, strict=True)}
                with helpers.container(mounts) as container, _disk_full_said(archive, manifest):
                    ctx.engine.put_archive(container, ROOT, stream)
            else:
                for _ in stream:  # nothing to unpack; still check every member
                    pass
        with journal.step("stack_down"):
            if running:
                on_progress(f"Stopping {ctx.project} to swap the data in...")
                stop_all_extensions(ctx)
                ctx.compose().down()
        with journal.step("stash"):
            for name in kept:
                helpers.stash(name, journal.entry.id)
        with journal.step("swap"):
            for name in kept:
                helpers.swap_in(name, journal.entry.id)
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


@contextmanager
def _disk_full_said(archive: Path, manifest: BackupManifest) -> Iterator[None]:
    """The engine's "no space left on device" as what it means for this restore."""
    try:
        yield
    except StackError as exc:
        if "no space left on device" not in exc.message:
            raise
        needed = sum(m.size for m in manifest.members if m.name.startswith(VOLUME_PREFIX))
        raise StackError(
            f"The engine's disk filled up while unpacking {archive.name}: the restore needs room for "
            f"{human_size(needed)} beside the current data until it finishes. Nothing was changed.",
            "Free space where Docker keeps its volumes (`docker system df`), then restore again.",
            slug="disk_full",
        ) from None


def image_for_helpers(ctx: Context, manifest: BackupManifest) -> list[ServiceSpec]:
    """What a restore must pull first: nothing when an image for its helpers is here.

    On a new machine (the migration path) none is: then Open WebUI's image, which the
    first start needs anyway, so nothing is downloaded in vain.
    """
    if _image_here(ctx, manifest) is not None:
        return []
    return [spec for spec in expected_services(ctx.platform) if spec.name == "webui"]


def _image(ctx: Context, manifest: BackupManifest) -> str:
    image = _image_here(ctx, manifest)
    return image if image is not None else helper_image(ctx)  # the latter raises, saying what to do


def _image_here(ctx: Context, manifest: BackupManifest) -> str | None:
    """An image on this engine for the helper containers: the stack's, else one the archive names."""
    try:
        return helper_image(ctx)
    except StackError:
        for image in manifest.images:
            if image.id and ctx.engine.image_id(image.id):
                return image.id
    return None


def _home_files(archive: Path, manifest: BackupManifest) -> dict[str, str]:
    """The archive's `.env` and state file (small; right after the manifest), checked against it."""
    sums = {m.name: m.sha256 for m in manifest.members}
    found: dict[str, str] = {}
    with read_archive(archive) as tar:
        tar.next()  # the manifest
        while (info := tar.next()) is not None:
            if not info.name.startswith(HOME_PREFIX):
                break
            name = info.name[len(HOME_PREFIX) :]
            if name in HOME_FILES and info.isreg():
                content = tar.extractfile(info).read()
                if info.name not in sums:
                    raise refuse(archive, f"member {info.name} is not in its manifest (a foreign or altered archive)")
                if hashlib.sha256(content).hexdigest() != sums[info.name]:
                    raise refuse(archive, f"member {info.name} does not match its checksum (the archive is damaged)")
                found[name] = content.decode("utf-8")
    return found
