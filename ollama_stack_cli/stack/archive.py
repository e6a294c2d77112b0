"""The backup archive's format: member names, the manifest, and verifying a whole archive.

An archive is a tar (`.tar`, or gzipped by name) whose first member is the manifest
`ollama-stack-backup.json`: every other member's name, type, size and sha256. Home
files sit under `home/`, each volume under `volumes/<volume>/`. Verification reads
the archive once, as a stream (memory stays flat), and refuses anything it cannot
vouch for: a member that is missing, extra, changed, or whose name would escape.
"""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO

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
    """Reads through to a file object, hashing what passes (and optionally copying it)."""

    def __init__(self, source: IO[bytes], copy: IO[bytes] | None = None) -> None:
        self.source = source
        self.copy = copy
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.hash.update(data)
        self.size += len(data)
        if self.copy is not None:
            self.copy.write(data)
        return data


def refuse(path: Path, problem: str) -> StackError:
    return StackError(f"{path} cannot be restored: {problem}. Nothing was changed.", ARCHIVE_HINT, slug="bad_archive")


@contextmanager
def read_archive(path: Path) -> Iterator[tarfile.TarFile]:
    """The archive as a tar stream (gzip detected), with read errors as one clear refusal."""
    if not path.is_file():
        raise StackError(f"No backup archive at {path}.", "Check the path.", slug="bad_archive")
    try:
        with path.open("rb") as raw, tarfile.open(fileobj=raw, mode="r|*") as tar:
            yield tar
    except tarfile.ReadError as exc:
        if "unexpected end" in str(exc):
            raise refuse(path, "it is truncated (it ends in the middle of a member)") from None
        raise refuse(path, f"it is not a tar archive, or it is damaged ({exc})") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None:
            raise
        raise refuse(path, f"it is truncated or damaged ({exc or 'it ends too early'})") from None


def read_manifest(path: Path, tar: tarfile.TarFile) -> BackupManifest:
    first = tar.next()
    if first is None or first.name != MANIFEST_NAME or not first.isreg():
        raise refuse(path, f"it is not an ollama-stack backup (its first member is not {MANIFEST_NAME})")
    handle = tar.extractfile(first)
    assert handle is not None
    try:
        manifest = BackupManifest.model_validate_json(handle.read())
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


def verify_archive(path: Path, on_progress: object = None) -> BackupManifest:
    """Read the whole archive: every member listed, unchanged, safely named; the database sound.

    Raises a StackError naming the first problem; nothing is written anywhere but a
    temporary copy of the database for `PRAGMA integrity_check`.
    """
    with read_archive(path) as tar:
        manifest = read_manifest(path, tar)
        expected = {m.name: m for m in manifest.members}
        seen: set[str] = set()
        with tempfile.TemporaryDirectory(prefix="ollama-stack-verify-") as scratch:
            database = Path(scratch) / DATABASE
            while (info := tar.next()) is not None:  # not `for`: a stream's iteration starts over
                _check_member(path, info, expected, seen)
                member = expected[info.name]
                if member.type != "file":
                    continue
                handle = tar.extractfile(info)
                assert handle is not None
                wanted_db = manifest.database is not None and info.name in (
                    manifest.database,
                    f"{manifest.database}-wal",
                )
                target = database.with_name(DATABASE + info.name[len(manifest.database or "") :]) if wanted_db else None
                with target.open("wb") if target else _nowhere() as copy:
                    reader = HashingReader(handle, copy)
                    while reader.read(CHUNK):
                        pass
                if reader.size != member.size or reader.hash.hexdigest() != member.sha256:
                    raise refuse(path, f"member {info.name} does not match its checksum (the archive is damaged)")
            missing = sorted(set(expected) - seen)
            if missing:
                raise refuse(path, f"it is truncated: member {missing[0]} is missing")
            if manifest.database is not None:
                problem = integrity_problem(database)
                if problem:
                    raise refuse(
                        path, f"its database copy {manifest.database} fails PRAGMA integrity_check ({problem})"
                    )
    return manifest


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
