"""Backup and restore of a stack on the second engine, over ssh, tcp and TLS (SPEC 13, 14).

The volume data moves through that engine's archive endpoints over the engine's own
transport; the archive lands on this machine's disk. The first engine must never see
any of it: no container, volume, network or helper of the project, not even briefly
(its event stream for the test's time window is read too).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import ENTRY_POINT, STUB_IMAGE, Result
from tests.integration.test_backup import manifest_of

from .conftest import SSH_ALIAS, RemoteHome, SecondEngine

START = ("start", "--platform", "cpu", "--timeout", "90")
MEMBER = "volumes/open_webui_data/"
BIG = 64 * (1 << 20) + 12345  # many of the CLI's 1 MiB chunks, and a partial one
FLAT = 24 * (1 << 10)  # KiB: what backup or restore may hold above `status`; far less than BIG
# The installed entry point, run in a process that reports its peak memory (KiB) as it leaves
# (the CLI ends with os._exit). VmHWM, not ru_maxrss: that one keeps the high-water mark of the
# forked copy of pytest that exec'd the process.
_MEASURED = (
    "import os, runpy, sys; leave = os._exit\n"
    "def measured(code):\n"
    "    with open('/proc/self/status') as status:\n"
    "        peak = next(line.split()[1] for line in status if line.startswith('VmHWM:'))\n"
    "    sys.stderr.write(f'\\nPEAK_RSS {peak}\\n'); sys.stderr.flush(); leave(code)\n"
    "os._exit = measured\n"
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def _transport(engine: SecondEngine, name: str) -> dict[str, str]:
    if name == "ssh":
        return {"DOCKER_HOST": f"ssh://{SSH_ALIAS}"}
    if name == "tcp":
        return {"DOCKER_HOST": f"tcp://127.0.0.1:{engine.tcp_port}"}
    return {
        "DOCKER_HOST": f"tcp://127.0.0.1:{engine.tls_port}",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(engine.client_certs),
    }


def _volume(home: RemoteHome) -> dict[str, dict[str, str]]:
    return {f"{home.project}_open_webui_data": {"bind": "/d", "mode": "rw"}}


def _probe_labels(home: RemoteHome) -> dict[str, str]:
    return {"ostest.remote-probe": home.project}


def _write(home: RemoteHome, script: str) -> None:
    """A shell script in the stub on the second engine, the project's data volume at /d."""
    home.engine.client.containers.run(
        STUB_IMAGE, ["-c", script], entrypoint="sh", volumes=_volume(home), labels=_probe_labels(home), remove=True
    )


def _md5(home: RemoteHome, relative: str) -> str:
    """A file's md5 in the data volume on the second engine, read through its archive endpoint.

    (Not `docker run ... cat`: a short-lived container's output read back after it exits
    can come back empty.)
    """
    probe = home.engine.client.containers.create(STUB_IMAGE, volumes=_volume(home), labels=_probe_labels(home))
    try:
        chunks, _ = probe.get_archive(f"/d/{relative}")
        stream: Any = _Chunks(chunks)
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            info = tar.next()
            assert info is not None and info.isreg(), relative
            return _digest(tar.extractfile(info))
    finally:
        probe.remove(force=True)


class _Chunks:
    """A readable file over an iterator of byte chunks (the SDK's streamed archive)."""

    def __init__(self, chunks: Any) -> None:
        self.chunks, self.pending = iter(chunks), b""

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self.pending) < size:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.pending += chunk
        data, self.pending = (self.pending, b"") if size < 0 else (self.pending[:size], self.pending[size:])
        return data


def _digest(handle: Any) -> str:
    assert handle is not None
    digest = hashlib.md5()
    while block := handle.read(1 << 20):
        digest.update(block)
    return digest.hexdigest()


def _measured(home: RemoteHome, *args: str, **env: str) -> tuple[Result, int]:
    """The real CLI as a user runs it, and its peak resident memory in KiB."""
    full_env = {**os.environ, **home.engine.env(**env)}
    full_env.pop("OLLAMA_STACK_HOME", None)
    assert len(ENTRY_POINT) == 1, "the installed console script is needed to measure it"
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURED, ENTRY_POINT[0], "--home", str(home.home.path), *args],
        capture_output=True, text=True, env=full_env, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    stderr, _, peak = proc.stderr.rpartition("\nPEAK_RSS ")
    assert peak.strip().isdigit(), proc.stderr
    return Result(proc.returncode, proc.stdout, stderr), int(peak)


def _local_traces(home: RemoteHome, since: float) -> list[str]:
    """Anything of the project on the first engine: objects now, and events since the test began."""
    local, project = home.home, home.project
    found = [f"container {c.name}" for c in local.containers()]
    found += [f"volume {v.name}" for v in local.volumes()] + [f"network {n.name}" for n in local.networks()]
    helpers = local.client.containers.list(all=True, filters={"label": f"ollama-stack.helper={project}"})
    found += [f"helper {c.name}" for c in helpers]
    for event in local.client.events(since=int(since) - 1, until=int(time.time()) + 1, decode=True):
        attributes = (event.get("Actor") or {}).get("Attributes") or {}
        if project in json.dumps(attributes) or project in str((event.get("Actor") or {}).get("ID", "")):
            found.append(f"event {event.get('Type')} {event.get('Action')} {attributes.get('name', '')}")
    return found


