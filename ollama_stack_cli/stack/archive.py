"""The backup archive's format: member names, the manifest, and verifying a whole archive.

An archive is a tar (`.tar`, or gzipped by name) whose first member is the manifest
`ollama-stack-backup.json`: every other member's name, type, size and sha256. Home
files sit under `home/`, each volume under `volumes/<volume>/`. Verification reads
the archive once, as a stream (memory stays flat), and refuses anything it cannot
vouch for: a member that is missing, extra, changed, or whose name would escape.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import sqlite3
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

from pydantic import ValidationError

from ..errors import StackError
from ..schemas import BackupManifest, BackupMember

FORMAT_VERSION = 1
MANIFEST_NAME = "ollama-stack-backup.json"
HOME_PREFIX = "home/"
VOLUME_PREFIX = "volumes/"
DATA_VOLUME = "open_webui_data"
MODELS_VOLUME = "ollama_models"
DATABASE = "webui.db"
CHUNK = 1 << 20
RESERVED = 1 << 20  # the manifest's slot: ~5,000 members; more and the archive is written twice
ARCHIVE_HINT = "Use an archive written by `ollama-stack backup`, or take a new backup."


def volume_member(volume: str, relative: str) -> str:
    return f"{VOLUME_PREFIX}{volume}/{relative}"


def member_type(info: tarfile.TarInfo) -> str | None:
    if info.isreg():
        return "file"
    if info.isdir():
        return "dir"
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    return None


def safe_name(name: str) -> bool:
    """A relative name with no `..`, no absolute path and no backslash: it cannot escape."""
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name


def is_gzip(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz"))


class HashingReader:
    """Reads through to a file object, hashing what passes (and optionally copying it, counting it)."""

    def __init__(
        self, source: IO[bytes], copy: IO[bytes] | None = None, on_read: Callable[[int], None] | None = None
    ) -> None:
        self.source = source
        self.copy = copy
        self.on_read = on_read
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.hash.update(data)
        self.size += len(data)
        if self.copy is not None:
            self.copy.write(data)
        if self.on_read is not None:
            self.on_read(len(data))
        return data


def refuse(path: Path, problem: str) -> StackError:
    return StackError(f"{path} cannot be restored: {problem}. Nothing was changed.", ARCHIVE_HINT, slug="bad_archive")


class ArchiveReader:
    """One pass over an archive's members in order, memory flat whatever their count.

    tarfile's seekable mode (not its stream mode, whose buffer joins cost seconds per
    gigabyte), minus the list of every header read, which one pass never needs.
    """

    def __init__(self, tar: tarfile.TarFile, raw: IO[bytes]) -> None:
        self.tar = tar
        self.raw = raw

    def next(self) -> tarfile.TarInfo | None:
        info = self.tar.next()
        cast(Any, self.tar).members.clear()  # tarfile's own list of headers read (not in its stubs)
        return info

    def extractfile(self, info: tarfile.TarInfo) -> IO[bytes]:
        handle = self.tar.extractfile(info)
        assert handle is not None  # only asked for regular files
        return handle

    def position(self) -> int:
        """How far into the file (compressed bytes for a .tar.gz) the reading is."""
        return self.raw.tell()


@contextmanager
def read_archive(path: Path) -> Iterator[ArchiveReader]:
    """The archive's members in order (gzip detected), with read errors as one clear refusal."""
    if not path.is_file():
        raise StackError(f"No backup archive at {path}.", "Check the path.", slug="bad_archive")
    try:
        with path.open("rb") as raw, tarfile.open(fileobj=raw, mode="r:*") as tar:
            yield ArchiveReader(tar, raw)
    except tarfile.ReadError as exc:
        if "unexpected end" in str(exc):
            raise refuse(path, "it is truncated (it ends in the middle of a member)") from None
        raise refuse(path, f"it is not a tar archive, or it is damaged ({exc})") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise refuse(path, f"it is truncated or damaged ({exc or 'it ends too early'})") from None


