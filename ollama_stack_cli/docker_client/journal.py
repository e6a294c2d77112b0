"""The operation journal file: what an operation is doing, written before and as it changes things (SPEC 7)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from ..schemas import (
    JournalEntry,
    JournalStep,
    PreState,
)

JOURNAL_FILE = "journal.json"
TEST_PAUSE_ENV = "OLLAMA_STACK_TEST_PAUSE_AT"


class CorruptJournal(Exception):
    """The journal file exists but cannot be read; it has been moved aside."""

    def __init__(self, moved_to: Path, reason: str) -> None:
        super().__init__(reason)
        self.moved_to = moved_to
        self.reason = reason


class Journal:
    """Write-ahead record of one changing operation.

    Written before the first change with the pre-state needed to undo it; each step
    is marked running, then done; the file is removed when the operation closes. A
    journal found at the start of a command (under the lock) belongs to a process
    that died mid-operation.
    """

    def __init__(self, home: Path, entry: JournalEntry) -> None:
        self.home = home
        self.entry = entry

    @classmethod
    def begin(
        cls,
        home: Path,
        operation: str,
        project: str,
        steps: list[str],
        pre_state: PreState,
        platform: str | None,
        tracked: Sequence[str] = (),
    ) -> Journal:
        import uuid

        entry = JournalEntry(
            id=uuid.uuid4().hex[:12],
            operation=operation,
            project=project,
            platform=platform,  # type: ignore[arg-type]
            pid=os.getpid(),
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            steps=[JournalStep(name=name) for name in steps],
            pre_state=pre_state,
            tracked=list(tracked),
        )
        journal = cls(home, entry)
        journal._write()
        return journal

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Mark a step running for its duration, then done.

        A step's "done" is written together with the next step's "running" (each write
        is fsynced, and a start has three steps): rollback undoes running and done steps
        alike, so nothing is lost. The last step's "done" is written at once, so a
        journal whose steps all finished says so.
        """
        self.entry.step(name).status = "running"
        self._write()
        pause_for_tests(self.home, f"{self.entry.operation}:{name}")
        yield
        pause_for_tests(self.home, f"{self.entry.operation}:{name}:end")
        self.entry.step(name).status = "done"
        self.entry.written = {path: file_digest(self.home / path) for path in self.entry.tracked}
        if name == self.entry.steps[-1].name:
            self._write()

    def expect_files(self, files: dict[str, str]) -> None:
        """Record the sha256 of home files the next step is about to write (written with its start).

        A rollback restores a tracked file only if it is exactly as the operation wrote
        it; a step that writes files it did not write before says so up front.
        """
        import hashlib

        for name, text in files.items():
            self.entry.written[name] = hashlib.sha256(text.encode("utf-8")).hexdigest()

    def close(self) -> None:
        (self.home / JOURNAL_FILE).unlink(missing_ok=True)

    def _write(self) -> None:
        from ..config import atomic_write

        atomic_write(self.home / JOURNAL_FILE, self.entry.model_dump_json(indent=2), mode=0o600)

    @staticmethod
    def has_open(home: Path) -> bool:
        return (home / JOURNAL_FILE).exists()

    @staticmethod
    def find_open(home: Path) -> JournalEntry | None:
        """The journal left by an operation, or None. A corrupt one is set aside."""
        from pydantic import ValidationError

        path = home / JOURNAL_FILE
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return JournalEntry.model_validate_json(raw)
        except ValidationError as exc:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
            moved = path.with_name(f"{JOURNAL_FILE}.corrupt-{stamp}")
            os.replace(path, moved)
            raise CorruptJournal(moved, str(exc.errors()[0]["msg"])) from None


def file_digest(path: Path) -> str | None:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def pause_for_tests(home: Path, point: str) -> None:
    """Test-only hook: stop at a named step so a test can kill -9 or interrupt us there.

    Set OLLAMA_STACK_TEST_PAUSE_AT to e.g. `start:compose_up`; the process writes
    `<home>/.paused` with the point's name, then sleeps until it is killed.
    """
    if os.environ.get(TEST_PAUSE_ENV) != point:
        return
    (home / ".paused").write_text(point, encoding="utf-8")
    while True:
        time.sleep(0.1)
