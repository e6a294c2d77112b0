"""Lock, journal, rollback and recovery under kill -9, Ctrl-C and concurrent runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from .conftest import ENTRY_POINT, StackHome


def spawn(home: StackHome, *args: str, pause_at: str | None = None, **env: str) -> subprocess.Popen[str]:
    full_env = {**os.environ, **env}
    full_env.pop("OLLAMA_STACK_HOME", None)
    if pause_at:
        full_env["OLLAMA_STACK_TEST_PAUSE_AT"] = pause_at
    return subprocess.Popen(
        [*ENTRY_POINT, "--home", str(home.path), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
    )


def wait_paused(home: StackHome, proc: subprocess.Popen[str], point: str) -> None:
    marker = home.path / ".paused"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if marker.exists() and marker.read_text() == point:
            marker.unlink()
            return
        if proc.poll() is not None:
            pytest.fail(f"exited before pausing at {point}: {proc.communicate()}")
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"never paused at {point}")


def home_files(home: StackHome) -> dict[str, str]:
    names = (".env", ".ollama-stack.json", "mcpo/config.json")
    return {n: (home.path / n).read_text() for n in names if (home.path / n).exists()}


def assert_restored(home: StackHome, before: dict[str, str]) -> None:
    """Files as they were before the start, but for the first run's generated secrets.

    Those are made before the journaled steps and kept on purpose: a failed first
    start's hint points at the .env, which must then exist with its settings.
    """
    after = home_files(home)
    secrets = ("WEBUI_SECRET_KEY=", "MCP_PROXY_API_KEY=")
    env_lines = after.pop(".env").splitlines()
    assert [line for line in env_lines if not line.startswith(secrets)] == before[".env"].splitlines()
    assert sum(line.startswith(secrets) for line in env_lines) == 2
    assert after == {name: text for name, text in before.items() if name != ".env"}


@pytest.mark.parametrize("point", ["start:files", "start:files:end", "start:compose_up", "start:compose_up:end"])
def test_kill_9_during_start_is_repaired_by_the_next_command(stack_home: StackHome, point: str) -> None:
    before = home_files(stack_home)
    proc = spawn(stack_home, "start", "--platform", "cpu", pause_at=point)
    wait_paused(stack_home, proc, point)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (stack_home.path / "journal.json").exists()

    status = stack_home.cli("status", "--json")

    assert status.code == 3, status.stderr
    note = status.json()["warnings"][0]
    assert "Found an interrupted `start`" in note and "rolled it back" in note
    assert stack_home.containers() == [] and stack_home.networks() == []
    assert_restored(stack_home, before)
    assert not (stack_home.path / "journal.json").exists()
    assert stack_home.cli("stop").code == 0
    assert stack_home.cli("start", "--platform", "cpu", "--timeout", "60").code == 0


def test_kill_9_after_containers_exist_removes_only_what_start_created(stack_home: StackHome, docker_client) -> None:
    volume = docker_client.volumes.create(
        f"{stack_home.project}_open_webui_data", labels={"ollama-stack.installation": stack_home.project}
    )
    proc = spawn(stack_home, "start", "--platform", "cpu", pause_at="start:compose_up:end")
    wait_paused(stack_home, proc, "start:compose_up:end")
    assert len(stack_home.containers()) == 3
    proc.kill()
    proc.wait()

    repaired = stack_home.cli("stop")

    assert repaired.code == 0, repaired.stderr
    assert "removed 3 container(s)" in repaired.stderr
    assert stack_home.containers() == [] and stack_home.networks() == []
    assert volume.name in [v.name for v in stack_home.volumes()]


def test_kill_9_during_stop_is_finished_by_the_next_command(stack_running: StackHome) -> None:
    proc = spawn(stack_running, "stop", pause_at="stop:compose_down")
    wait_paused(stack_running, proc, "stop:compose_down")
    proc.kill()
    proc.wait()

    status = stack_running.cli("status", "--json")

    assert status.code == 3
    assert "finished stopping it" in status.json()["warnings"][0]
    assert stack_running.containers() == [] and stack_running.networks() == []


def test_ctrl_c_while_changing_rolls_back_and_exits_130(stack_home: StackHome) -> None:
    before = home_files(stack_home)
    proc = spawn(stack_home, "start", "--platform", "cpu", pause_at="start:compose_up:end")
    wait_paused(stack_home, proc, "start:compose_up:end")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130, stderr
    assert "Rolled back" in stderr and "Traceback" not in stderr
    assert stack_home.containers() == [] and stack_home.networks() == []
    assert_restored(stack_home, before)
    assert not (stack_home.path / "journal.json").exists()


def test_ctrl_c_while_waiting_for_health_leaves_the_stack_running(stack_home: StackHome) -> None:
    # Paused where the health wait begins: compose is done and the journal closed, at a known moment.
    proc = spawn(stack_home, "start", "--platform", "cpu", "--timeout", "120", pause_at="start:health")
    wait_paused(stack_home, proc, "start:health")
    assert not (stack_home.path / "journal.json").exists()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 130, stderr
    assert "keeps running" in stderr and "Traceback" not in stderr
    assert len(stack_home.containers()) == 3
    assert {c.status for c in stack_home.containers()} == {"running"}
    assert not (stack_home.path / "journal.json").exists()


def test_two_starts_at_once_make_one_stack(stack_home: StackHome) -> None:
    procs = [spawn(stack_home, "start", "--platform", "cpu", "--timeout", "60") for _ in range(2)]
    results = [p.communicate(timeout=180) for p in procs]
    codes = sorted(p.returncode for p in procs)

    assert codes in ([0, 0], [0, 5]), results
    assert all("Traceback" not in err for _, err in results)
    assert len(stack_home.containers()) == 3
    assert any("Waiting for" in err for _, err in results), results


def test_held_lock_names_its_holder_and_exits_5(stack_home: StackHome) -> None:
    from filelock import FileLock

    lock = FileLock(str(stack_home.path / ".lock"))
    lock.acquire()
    try:
        info = {"pid": 4242, "command": "update", "since": "2026-01-01T00:00:00+00:00"}
        (stack_home.path / ".lock.json").write_text(json.dumps(info))
        blocked = stack_home.cli("--lock-timeout", "1", "start", "--platform", "cpu")
        read_only = stack_home.cli("status")
    finally:
        lock.release()

    assert blocked.code == 5
    assert "pid 4242 (`update`" in blocked.stderr
    assert read_only.code == 3
    assert "(up to 1 s)" in blocked.stderr, blocked.stderr  # the option reached the lock, not the default 10 s
    assert stack_home.containers() == []


def test_corrupt_journal_is_set_aside_and_reported(stack_home: StackHome) -> None:
    (stack_home.path / "journal.json").write_text("{ not json")

    status = stack_home.cli("status", "--json")

    assert status.code == 3, status.stderr
    assert "corrupt operation journal" in status.json()["warnings"][0]
    assert not (stack_home.path / "journal.json").exists()
    assert [p.name for p in stack_home.path.glob("journal.json.corrupt-*")]
    assert stack_home.cli("start", "--platform", "cpu", "--timeout", "60").code == 0


def test_recovery_never_overwrites_a_file_edited_after_the_crash(stack_home: StackHome) -> None:
    state_before = (stack_home.path / ".ollama-stack.json").exists()
    proc = spawn(stack_home, "start", "--platform", "cpu", pause_at="start:compose_up")
    wait_paused(stack_home, proc, "start:compose_up")
    proc.kill()
    proc.wait()
    env_file = stack_home.path / ".env"
    edited = env_file.read_text() + "MY_LATER_EDIT=keep-me\n"
    env_file.write_text(edited)

    status = stack_home.cli("status", "--json")

    assert status.code == 3, status.stderr
    note = status.json()["warnings"][0]
    assert "left .env as edited since" in note
    assert env_file.read_text() == edited
    assert (stack_home.path / ".ollama-stack.json").exists() == state_before
