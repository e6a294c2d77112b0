"""logs: follow (and interrupt it), --since, and an extension's own logs."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from .conftest import ENTRY_POINT, StackHome
from .test_extensions import add_extension


def service_container(home: StackHome, service: str) -> Any:
    [container] = [c for c in home.containers() if c.labels["com.docker.compose.service"] == service]
    return container


def log_line(container: Any, text: str) -> None:
    """Make the container's main process log one line, as the server itself would."""
    code, _ = container.exec_run(["sh", "-c", f"echo {text} > /proc/1/fd/1"])
    assert code == 0


def read_until(proc: subprocess.Popen[bytes], needle: str, seen: bytearray, limit: float = 60) -> None:
    """Read the process's stdout until `needle` shows up (fails after `limit` s, or if it exits first)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + limit
    while needle.encode() not in seen:
        assert time.monotonic() < deadline, f"never saw {needle!r} in {bytes(seen)[-2000:]!r}"
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk or needle.encode() in seen, f"exited (code {proc.poll()}) before {needle!r}: {bytes(seen)!r}"
            seen += chunk


def follow(home: StackHome, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **home.extra_env}
    env.pop("OLLAMA_STACK_HOME", None)
    return subprocess.Popen(
        [*ENTRY_POINT, "--home", str(home.path), "logs", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,  # its own process group, like a job at a terminal
    )


@pytest.mark.parametrize("whom", ["group", "cli"])
def test_logs_follow_streams_new_lines_until_interrupted(stack_running: StackHome, whom: str) -> None:
    webui = service_container(stack_running, "webui")
    proc = follow(stack_running, "webui", "-f", "--tail", "5")
    try:
        seen = bytearray()
        read_until(proc, "stub: serving", seen)  # the existing lines first
        marker = f"ostest-followed-{uuid.uuid4().hex[:8]}"
        log_line(webui, marker)
        read_until(proc, marker, seen)  # then a line written after it started: it follows
        assert proc.poll() is None
        # Ctrl-C at a terminal reaches the whole foreground group; `kill -INT` only the CLI.
        if whom == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert proc.returncode == 130, stderr
    assert b"Traceback" not in stderr


def test_logs_since_drops_older_lines(stack_running: StackHome) -> None:
    webui = service_container(stack_running, "webui")
    old, new = (f"ostest-{name}-{uuid.uuid4().hex[:8]}" for name in ("old", "new"))
    log_line(webui, old)
    [stamp] = [
        line.split(" ", 1)[0] for line in webui.logs(timestamps=True).decode().splitlines() if line.endswith(old)
    ]
    # The engine's own time stamp of the old line, plus a microsecond: the old line is before it.
    when = datetime.strptime(stamp[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
    since = (when + timedelta(microseconds=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    log_line(webui, new)

    recent = stack_running.cli("logs", "webui", "--since", since, "--tail", "all")
    everything = stack_running.cli("logs", "webui", "--tail", "all")
    future = stack_running.cli("logs", "--since", "2999-01-01T00:00:00Z", "--tail", "all")

    assert recent.code == 0, recent.stderr
    assert new in recent.stdout and old not in recent.stdout, recent.stdout
    assert "stub: serving" not in recent.stdout
    assert old in everything.stdout and new in everything.stdout
    assert future.code == 0 and "stub:" not in future.stdout and "ostest-" not in future.stdout, future.stdout


def test_logs_of_an_extension_are_its_own(stack_running: StackHome) -> None:
    home = stack_running
    add_extension(home, "echo")
    assert home.cli("extensions", "enable", "echo").code == 0
    assert home.cli("extensions", "start", "echo").code == 0
    [echo] = [c for c in home.containers() if c.labels.get("ollama-stack.extension") == "echo"]
    marker = f"ostest-echo-{uuid.uuid4().hex[:8]}"
    log_line(echo, marker)

    ext = home.cli("logs", "echo", "--tail", "all")
    core = home.cli("logs", "--tail", "all")

    assert ext.code == 0, ext.stderr
    assert marker in ext.stdout and "stub: serving" in ext.stdout
    assert marker not in core.stdout and "stub: serving" in core.stdout

    assert home.cli("extensions", "stop", "echo").code == 0
    stopped = home.cli("logs", "echo")
    assert stopped.code == 3 and "Extension echo is not running" in stopped.stderr, stopped.stderr
