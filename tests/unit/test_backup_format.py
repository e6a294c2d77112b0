"""The backup archive's format rules and the restored home files, without an engine (SPEC 13)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from ollama_stack_cli import config
from ollama_stack_cli.errors import StackError
from ollama_stack_cli.stack import archive


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("volumes/open_webui_data/webui.db", True),
        ("home/.env", True),
        ("volumes/open_webui_data/../../etc/passwd", False),
        ("/etc/passwd", False),
        ("..", False),
        ("volumes\\..\\x", False),
        ("", False),
    ],
)
def test_only_names_that_cannot_escape_are_safe(name: str, safe: bool) -> None:
    assert archive.safe_name(name) is safe


def test_the_manifest_slot_is_filled_in_place_and_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "a.tar"
    with path.open("wb") as raw:
        raw.write(archive.slot(b""))
        with tarfile.open(fileobj=raw, mode="w|") as tar:
            info = tarfile.TarInfo("home/.env")
            tar.addfile(info)
    manifest = archive.BackupManifest(
        format=1,
        cli_version="x",
        project="p",
        created="now",
        volumes=[],
        members=[
            {
                "name": "home/.env",
                "type": "file",
                "size": 0,
                "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            }
        ],  # type: ignore[list-item]
    )
    assert archive.fill_slot(path, manifest)
    assert archive.verify_archive(path).project == "p"


def test_a_restored_env_keeps_this_homes_project_name_in_place() -> None:
    files = config.restored_home_files("A=1\nPROJECT_NAME=theirs\nB=2\n", None, "ours")
    assert files == {config.ENV_FILE: "A=1\nPROJECT_NAME=ours\nB=2\n"}
    assert config.restored_home_files("A=1\n", None, "ours")[config.ENV_FILE] == "PROJECT_NAME=ours\nA=1\n"


def test_a_restored_state_file_is_validated() -> None:
    with pytest.raises(StackError, match="state file is not valid"):
        config.restored_home_files(None, json.dumps({"schema_version": "nope"}), "ours")


def write_archive(path: Path, files: dict[str, bytes], gzip: bool = False) -> None:
    """An archive as `backup` writes it: the manifest first, then the members it lists."""
    import hashlib
    import io

    members = [
        {"name": name, "type": "file", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in files.items()
    ]
    manifest = {"format": 1, "cli_version": "x", "project": "p", "created": "now", "volumes": ["v"]}
    body = json.dumps({**manifest, "members": members}).encode()
    with tarfile.open(path, "w:gz" if gzip else "w") as tar:
        for name, data in {archive.MANIFEST_NAME: body, **files}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_one_pass_keeps_no_list_of_the_headers_it_read(tmp_path: Path) -> None:
    """Memory stays flat whatever the member count (tarfile would keep every header)."""
    path = tmp_path / "many.tar"
    write_archive(path, {f"volumes/v/f{i}": b"x" for i in range(300)})
    with archive.read_archive(path) as reader:
        seen = 0
        while reader.next() is not None:
            seen += 1
            assert len(reader.tar.members) <= 1  # type: ignore[attr-defined]
    assert seen == 301


@pytest.mark.parametrize("gzip", [False, True])
def test_staging_renames_into_each_volumes_folder_and_ends_the_tar_only_when_all_is_sound(
    tmp_path: Path, gzip: bool
) -> None:
    """What the engine gets: the volume members renamed, home files held back; a flaw raises before the end."""
    import io

    path = tmp_path / ("a.tar.gz" if gzip else "a.tar")
    write_archive(path, {"home/.env": b"A=1\n", "volumes/v/big": b"b" * 3_000_000, "volumes/v/d/small": b"s"})
    sent = b"".join(archive.staged_volumes(path, {"v": "v/.stage"}))
    with tarfile.open(fileobj=io.BytesIO(sent)) as tar:
        names = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert names == {"v/.stage/big": b"b" * 3_000_000, "v/.stage/d/small": b"s"}

    damaged = tmp_path / "damaged.tar"
    write_archive(damaged, {"home/.env": b"A=1\n", "volumes/v/big": b"b" * 3_000_000, "volumes/v/d/small": b"s"})
    data = bytearray(damaged.read_bytes())
    data[data.rindex(b"s" + b"\0" * 100)] = ord("t")  # the last member's byte, after megabytes were sent
    damaged.write_bytes(bytes(data))
    chunks = []
    with pytest.raises(StackError, match="volumes/v/d/small does not match its checksum"):
        for chunk in archive.staged_volumes(damaged, {"v": "v/.stage"}):
            chunks.append(chunk)
    assert sum(map(len, chunks)) > 3_000_000 and not b"".join(chunks).endswith(b"\0" * 1024)