def read_manifest(path: Path, tar: ArchiveReader) -> BackupManifest:
    first = tar.next()
    if first is None or first.name != MANIFEST_NAME or not first.isreg():
        raise refuse(path, f"it is not an ollama-stack backup (its first member is not {MANIFEST_NAME})")
    try:
        manifest = BackupManifest.model_validate_json(tar.extractfile(first).read())
    except ValidationError as exc:
        raise refuse(path, f"its manifest is not valid ({exc.errors()[0]['msg']})") from None
    if manifest.format > FORMAT_VERSION:
        raise StackError(
            f"{path} was written by a newer ollama-stack (archive format {manifest.format}, "
            f"this one reads up to {FORMAT_VERSION}). Nothing was changed.",
            "Upgrade ollama-stack (`pipx upgrade ollama-stack`), then restore.",
            slug="bad_archive",
        )
    return manifest


def archive_manifest(path: Path) -> BackupManifest:
    """Only the manifest (the first member): what a restore will do, before it reads the rest."""
    with read_archive(path) as tar:
        return read_manifest(path, tar)


class MemberCheck:
    """Checks an archive's members as they stream by: listed, unchanged, safely named, the database sound.

    The same checks serve a dry read (`verify_archive`) and a restore that unpacks
    while it reads (`staged_volumes`): each raises a refusal naming the member.
    """

    def __init__(self, path: Path, manifest: BackupManifest, scratch: Path) -> None:
        self.path = path
        self.manifest = manifest
        self.expected = {m.name: m for m in manifest.members}
        self.seen: set[str] = set()
        self.database = scratch / DATABASE

    def member(self, info: tarfile.TarInfo) -> BackupMember:
        _check_member(self.path, info, self.expected, self.seen)
        return self.expected[info.name]

    def data(self, tar: ArchiveReader, info: tarfile.TarInfo, member: BackupMember) -> Iterator[bytes]:
        """The member's bytes as they are read (the database also copied aside); a refusal if they changed."""
        handle = tar.extractfile(info)
        database = self.manifest.database
        wanted_db = database is not None and info.name in (database, f"{database}-wal")
        target = self.database.with_name(DATABASE + info.name[len(database or "") :]) if wanted_db else None
        with target.open("wb") if target else _nowhere() as copy:
            reader = HashingReader(handle, copy)
            while chunk := reader.read(CHUNK):
                yield chunk
        if reader.size != member.size or reader.hash.hexdigest() != member.sha256:
            raise refuse(self.path, f"member {info.name} does not match its checksum (the archive is damaged)")

    def finish(self) -> None:
        missing = sorted(set(self.expected) - self.seen)
        if missing:
            raise refuse(self.path, f"it is truncated: member {missing[0]} is missing")
        if self.manifest.database is not None:
            problem = integrity_problem(self.database)
            if problem:
                raise refuse(
                    self.path,
                    f"its database copy {self.manifest.database} fails PRAGMA integrity_check ({problem})",
                )


def verify_archive(path: Path) -> BackupManifest:
    """Read the whole archive and check every member (see `MemberCheck`); the manifest when all is sound.

    Nothing is written anywhere but a temporary copy of the database for `PRAGMA integrity_check`.
    """
    with read_archive(path) as tar, tempfile.TemporaryDirectory(prefix="ollama-stack-verify-") as scratch:
        manifest = read_manifest(path, tar)
        check = MemberCheck(path, manifest, Path(scratch))
        while (info := tar.next()) is not None:  # not `for`: a stream's iteration starts over
            member = check.member(info)
            if member.type == "file":
                for _ in check.data(tar, info, member):
                    pass
        check.finish()
    return manifest


