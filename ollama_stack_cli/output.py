"""How results reach the user: rich for people, one JSON document for scripts.

With --json, stdout carries exactly one JSON document; everything else (progress,
warnings, logs) goes to stderr. rich is imported only when something human is shown,
which keeps `status --json` fast.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console

    from .errors import StackError


@dataclass
class Output:
    json_mode: bool = False
    quiet: bool = False
    verbose: bool = False
    _out: Console | None = None
    _err: Console | None = None

    @property
    def out(self) -> Console:
        """Console for results (stdout)."""
        if self._out is None:
            from rich.console import Console

            # Piped output is read by programs and wide logs: don't wrap tables at 80 columns.
            width = None if sys.stdout.isatty() else 200
            self._out = Console(file=_Stdout(), highlight=False, width=width)  # type: ignore[arg-type]
        return self._out

    @property
    def err(self) -> Console:
        """Console for progress, warnings and errors (stderr)."""
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, highlight=False, soft_wrap=True)
        return self._err

    @property
    def interactive(self) -> bool:
        return not self.json_mode and not self.quiet and _stderr_is_terminal()

    def progress(self, message: str) -> None:
        if self.quiet:
            return
        if _stderr_is_terminal():
            self.err.print(message, markup=False)
        else:  # a pipe or a log file: plain lines, and no rich import (~40 ms)
            _plain(message)

    def warn(self, message: str) -> None:
        if self.quiet:
            return
        if _stderr_is_terminal():
            self.err.print(f"[yellow]Warning:[/yellow] {_escape(message)}")
        else:
            _plain(f"Warning: {message}")

    def result(self, message: str) -> None:
        """A human result line (stdout, rich markup allowed); silent in JSON mode."""
        if self.json_mode:  # --quiet drops progress and warnings, never the result asked for
            return
        if sys.stdout.isatty():
            self.out.print(message)
        else:  # piped: plain text without loading rich
            _Stdout().write(_strip_markup(message) + "\n")

    def emit(self, document: BaseModel | dict[str, Any]) -> None:
        if hasattr(document, "model_dump"):
            data = document.model_dump(mode="json")
        else:
            data = document
        stdout = _Stdout()
        stdout.write(json.dumps(data, indent=2) + "\n")
        stdout.flush()

    def error(self, exc: StackError) -> None:
        if self.json_mode:
            from .schemas import ErrorBody, ErrorDocument

            body = ErrorBody(code=exc.slug, exit_code=int(exc.code), message=exc.message, hint=exc.hint)
            self.emit(ErrorDocument(error=body))
            return
        if not _stderr_is_terminal():
            _plain(f"Error: {exc.message}")
            if self.verbose:
                for line in exc.details:
                    _plain(f"  {line}")
            if exc.hint:
                _plain(f"Hint: {exc.hint}")
            return
        self.err.print(f"[bold red]Error:[/bold red] {_escape(exc.message)}")
        if self.verbose:
            for line in exc.details:
                self.err.print(f"  {_escape(line)}", style="dim")
        if exc.hint:
            self.err.print(f"[dim]Hint:[/dim] {_escape(exc.hint)}")


class _Stdout:
    """sys.stdout, where a closed pipe (`status | head -1`) means the reader is done, not an error.

    The rest of the output goes to /dev/null and the command ends with its own exit code.
    """

    def write(self, text: str) -> int:
        try:
            return sys.stdout.write(text)
        except BrokenPipeError:
            _stdout_gone()
            return len(text)

    def flush(self) -> None:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            _stdout_gone()

    def __getattr__(self, name: str) -> Any:
        return getattr(sys.stdout, name)


def _stdout_gone() -> None:
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _strip_markup(text: str) -> str:
    """Drop rich tags like [bold] or [/] (our messages escape literal brackets as \\[)."""
    import re

    return re.sub(r"(?<!\\)\[/?[a-z ]*\]", "", text).replace("\\[", "[")


def _stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _plain(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def confirm(output: Output, question: str, yes: bool, action: str) -> bool:
    """Ask on a terminal; `--yes` answers; without a terminal, refuse rather than guess."""
    if yes:
        return True
    if not sys.stdin.isatty() or output.json_mode:
        from .errors import ExitCode, StackError

        raise StackError(
            f"{action} needs confirmation, and there is no terminal to ask.",
            "Pass --yes to confirm.",
            code=ExitCode.USAGE,
            slug="confirmation_required",
        )
    from rich.prompt import Confirm

    return Confirm.ask(question, console=output.err, default=False)


class TransferDisplay:
    """Download progress people trust: a bar per item on a terminal (bytes, rate, time left);
    elsewhere (a pipe, --json) plain lines on stderr, at most one per item every `plain_every` s."""

    def __init__(self, output: Output, plain_every: float = 1.0, say_done: bool = True) -> None:
        self.output = output
        self.plain_every = plain_every
        self.say_done = say_done  # False when the caller prints its own summary line
        self.bars: Any = None
        self.tasks: dict[str, Any] = {}
        self.last_line: dict[str, float] = {}

    def __enter__(self) -> TransferDisplay:
        if self.output.interactive:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.output.err,
            )
            self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bars is not None:  # also on Ctrl-C: the bar is stopped and the cursor shown again
            self.bars.__exit__(None, None, None)

    def update(self, key: str, completed: int, total: int, done: bool = False) -> None:
        if self.bars is not None:
            task = self.tasks.get(key)
            if task is None:
                task = self.tasks[key] = self.bars.add_task(key, total=None)
            if done and not total:  # nothing to download: no empty bar left behind
                self.bars.remove_task(task)
                if self.say_done:
                    self.bars.console.print(f"{key}: pulled (its layers were already here)")
            elif done:
                self.bars.update(task, completed=total, total=total)
            else:
                self.bars.update(task, completed=completed, total=total or None)
            return
        import time

        now = time.monotonic()
        if done:
            if self.say_done:
                size = human_size(total) if total else "its layers were already here"
                self.output.progress(f"  {key}: pulled ({size})")
        elif (total or completed) and now - self.last_line.get(key, -self.plain_every) >= self.plain_every:
            self.last_line[key] = now
            of = f" of {human_size(total)}" if total else " so far"  # a volume's size is not known ahead
            self.output.progress(f"  {key}: {human_size(completed)}{of}")


def human_size(count: int) -> str:
    """Bytes as people read them (decimal units, like Ollama and Docker)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count} B"
