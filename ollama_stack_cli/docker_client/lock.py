"""The home's lock: one changing operation at a time, released by the kernel if the process dies."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import ExitCode, StackError

LOCK_FILE = ".lock"
LOCK_INFO_FILE = ".lock.json"


class _HomeLock:
    """An exclusive OS lock on `<home>/.lock`, released by the kernel if we die.

    POSIX uses flock directly (what filelock does there, minus a ~40 ms import);
    other systems use filelock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._portable: Any = None

    def try_acquire(self) -> bool:
        if os.name == "posix":
            import fcntl

            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StackError(
                    f"Cannot open the lock file {self.path}: {exc.strerror}.",
                    "Check who owns the home (a command once run with sudo?), or use another --home.",
                ) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        from filelock import FileLock, Timeout

        self._portable = self._portable or FileLock(str(self.path))
        try:
            self._portable.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def acquire(self, timeout: float, poll: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        elif self._portable is not None:
            self._portable.release()


@contextmanager
def operation_lock(
    home: Path,
    command: str,
    timeout: float,
    on_wait: Callable[[str], None],
) -> Iterator[None]:
    """Hold the home's lock for a changing command.

    An OS file lock is released by the kernel when its holder dies, so a `kill -9`'d
    command never blocks the next one. Who holds it is written beside it so a waiter
    can say who it is waiting for.
    """
    lock = _HomeLock(home / LOCK_FILE)
    info_path = home / LOCK_INFO_FILE
    if not lock.try_acquire():
        holder = describe_holder(home)
        on_wait(f"Waiting for {holder} to finish (up to {timeout:.0f} s)...")
        if not lock.acquire(timeout):
            raise StackError(
                f"Another ollama-stack operation holds the lock on {home}: {describe_holder(home)}.",
                "Wait for it to finish, or pass --lock-timeout with a longer wait.",
                code=ExitCode.LOCKED,
                slug="locked",
            )
    try:
        info = {"pid": os.getpid(), "command": command, "since": datetime.now(timezone.utc).isoformat()}
        info_path.write_text(json.dumps(info), encoding="utf-8")
        yield
    finally:
        info_path.unlink(missing_ok=True)
        lock.release()


@contextmanager
def lock_if_free(home: Path, command: str) -> Iterator[bool]:
    """Take the lock only if nobody holds it; never wait (for read-only commands)."""
    if not home.is_dir():
        yield False
        return
    lock = _HomeLock(home / LOCK_FILE)
    try:
        free = lock.try_acquire()
    except OSError:
        free = False
    if not free:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def describe_holder(home: Path) -> str:
    info_path = home / LOCK_INFO_FILE
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        since = datetime.fromisoformat(info["since"])
        age = int(time.time() - since.timestamp())
        return f"pid {info['pid']} (`{info['command']}`, for {age} s)"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


# --- the operation journal --------------------------------------------------
