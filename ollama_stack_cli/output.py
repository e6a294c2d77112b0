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
            self._out = Console(highlight=False, width=width)
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
        return not self.json_mode and not self.quiet and self.err.is_terminal

    def progress(self, message: str) -> None:
        if not self.quiet:
            self.err.print(message, markup=False)

    def warn(self, message: str) -> None:
        if not self.quiet:
            self.err.print(f"[yellow]Warning:[/yellow] {_escape(message)}")

    def result(self, message: str) -> None:
        """A human result line (stdout); silent in JSON mode, where the document says it."""
        if not self.json_mode and not self.quiet:
            self.out.print(message)

    def emit(self, document: BaseModel | dict[str, Any]) -> None:
        if hasattr(document, "model_dump"):
            data = document.model_dump(mode="json")
        else:
            data = document
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
        sys.stdout.flush()

    def error(self, exc: StackError) -> None:
        if self.json_mode:
            from .schemas import ErrorBody, ErrorDocument

            body = ErrorBody(code=exc.slug, exit_code=int(exc.code), message=exc.message, hint=exc.hint)
            self.emit(ErrorDocument(error=body))
            return
        self.err.print(f"[bold red]Error:[/bold red] {_escape(exc.message)}")
        if self.verbose:
            for line in exc.details:
                self.err.print(f"  {_escape(line)}", style="dim")
        if exc.hint:
            self.err.print(f"[dim]Hint:[/dim] {_escape(exc.hint)}")


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
