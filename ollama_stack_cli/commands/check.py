"""`check`: is this machine ready to run the stack, and if not, what to do about it.

Every check is independent: a failing one (Docker down, a corrupt file) is reported
and the others still run. Read-only: nothing is created or changed.
"""

from __future__ import annotations

from pathlib import Path

from .. import stack
from ..output import Output
from ..schemas import CheckReport


def run(home: Path, platform: str | None) -> CheckReport:
    return stack.run_checks(home, platform)


def render(report: CheckReport, output: Output) -> None:
    if output.json_mode:
        output.emit(report)
        return
    marks = {"pass": "[green]pass[/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}
    for check in report.checks:
        output.out.print(f"{marks[check.status]}  {check.name:<22} {_escape(check.detail)}")
        if check.fix and check.status != "pass":
            output.out.print(f"      {'':<22} [dim]fix: {_escape(check.fix)}[/dim]")
    verdict = "ready" if report.ok else "not ready"
    output.out.print(f"\n[bold]{verdict}[/bold] (platform {report.platform})")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