def staged_volumes(path: Path, into: dict[str, str], on_bytes: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The archive's volume members as a plain tar for the engine, checked as they pass (one read).

    `volumes/<volume>/<name>` becomes `<into[volume]>/<name>`: a stage folder beside the
    volume's current data, never over it (or the root of a volume the restore has just
    created). Every check of `verify_archive` runs on the way; a failure raises before
    the tar's end marker is sent, so the engine only ever holds data the caller removes.
    `on_bytes` hears how far into the file it has read. Headers and small files go out
    in batches; large pieces as they are.
    """
    with read_archive(path) as tar, tempfile.TemporaryDirectory(prefix="ollama-stack-verify-") as scratch:
        check = MemberCheck(path, read_manifest(path, tar), Path(scratch))
        pending = bytearray()
        while (info := tar.next()) is not None:
            member = check.member(info)
            data = check.data(tar, info, member) if member.type == "file" else iter(())
            if not info.name.startswith(VOLUME_PREFIX):
                for _ in data:  # a home file: checked here, written by the restore itself
                    pass
                continue
            pending += _renamed(path, info, into).tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
            for chunk in data:
                if len(chunk) < CHUNK // 4:
                    pending += chunk
                    continue
                if pending:
                    yield bytes(pending)
                    pending.clear()
                yield chunk
                if on_bytes is not None:
                    on_bytes(tar.position())
            if info.size % tarfile.BLOCKSIZE and member.type == "file":
                pending += tarfile.NUL * (tarfile.BLOCKSIZE - info.size % tarfile.BLOCKSIZE)
            if len(pending) >= CHUNK:
                yield bytes(pending)
                pending.clear()
        check.finish()
        yield bytes(pending) + tarfile.NUL * (2 * tarfile.BLOCKSIZE)  # the end marker, only now
        if on_bytes is not None:
            on_bytes(tar.position())


def _renamed(path: Path, info: tarfile.TarInfo, into: dict[str, str]) -> tarfile.TarInfo:
    """A volume member's header under the folder its volume is unpacked into."""
    volume, _, relative = info.name[len(VOLUME_PREFIX) :].partition("/")
    if volume not in into:
        raise refuse(path, f"member {info.name} belongs to no volume of its manifest")
    renamed = copy.copy(info)
    renamed.pax_headers = {k: v for k, v in info.pax_headers.items() if k not in ("path", "linkpath")}
    renamed.name = f"{into[volume]}/{relative}"
    if info.islnk():
        link_volume, _, link = info.linkname[len(VOLUME_PREFIX) :].partition("/")
        if link_volume != volume:
            raise refuse(path, f"member {info.name} links to another volume")
        renamed.linkname = f"{into[volume]}/{link}"
    return renamed


def _check_member(path: Path, info: tarfile.TarInfo, expected: dict[str, BackupMember], seen: set[str]) -> None:
    if not safe_name(info.name) or (info.islnk() and not safe_name(info.linkname)):
        raise refuse(path, f"member {info.name!r} has a path that would escape its folder")
    kind = member_type(info)
    member = expected.get(info.name)
    if member is None or kind != member.type or info.name in seen:
        raise refuse(path, f"member {info.name} is not in its manifest (a foreign or altered archive)")
    seen.add(info.name)


@contextmanager
def _nowhere() -> Iterator[None]:
    yield None


def integrity_problem(database: Path) -> str | None:
    """None when `PRAGMA integrity_check` says ok, else its first complaint."""
    if not database.is_file():
        return "missing"
    try:
        conn = sqlite3.connect(database)  # a scratch copy: its WAL, if any, may be applied
        try:
            row = conn.execute("PRAGMA integrity_check").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    return None if row and row[0] == "ok" else str(row[0] if row else "no answer")


def slot(content: bytes) -> bytes:
    """The manifest member, header and body, padded to its fixed slot (JSON allows trailing spaces)."""
    info = tarfile.TarInfo(MANIFEST_NAME)
    info.size, info.mode, info.mtime = RESERVED - tarfile.BLOCKSIZE, 0o600, 0
    header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
    assert len(header) == tarfile.BLOCKSIZE
    return header + content.ljust(info.size, b" ")


def fill_slot(path: Path, manifest: BackupManifest) -> bool:
    """Write the manifest into its slot; False when it does not fit."""
    content = manifest.model_dump_json().encode("utf-8")
    if len(content) > RESERVED - tarfile.BLOCKSIZE:
        return False
    with path.open("r+b") as raw:
        raw.write(slot(content))
        raw.flush()
        os.fsync(raw.fileno())
    return True


def rewrite(source: Path, target: Path, manifest: BackupManifest, gzip: bool) -> None:
    """Copy the archive with the manifest in front at its own size (and gzipped, by name)."""
    content = manifest.model_dump_json().encode("utf-8")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as raw, source.open("rb") as src_raw:
        with (
            tarfile.open(fileobj=src_raw, mode="r|") as src,
            tarfile.open(fileobj=raw, mode="w|gz" if gzip else "w|", format=tarfile.PAX_FORMAT) as out,
        ):
            info = tarfile.TarInfo(MANIFEST_NAME)
            info.size, info.mode = len(content), 0o600
            out.addfile(info, io.BytesIO(content))
            for member in src:
                if member.name == MANIFEST_NAME:
                    continue
                out.addfile(member, src.extractfile(member) if member.isreg() else None)
        raw.flush()
        os.fsync(raw.fileno())
