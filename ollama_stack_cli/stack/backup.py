"""`backup`: one verified archive of the home's files and Open WebUI's data (SPEC 13).

The archive is written as a stream: each volume's tar stream comes from the engine's
archive endpoint and passes through, hashed on the way, so memory stays flat whatever
the size. The manifest must come first but is only known at the end, so a fixed-size
slot is reserved and filled in afterwards (a gzipped archive, or a manifest too big for
its slot, is written again with the manifest in front). Written to a temporary name,
verified by reading it all back, then renamed.
"""

from __future__ import annotations

import errno
import os
import tarfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import IO

from .. import __version__, config
from ..errors import ExitCode, StackError
from ..schemas import BackupImage, BackupManifest, BackupMember, BackupReport
from .archive import (
    DATA_VOLUME,
    DATABASE,
    FORMAT_VERSION,
    HOME_PREFIX,
    MODELS_VOLUME,
    HashingReader,
    fill_slot,
    is_gzip,
    member_type,
    rewrite,
    slot,
    verify_archive,
    volume_member,
)
from .context import Context, expected_services, pause_point
from .volumes import MOUNT, STAGE_PREFIX, STASH_PREFIX, Helpers, volume_name

HOME_FILES = (config.ENV_FILE, config.STATE_FILE)
DATA_DIR = "/app/backend/data"
SNAPSHOT = ".ollama-stack-backup.db"
# Runs inside the webui container: SQLite's online backup API, a consistent copy of a
# database that is being written (never a file copy). Prints what it did.
_SNAPSHOT_SCRIPT = f"""
import os, sqlite3
src, dst = "{DATA_DIR}/{DATABASE}", "{DATA_DIR}/{SNAPSHOT}"
if not os.path.exists(src):
    print("NO_DATABASE")
else:
    if os.path.exists(dst):
        os.remove(dst)
    source, target = sqlite3.connect(src), sqlite3.connect(dst)
    with target:
        source.backup(target)
    target.close()
    source.close()
    print("SNAPSHOT")
"""
SQLITE_SIDE_FILES = (f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal")


def default_output(ctx: Context) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path.cwd() / f"ollama-stack-backup-{ctx.project}-{stamp}.tar"


def helper_image(ctx: Context) -> str:
    """An image already on the engine to run helper containers from (the stack's own)."""
    for spec in expected_services(ctx.platform):
        image_id = ctx.engine.image_id(ctx.env.image_of(spec))
        if image_id:
            return image_id
    raise StackError(
        "None of the stack's images is on this engine, so its volumes cannot be read or written.",
        "Run `ollama-stack start` once (it downloads them), then try again.",
        slug="no_image",
    )


def backup(
    ctx: Context,
    output_path: Path,
    include_models: bool,
    running: bool,
    on_progress: Callable[[str], None],
    on_bytes: Callable[[str, int], None] | None = None,
) -> BackupReport:
    """Write, verify and rename the archive; a failure or Ctrl-C leaves no file behind.

    `on_bytes(volume, count)` hears how much of each volume has been read so far.
    """
    existing = ctx.engine.volumes(ctx.project)
    wanted = [DATA_VOLUME] + ([MODELS_VOLUME] if include_models else [])
    volumes = [v for v in wanted if volume_name(ctx.project, v) in existing]
    if not volumes and config.read_bytes(ctx.home / config.ENV_FILE) is None:
        raise StackError(
            f"Nothing to back up: {ctx.home} has no .env, and {ctx.project} has no Open WebUI data on this engine.",
            "Point --home (or OLLAMA_STACK_HOME) at the stack's home, or start the stack first.",
            slug="nothing_to_back_up",
        )
    for missing in sorted(set(wanted) - set(volumes)):
        on_progress(f"No {missing} volume yet: nothing of it to back up.")
    output_path = output_path.resolve()
    temp = output_path.with_name(f".{output_path.name}.partial-{os.getpid()}")
    staging = output_path.with_name(f".{output_path.name}.staging-{os.getpid()}")
    snapshot = _take_snapshot(ctx, on_progress) if running and DATA_VOLUME in volumes else "none"
    try:
        manifest = _write(ctx, staging, volumes, running, snapshot, on_progress, on_bytes)
        if is_gzip(output_path) or not fill_slot(staging, manifest):
            rewrite(staging, temp, manifest, gzip=is_gzip(output_path))
            staging.unlink()
        else:
            os.replace(staging, temp)
        on_progress("Verifying the archive (every checksum, the database's integrity)...")
        verify_archive(temp)
        os.chmod(temp, 0o600)
        os.replace(temp, output_path)
    except KeyboardInterrupt:
        _remove(staging, temp)
        raise StackError(
            "Interrupted: the partial archive was removed.", code=ExitCode.INTERRUPTED, slug="interrupted"
        ) from None
    except OSError as exc:
        _remove(staging, temp)
        if exc.errno == errno.ENOSPC:
            raise StackError(
                f"The disk filled up while writing {output_path}; the partial archive was removed.",
                "Free some space, or write elsewhere with --output.",
                slug="disk_full",
            ) from None
        raise StackError(f"Could not write {output_path}: {exc.strerror or exc}.", slug="write_failed") from None
    except BaseException:
        _remove(staging, temp)
        raise
    finally:
        if snapshot == "snapshot":
            ctx.compose().exec("webui", ["rm", "-f", f"{DATA_DIR}/{SNAPSHOT}"], stdin="", timeout=60)
    return BackupReport(
        path=str(output_path),
        project=ctx.project,
        size=output_path.stat().st_size,
        members=len(manifest.members),
        volumes=volumes,
        database=manifest.database,
        consistent_copy={
            "snapshot": "sqlite online backup inside the running webui container",
            "none": "files copied with the stack stopped" if not running else "no database",
        }.get(snapshot, snapshot),
        verified=True,
    )


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _take_snapshot(ctx: Context, on_progress: Callable[[str], None]) -> str:
    """A consistent copy of Open WebUI's database, taken by the running container's Python."""
    on_progress("Taking a consistent copy of Open WebUI's database (SQLite online backup)...")
    result = ctx.compose().exec("webui", ["python3", "-c", _SNAPSHOT_SCRIPT], stdin="", timeout=600)
    if result.returncode == 0 and "SNAPSHOT" in result.stdout:
        return "snapshot"
    if result.returncode == 0 and "NO_DATABASE" in result.stdout:
        return "none"
    return "unavailable"  # no python3 in this image: fine unless a database turns up


def _write(
    ctx: Context,
    path: Path,
    volumes: list[str],
    running: bool,
    snapshot: str,
    on_progress: Callable[[str], None],
    on_bytes: Callable[[str, int], None] | None,
) -> BackupManifest:
    members: list[BackupMember] = []
    database: str | None = None
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw:
        raw.write(slot(b""))  # the manifest's slot, filled in at the end
        with tarfile.open(fileobj=raw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name in HOME_FILES:
                content = config.read_bytes(ctx.home / name)
                if content is not None:
                    members.append(_add_bytes(tar, HOME_PREFIX + name, content))
            helpers = Helpers(ctx.engine, ctx.project, helper_image(ctx)) if volumes else None
            pause_point(ctx, "backup:volumes")
            for volume in volumes:
                assert helpers is not None
                on_progress(f"Reading volume {volume}...")
                with helpers.container({volume_name(ctx.project, volume): MOUNT}) as container:
                    with ctx.engine.get_archive(container, MOUNT) as stream:
                        tally = _Tally(volume, on_bytes)
                        found = _copy_volume(stream, tar, volume, members, running, snapshot, tally)
                if found:
                    database = found
        raw.flush()
        os.fsync(raw.fileno())
    return BackupManifest(
        format=FORMAT_VERSION,
        cli_version=__version__,
        project=ctx.project,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        volumes=volumes,
        images=_images(ctx),
        database=database,
        members=members,
    )


class _Tally:
    """Bytes read from one volume, passed on every few megabytes (not for each 64 KiB read)."""

    EVERY = 4 << 20

    def __init__(self, volume: str, on_bytes: Callable[[str, int], None] | None) -> None:
        self.volume = volume
        self.on_bytes = on_bytes
        self.count = 0
        self.told = 0

    def add(self, size: int) -> None:
        self.count += size
        if self.on_bytes is not None and self.count - self.told >= self.EVERY:
            self.told = self.count
            self.on_bytes(self.volume, self.count)


def _copy_volume(
    stream: IO[bytes],
    tar: tarfile.TarFile,
    volume: str,
    members: list[BackupMember],
    running: bool,
    snapshot: str,
    tally: _Tally,
) -> str | None:
    """Pass one volume's tar stream through, renamed under `volumes/<volume>/`; the database's name if any."""
    database = None
    top = MOUNT.strip("/")
    with tarfile.open(fileobj=stream, mode="r|") as source:
        for info in source:
            if info.name == top or not info.name.startswith(top + "/"):
                continue
            relative = info.name[len(top) + 1 :]
            first = relative.split("/", 1)[0]
            if first.startswith((STASH_PREFIX, STAGE_PREFIX)) or (volume == DATA_VOLUME and first == "cache"):
                continue
            kind = member_type(info)
            if kind is None:
                continue  # a device or a fifo: nothing Open WebUI or Ollama keeps
            if volume == DATA_VOLUME:
                if relative == SNAPSHOT and snapshot != "snapshot":
                    continue  # left over by an interrupted backup
                if snapshot == "snapshot" and relative in (DATABASE, *SQLITE_SIDE_FILES):
                    continue  # the live files; the consistent copy stands in for them
                if relative == SNAPSHOT:
                    relative = DATABASE
                if relative == DATABASE:
                    if running and snapshot != "snapshot":
                        raise StackError(
                            "Cannot take a consistent copy of Open WebUI's database: "
                            "its container has no python3 for SQLite's online backup.",
                            "Stop the stack (`ollama-stack stop`), back up, then start it again.",
                            slug="no_consistent_copy",
                        )
                    database = volume_member(volume, DATABASE)
            info.name = volume_member(volume, relative)
            if info.islnk():
                info.linkname = volume_member(volume, info.linkname[len(top) + 1 :])
            entry = BackupMember(name=info.name, type=kind, link=info.linkname or None)  # type: ignore[arg-type]
            if info.isreg():
                handle = source.extractfile(info)
                assert handle is not None
                reader = HashingReader(handle, on_read=tally.add)
                tar.addfile(info, reader)  # type: ignore[arg-type]
                entry.size, entry.sha256 = reader.size, reader.hash.hexdigest()
            else:
                tar.addfile(info)
            members.append(entry)
    return database


def _add_bytes(tar: tarfile.TarFile, name: str, content: bytes) -> BackupMember:
    import hashlib
    import io

    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(content), 0o600, int(datetime.now(timezone.utc).timestamp())
    tar.addfile(info, io.BytesIO(content))
    return BackupMember(name=name, type="file", size=len(content), sha256=hashlib.sha256(content).hexdigest())


def _images(ctx: Context) -> list[BackupImage]:
    images = []
    for spec in expected_services(ctx.platform):
        reference = ctx.env.image_of(spec)
        image_id, digests = ctx.engine.image_origin(reference)
        images.append(BackupImage(service=spec.name, image=reference, id=image_id, digests=digests))
    return images
