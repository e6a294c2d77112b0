"""Backup and restore on the real engine with the stub images (SPEC 13).

Data is put into the volumes with `docker run` of the stub; what the archive and the
volumes really hold afterwards is read back the same way. Faults are injected at the
CLI's pause points (SIGINT, SIGKILL), with a truncated or altered archive, and with a
full disk (a tiny tmpfs).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from .conftest import STUB_IMAGE, StackHome
from .test_safety import spawn, wait_paused

MANIFEST = "ollama-stack-backup.json"


def volume(home: StackHome, name: str = "open_webui_data") -> str:
    return f"{home.project}_{name}"


def in_volume(home: StackHome, script: str, name: str = "open_webui_data", extra: list[str] | None = None) -> str:
    """Run a shell script in the stub with the volume at /d; its output."""
    out = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "sh", "-v", f"{volume(home, name)}:/d", *(extra or []), STUB_IMAGE]
        + ["-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return out.stdout


def listing(home: StackHome, name: str = "open_webui_data") -> dict[str, str]:
    """Every file in the volume with its md5 (dot files too)."""
    out = in_volume(home, "cd /d && find . -type f -exec md5sum {} +", name)
    return {line.split(None, 1)[1]: line.split()[0] for line in out.splitlines()}


def seed(home: StackHome, tmp_path: Path) -> None:
    """A real SQLite database, an upload and a cache file in the data volume."""
    source = tmp_path / "seed"
    source.mkdir(exist_ok=True)
    db = sqlite3.connect(source / "webui.db")
    db.execute("create table chat (title text)")
    db.execute("insert into chat values ('kept across restore')")
    db.commit()
    db.close()
    in_volume(
        home,
        "cp /src/webui.db /d/ && mkdir -p /d/uploads /d/cache && echo report > /d/uploads/a.txt"
        " && echo scratch > /d/cache/embeddings && echo hidden > /d/.dotfile",
        extra=["-v", f"{source}:/src:ro"],
    )


@pytest.fixture
def stack_seeded(stack_home: StackHome, tmp_path: Path) -> StackHome:
    """A stack started once (volumes created), stopped, with data in its data volume."""
    assert stack_home.cli("start", "--platform", "cpu", "--timeout", "60").code == 0
    assert stack_home.cli("stop").code == 0
    seed(stack_home, tmp_path)
    return stack_home


def members(path: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(path) as tar:
        return tar.getmembers()


def manifest_of(path: Path) -> dict[str, Any]:
    with tarfile.open(path) as tar:
        first = tar.next()
        assert first is not None and first.name == MANIFEST
        handle = tar.extractfile(first)
        assert handle is not None
        return json.loads(handle.read())


def test_backup_writes_a_verified_archive_with_the_manifest_first(stack_seeded: StackHome, tmp_path: Path) -> None:
    archive = tmp_path / "out" / "b.tar"
    archive.parent.mkdir()
    result = stack_seeded.cli("backup", "--output", str(archive), "--json")
    assert result.code == 0, result.stderr
    report = result.json()
    assert report["verified"] is True and report["path"] == str(archive)
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert sorted(p.name for p in archive.parent.iterdir()) == ["b.tar"]  # no temp left
    names = [m.name for m in members(archive)]
    assert names[0] == MANIFEST
    assert {"home/.env", "home/.ollama-stack.json", "volumes/open_webui_data/webui.db"} <= set(names)
    assert "volumes/open_webui_data/uploads/a.txt" in names and "volumes/open_webui_data/.dotfile" in names
    assert not [n for n in names if "/cache" in n]
    manifest = manifest_of(archive)
    assert manifest["project"] == stack_seeded.project and manifest["database"] == "volumes/open_webui_data/webui.db"
    with tarfile.open(archive) as tar:
        for member in manifest["members"]:
            if member["type"] == "file":
                handle = tar.extractfile(member["name"])
                assert handle is not None
                assert hashlib.sha256(handle.read()).hexdigest() == member["sha256"], member["name"]
        env = tar.extractfile("home/.env")
        assert env is not None and env.read().decode() == stack_seeded.env_text()


def test_backup_leaves_the_models_volume_out_unless_asked(stack_seeded: StackHome, tmp_path: Path) -> None:
    in_volume(stack_seeded, "mkdir -p /d/models && echo weights > /d/models/blob", name="ollama_models")
    plain, full = tmp_path / "plain.tar", tmp_path / "full.tar.gz"
    assert stack_seeded.cli("backup", "--output", str(plain)).code == 0
    assert stack_seeded.cli("backup", "--output", str(full), "--include-models").code == 0
    assert not [m.name for m in members(plain) if "ollama_models" in m.name]
    assert "volumes/ollama_models/models/blob" in [m.name for m in members(full)]
    assert manifest_of(full)["volumes"] == ["open_webui_data", "ollama_models"]


def test_restore_puts_data_and_files_back_and_restarts_a_running_stack(stack_seeded: StackHome, tmp_path: Path) -> None:
    archive = tmp_path / "b.tar"
    assert stack_seeded.cli("backup", "--output", str(archive)).code == 0
    before, env_before = listing(stack_seeded), stack_seeded.env_text()
    in_volume(stack_seeded, "rm -rf /d/uploads /d/.dotfile && echo later > /d/new.txt && echo x > /d/webui.db")
    (stack_seeded.path / ".env").write_text(env_before + "EXTRA_AFTER_BACKUP=1\n")
    assert stack_seeded.cli("start", "--timeout", "60").code == 0

    refused = stack_seeded.cli("restore", str(archive))  # running, no terminal, no --yes
    assert refused.code == 2 and "--yes" in refused.stderr
    assert "new.txt" in "".join(listing(stack_seeded))

    running_ids = {c.id for c in stack_seeded.containers()}
    result = stack_seeded.cli("restore", str(archive), "--yes", "--json")
    assert result.code == 0, result.stderr
    assert not running_ids & {c.id for c in stack_seeded.containers()}  # stopped for the restore, started anew
    assert result.json()["started"] is True and result.json()["volumes"] == ["open_webui_data"]
    after = listing(stack_seeded)
    assert after == {k: v for k, v in before.items() if not k.startswith("./cache/")}
    assert stack_seeded.env_text().strip() == env_before.strip()
    assert stack_seeded.cli("status").code == 0  # running again


def test_restore_into_an_empty_home_of_another_project_is_the_migration_path(
    stack_seeded: StackHome, tmp_path: Path, docker_client: Any
) -> None:
    from .conftest import make_home

    archive = tmp_path / "b.tar"
    assert stack_seeded.cli("backup", "--output", str(archive)).code == 0
    other = make_home(tmp_path / "other", docker_client)
    try:
        (other.path / ".env").write_text(f"PROJECT_NAME={other.project}\n")  # a bare home elsewhere
        result = other.cli("restore", str(archive))
        assert result.code == 0, result.stderr
        assert f"comes from project {stack_seeded.project}" in result.stderr and other.project in result.stderr
        assert f"PROJECT_NAME={other.project}" in other.env_text()
        secret = next(line for line in stack_seeded.env_text().splitlines() if line.startswith("OLLAMA_PORT"))
        assert secret in other.env_text()
        assert "./uploads/a.txt" in listing(other)
        labels = docker_client.volumes.get(volume(other)).attrs["Labels"]
        assert labels["ollama-stack.installation"] == other.project
    finally:
        other.cleanup()


def rewrite(source: Path, target: Path, change: Any) -> None:
    """Copy an archive, letting `change(name, data, manifest)` alter members; the manifest is rewritten."""
    with tarfile.open(source) as tar:
        items = [(m, tar.extractfile(m).read() if m.isreg() else b"") for m in tar.getmembers()]  # type: ignore[union-attr]
    manifest = json.loads(items[0][1])
    items = change(items[1:], manifest)
    with tarfile.open(target, "w") as out:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        out.addfile(info, io.BytesIO(data))
        for member, content in items:
            out.addfile(member, io.BytesIO(content) if member.isreg() else None)


def escaping(name: str) -> Any:
    def change(items: list[Any], manifest: dict[str, Any]) -> list[Any]:
        info = tarfile.TarInfo(name)
        info.size = 4
        manifest["members"].append(
            {"name": name, "type": "file", "size": 4, "sha256": hashlib.sha256(b"evil").hexdigest()}
        )
        return [*items, (info, b"evil")]

    return change


def newer(items: list[Any], manifest: dict[str, Any]) -> list[Any]:
    manifest["format"] = 99
    return items


def unlisted(items: list[Any], manifest: dict[str, Any]) -> list[Any]:
    info = tarfile.TarInfo("volumes/open_webui_data/smuggled")
    info.size = 1
    return [*items, (info, b"x")]


def flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def offset_of(path: Path, name: str) -> int:
    with tarfile.open(path) as tar:
        return tar.getmember(name).offset_data


BAD = [
    "missing",
    "not-a-tar",
    "truncated",
    "flipped-byte",
    "dotdot",
    "absolute",
    "newer-format",
    "unlisted-member",
    "member-missing",
    "corrupt-database",
]


@pytest.mark.parametrize("case", BAD)
def test_a_bad_archive_is_refused_naming_the_problem_with_nothing_changed(
    stack_seeded: StackHome, tmp_path: Path, case: str
) -> None:
    good = tmp_path / "good.tar"
    assert stack_seeded.cli("backup", "--output", str(good)).code == 0
    bad = tmp_path / "bad.tar"
    expect = {
        "missing": "No backup archive",
        "not-a-tar": "not a tar archive",
        "truncated": "truncated",
        "flipped-byte": "volumes/open_webui_data/uploads/a.txt does not match its checksum",
        "dotdot": "would escape",
        "absolute": "would escape",
        "newer-format": "newer ollama-stack",
        "unlisted-member": "smuggled is not in its manifest",
        "member-missing": "member volumes/open_webui_data/uploads/a.txt is missing",
        "corrupt-database": "integrity_check",
    }[case]
    if case == "not-a-tar":
        bad.write_text("hello, I am not an archive\n" * 100)
    elif case == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 3 // 512 * 512 + 100])
    elif case == "flipped-byte":
        bad.write_bytes(good.read_bytes())
        flip(bad, offset_of(bad, "volumes/open_webui_data/uploads/a.txt"))
    elif case == "dotdot":
        rewrite(good, bad, escaping("volumes/open_webui_data/../../../etc/evil"))
    elif case == "absolute":
        rewrite(good, bad, escaping("/etc/evil"))
    elif case == "newer-format":
        rewrite(good, bad, newer)
    elif case == "unlisted-member":
        rewrite(good, bad, unlisted)
    elif case == "member-missing":  # a well-formed tar that ends early, at a member's boundary
        rewrite(good, bad, lambda items, manifest: [i for i in items if not i[0].name.endswith("/a.txt")])
    elif case == "corrupt-database":

        def corrupt(items: list[Any], manifest: dict[str, Any]) -> list[Any]:
            out = []
            for info, content in items:
                if info.name.endswith("webui.db"):
                    content = content[:100] + b"\xff" * 200 + content[300:]
                    entry = next(m for m in manifest["members"] if m["name"] == info.name)
                    entry["sha256"] = hashlib.sha256(content).hexdigest()
                out.append((info, content))
            return out

        rewrite(good, bad, corrupt)
    before, env_before = listing(stack_seeded), stack_seeded.env_text()
    in_volume(stack_seeded, "echo marker > /d/marker")
    result = stack_seeded.cli("restore", str(bad), "--yes")
    assert result.code == 1, result.stderr
    assert expect in result.stderr
    assert "Traceback" not in result.stderr
    assert listing(stack_seeded) == {**before, "./marker": listing(stack_seeded)["./marker"]}
    assert stack_seeded.env_text() == env_before


def stage_folders(home: StackHome) -> list[str]:
    return [name for name in in_volume(home, "ls -a /d").split() if name.startswith(".ollama-stack-")]


def test_a_damaged_archive_never_stops_the_running_stack(stack_seeded: StackHome, tmp_path: Path) -> None:
    in_volume(stack_seeded, "head -c 3000000 /dev/urandom > /d/uploads/big.bin")  # megabytes sent before the flaw
    bad = tmp_path / "bad.tar"
    assert stack_seeded.cli("backup", "--output", str(bad)).code == 0
    last = [m for m in members(bad) if m.isreg()][-1]
    assert last.offset_data > offset_of(bad, "volumes/open_webui_data/uploads/big.bin")
    flip(bad, last.offset_data + 10)
    assert stack_seeded.cli("start", "--timeout", "60").code == 0
    running = {c.id for c in stack_seeded.containers() if c.status == "running"}
    before = listing(stack_seeded)
    result = stack_seeded.cli("restore", str(bad), "--yes")
    assert result.code == 1, result.stderr
    assert f"{last.name} does not match its checksum" in result.stderr and "Nothing was changed" in result.stderr
    assert {c.id for c in stack_seeded.containers() if c.status == "running"} == running  # never stopped
    assert listing(stack_seeded) == before
    assert stage_folders(stack_seeded) == []  # what was unpacked beside the data is gone


def test_disk_full_while_writing_removes_the_partial_archive(stack_seeded: StackHome, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root")
    in_volume(stack_seeded, "head -c 2000000 /dev/urandom > /d/uploads/big.bin")
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(small)], check=True)
    try:
        result = stack_seeded.cli("backup", "--output", str(small / "b.tar"))
        assert result.code == 1
        assert "disk filled up" in result.stderr and "partial archive was removed" in result.stderr
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_ctrl_c_during_backup_removes_the_partial_archive(stack_seeded: StackHome, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    proc = spawn(stack_seeded, "backup", "--output", str(out / "b.tar"), pause_at="backup:volumes")
    wait_paused(stack_seeded, proc, "backup:volumes")
    assert list(out.iterdir())  # the partial archive exists now
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "partial archive was removed" in stderr
    assert list(out.iterdir()) == []


def start_restore(home: StackHome, archive: Path, point: str) -> subprocess.Popen[str]:
    proc = spawn(home, "restore", str(archive), "--yes", pause_at=point)
    wait_paused(home, proc, point)
    return proc


@pytest.fixture
def changed_after_backup(stack_seeded: StackHome, tmp_path: Path) -> tuple[StackHome, Path, dict[str, str], str]:
    """A backup, then different data and .env: what a rollback must give back."""
    archive = tmp_path / "b.tar"
    assert stack_seeded.cli("backup", "--output", str(archive)).code == 0
    in_volume(stack_seeded, "rm -rf /d/uploads && echo later > /d/new.txt")
    (stack_seeded.path / ".env").write_text(stack_seeded.env_text() + "EXTRA_AFTER_BACKUP=1\n")
    assert stack_seeded.cli("start", "--timeout", "60").code == 0
    return stack_seeded, archive, listing(stack_seeded), stack_seeded.env_text()


def test_ctrl_c_during_restore_puts_the_old_data_back(changed_after_backup: Any) -> None:
    home, archive, before, env_before = changed_after_backup
    proc = start_restore(home, archive, "restore:files:end")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "put the previous data back" in stderr
    assert listing(home) == before
    assert home.env_text() == env_before
    assert home.cli("status").code == 0  # brought back up
    assert not home.client.containers.list(all=True, filters={"label": f"ollama-stack.helper={home.project}"})


def killed_then_started(home: StackHome, archive: Path, point: str) -> Any:
    """`kill -9` the restore at `point`, then run the next command (`start`)."""
    proc = start_restore(home, archive, point)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    result = home.cli("start", "--timeout", "60")
    assert result.code == 0, result.stderr
    return result


def test_kill_9_mid_restore_is_rolled_back_by_the_next_command(changed_after_backup: Any) -> None:
    home, archive, before, env_before = changed_after_backup
    result = killed_then_started(home, archive, "restore:swap:end")
    assert "Found an interrupted `restore`" in result.stderr and "put the previous data back" in result.stderr
    assert listing(home) == before
    assert home.env_text() == env_before


def test_kill_9_after_unpacking_drops_the_stage_and_never_stopped_the_stack(changed_after_backup: Any) -> None:
    home, archive, before, env_before = changed_after_backup
    running = {c.id for c in home.containers() if c.status == "running"}
    result = killed_then_started(home, archive, "restore:stage:end")
    assert "Found an interrupted `restore`" in result.stderr
    assert listing(home) == before and stage_folders(home) == []
    assert home.env_text() == env_before
    assert {c.id for c in home.containers() if c.status == "running"} == running


def test_kill_9_while_committing_is_finished_by_the_next_command(changed_after_backup: Any) -> None:
    home, archive, _, _ = changed_after_backup
    result = killed_then_started(home, archive, "restore:commit")
    assert "all but finished" in result.stderr
    after = listing(home)
    assert "./uploads/a.txt" in after and "./new.txt" not in after
    assert not [name for name in after if ".ollama-stack-stash-" in name]
    assert "EXTRA_AFTER_BACKUP" not in home.env_text()


def test_backup_and_restore_say_how_many_bytes_in_a_pipe(stack_seeded: StackHome, tmp_path: Path) -> None:
    in_volume(stack_seeded, "head -c 6000000 /dev/urandom > /d/uploads/big.bin")
    archive = tmp_path / "b.tar"
    written = stack_seeded.cli("backup", "--output", str(archive))
    assert written.code == 0, written.stderr
    assert "open_webui_data: 4.2 MB so far" in written.stderr  # the first report, at 4 MiB read
    restored = stack_seeded.cli("restore", str(archive), "--yes")
    assert restored.code == 0, restored.stderr
    size = archive.stat().st_size / 1e6
    assert f" MB of {size:.1f} MB" in restored.stderr  # b.tar: <read> of <archive size>


def test_on_a_machine_without_the_stacks_images_restore_pulls_open_webuis_first(
    stack_seeded: StackHome, tmp_path: Path, docker_client: Any, registry: str
) -> None:
    import uuid

    from .conftest import make_home, publish

    archive, foreign = tmp_path / "b.tar", tmp_path / "elsewhere.tar"
    assert stack_seeded.cli("backup", "--output", str(archive)).code == 0

    def from_elsewhere(items: list[Any], manifest: dict[str, Any]) -> list[Any]:
        for image in manifest["images"]:  # images this engine never had
            image["id"] = "sha256:" + "0" * 64
        return items

    rewrite(archive, foreign, from_elsewhere)
    tag = f"t{uuid.uuid4().hex[:8]}"
    images = tuple(f"{registry}/{tag}-{name}:test" for name in ("ollama", "webui", "proxy"))
    for reference in images:
        publish(docker_client, registry, reference.split("/", 1)[1].rsplit(":", 1)[0], "1")  # pushed, not kept
    other = make_home(tmp_path / "other", docker_client, images=images)  # type: ignore[arg-type]
    try:
        result = other.cli("restore", str(foreign))
        assert result.code == 0, result.stderr
        assert "No image of the stack is on this engine yet: pulling Open WebUI's" in result.stderr
        assert docker_client.images.get(images[1])  # pulled
        assert "./uploads/a.txt" in listing(other)
    finally:
        other.cleanup()


def test_a_home_with_nothing_in_it_is_not_backed_up_as_an_empty_archive(tmp_path: Path) -> None:
    from .conftest import ENTRY_POINT

    empty = tmp_path / "nobody"
    result = subprocess.run(
        [*ENTRY_POINT, "--home", str(empty), "backup", "--output", str(tmp_path / "b.tar")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert "Nothing to back up" in result.stderr and "Hint:" in result.stderr
    assert not (tmp_path / "b.tar").exists()


def test_a_full_disk_while_unpacking_is_said_plainly_with_nothing_changed(
    stack_seeded: StackHome, tmp_path: Path, docker_client: Any
) -> None:
    in_volume(stack_seeded, "head -c 12000000 /dev/urandom > /d/uploads/big.bin")
    archive = tmp_path / "b.tar"
    assert stack_seeded.cli("backup", "--output", str(archive)).code == 0
    env_before = stack_seeded.env_text()
    docker_client.volumes.get(volume(stack_seeded)).remove()
    labels = {
        "ollama-stack.installation": stack_seeded.project,
        "com.docker.compose.project": stack_seeded.project,
        "com.docker.compose.volume": "open_webui_data",
    }
    docker_client.volumes.create(  # a volume on a 4 MB disk
        volume(stack_seeded), labels=labels, driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=4m"}
    )
    result = stack_seeded.cli("restore", str(archive), "--yes")
    assert result.code == 1, result.stderr
    assert "The engine's disk filled up while unpacking b.tar" in result.stderr
    assert "Nothing was changed" in result.stderr
    assert "Hint: Free space" in result.stderr
    assert stack_seeded.env_text() == env_before
    assert not docker_client.containers.list(all=True, filters={"label": f"ollama-stack.helper={stack_seeded.project}"})
