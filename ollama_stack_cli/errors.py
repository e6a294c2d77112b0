"""The one error type the CLI raises on purpose, and the exit codes scripts rely on.

Every expected failure becomes a `StackError` with a message, a hint and an exit
code; `main.py` is the only place that turns it into output.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented in the README; scripts branch on these."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_RUNNING = 3
    DOCKER_UNAVAILABLE = 4
    LOCKED = 5
    INTERRUPTED = 130


class StackError(Exception):
    """A failure the user can act on: one line of message, one line of hint."""

    def __init__(
        self,
        message: str,
        hint: str | None = None,
        *,
        code: ExitCode = ExitCode.FAILED,
        slug: str = "failed",
        details: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code
        self.slug = slug
        self.details = details or []


def docker_unavailable(message: str, hint: str) -> StackError:
    return StackError(message, hint, code=ExitCode.DOCKER_UNAVAILABLE, slug="docker_unavailable")
