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