@pytest.mark.parametrize("transport", ["ssh", "tcp", "tls"])
def test_backup_and_restore_on_a_remote_engine(remote_home: RemoteHome, tmp_path: Path, transport: str) -> None:
    began = time.time()
    env = _transport(remote_home.engine, transport)
    started = remote_home.cli(*START, **env)
    assert started.code == 0, started.stderr
    assert len(remote_home.on_second()) == 3 and remote_home.home.containers() == []
    marker = f"marker {remote_home.project} {transport}\n"
    _write(
        remote_home,
        f"mkdir -p /d/uploads && printf '{marker}' > /d/uploads/marker.txt && printf hidden > /d/.dotfile"
        f" && head -c {BIG} /dev/urandom > /d/uploads/big.bin",
    )
    before = {name: _md5(remote_home, name) for name in ("uploads/marker.txt", ".dotfile", "uploads/big.bin")}
    assert before["uploads/marker.txt"] == hashlib.md5(marker.encode()).hexdigest()

    archive = tmp_path / "out" / "remote.tar"
    archive.parent.mkdir()
    _, baseline = _measured(remote_home, "status", "--json", **env)
    backed_up, backup_peak = _measured(remote_home, "backup", "--output", str(archive), "--json", **env)

    assert backed_up.code == 0, backed_up.stderr
    assert backup_peak - baseline < FLAT, (backup_peak, baseline)  # streamed, not held
    assert backed_up.json()["verified"] is True and backed_up.json()["volumes"] == ["open_webui_data"]
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    assert sorted(p.name for p in archive.parent.iterdir()) == ["remote.tar"]  # no temp name left
    manifest = manifest_of(archive)
    assert manifest["project"] == remote_home.project
    entries = {m["name"]: m for m in manifest["members"]}
    assert entries[MEMBER + "uploads/marker.txt"]["sha256"] == hashlib.sha256(marker.encode()).hexdigest()
    assert entries[MEMBER + "uploads/big.bin"]["size"] == BIG
    assert MEMBER + ".dotfile" in entries
    with tarfile.open(archive) as tar:
        for name, md5 in before.items():
            assert _digest(tar.extractfile(MEMBER + name)) == md5, name
    helpers = {"label": f"ollama-stack.helper={remote_home.project}"}
    assert remote_home.engine.client.containers.list(all=True, filters=helpers) == []  # gone on the second engine too

    removed = remote_home.cli("uninstall", "--remove-volumes", "--yes", **env)
    assert removed.code == 0, removed.stderr
    assert remote_home.volumes_on_second() == [] and remote_home.on_second() == []

    restored, restore_peak = _measured(remote_home, "restore", str(archive), "--yes", "--json", **env)

    assert restored.code == 0, restored.stderr
    assert restore_peak - baseline < FLAT, (restore_peak, baseline)
    assert restored.json()["volumes"] == ["open_webui_data"]
    assert {name: _md5(remote_home, name) for name in before} == before
    started_again = remote_home.cli(*START, **env)
    assert started_again.code == 0, started_again.stderr
    status = remote_home.cli("status", "--json", **env)
    assert status.code == 0 and status.json()["healthy"], status.stdout
    assert len(remote_home.on_second()) == 3
    assert _md5(remote_home, "uploads/marker.txt") == before["uploads/marker.txt"]  # the started stack kept it

    assert _local_traces(remote_home, began) == []


def _archive_length(home: RemoteHome) -> int:
    """How long the engine's tar stream of the data volume is (what `backup` reads)."""
    probe = home.engine.client.containers.create(STUB_IMAGE, volumes=_volume(home), labels=_probe_labels(home))
    try:
        chunks, _ = probe.get_archive("/d")
        return sum(len(chunk) for chunk in chunks)
    finally:
        probe.remove(force=True)


def test_backup_over_ssh_when_the_volume_stream_ends_on_the_tar_readers_record(
    remote_home: RemoteHome, tmp_path: Path
) -> None:
    # Python's tar reader takes 10240-byte records from the engine's answer and stops at
    # the end-of-archive block. When the stream is a whole number of records, it never reads
    # the answer's last (empty) chunk; over ssh the one connection serves the next request
    # too, so that answer must be finished first, or the next call fails.
    env = _transport(remote_home.engine, "ssh")
    assert remote_home.cli(*START, **env).code == 0
    _write(remote_home, "mkdir -p /d/uploads && printf chat > /d/uploads/c.txt")
    # Each file adds a 512-byte header and its data in 512-byte blocks.
    missing = (-(_archive_length(remote_home) + 512)) % 10240
    _write(remote_home, f"head -c {missing} /dev/zero > /d/p")
    assert _archive_length(remote_home) % 10240 == 0

    archive = tmp_path / "b.tar"
    result = remote_home.cli("backup", "--output", str(archive), **env)

    assert result.code == 0, result.stderr
    assert MEMBER + "uploads/c.txt" in {m["name"] for m in manifest_of(archive)["members"]}
    helpers = {"label": f"ollama-stack.helper={remote_home.project}"}
    assert remote_home.engine.client.containers.list(all=True, filters=helpers) == []


def test_a_backup_refused_mid_stream_over_ssh_says_why_and_leaves_nothing(
    remote_home: RemoteHome, tmp_path: Path
) -> None:
    # The stub's webui has no python3, so a database in a running stack's volume cannot be
    # copied consistently: the backup stops in the middle of the engine's answer. Over ssh
    # the helper must still be removed through that engine, and the reason must not turn
    # into "cannot connect" (exit 4).
    env = _transport(remote_home.engine, "ssh")
    assert remote_home.cli(*START, **env).code == 0
    _write(remote_home, "head -c 3000000 /dev/urandom > /d/webui.db")  # refused at its header: 3 MB unread

    archive = tmp_path / "b.tar"
    result = remote_home.cli("backup", "--output", str(archive), "--json", **env)

    assert result.code == 1, result.stderr
    assert result.json()["error"]["code"] == "no_consistent_copy"
    assert list(tmp_path.glob("*b.tar*")) == []
    helpers = {"label": f"ollama-stack.helper={remote_home.project}"}
    assert remote_home.engine.client.containers.list(all=True, filters=helpers) == []
