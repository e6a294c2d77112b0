"""`status`: what runs, how healthy it is, where to reach it."""

from __future__ import annotations

from pathlib import Path

from .. import stack
from ..docker_client import Engine, Journal, describe_holder, lock_if_free
from ..output import Output
from ..schemas import StackStatus


def run(home: Path) -> StackStatus:
    ctx = stack.load(home)
    engine = Engine()
    notes = []
    if Journal.has_open(home):
        # Repair a crashed operation only when nobody is working: status never waits.
        with lock_if_free(home, "status") as free:
            if free:
                note = stack.recover(home, engine)
                ctx = stack.load(home)
            else:
                note = f"Another operation is in progress: {describe_holder(home)}."
            if note:
                notes.append(note)
    result = stack.build_status(ctx, engine)
    result.warnings[:0] = notes
    return result


def render(result: StackStatus, output: Output) -> None:
    if output.json_mode:
        output.emit(result)
        return
    render_table(result, output)


def render_table(result: StackStatus, output: Output) -> None:
    from rich.table import Table

    if output.quiet:
        return
    summary = "running" if result.running else "not running"
    if result.running:
        summary += ", healthy" if result.healthy else ", not healthy yet"
    output.out.print(
        f"[bold]{result.project}[/bold]: {summary}  "
        f"[dim](platform {result.platform or 'unknown'}, home {result.home})[/dim]"
    )
    table = Table(box=None, pad_edge=False)
    for column in ("SERVICE", "STATE", "HEALTH", "URL", "IMAGE", "UPTIME"):
        table.add_column(column, no_wrap=column in ("SERVICE", "URL", "IMAGE"))
    colors = {"healthy": "green", "unhealthy": "red", "starting": "yellow", "none": "dim"}
    for service in result.services:
        table.add_row(
            service.name,
            service.state,
            f"[{colors[service.health]}]{service.health}[/]",
            service.url or "-",
            service.image or "-",
            service.uptime or "-",
        )
    output.out.print(table)
    if result.extensions:
        ext_table = Table(box=None, pad_edge=False)
        for column in ("EXTENSION", "ENABLED", "STATE", "DESCRIPTION"):
            ext_table.add_column(column, no_wrap=column != "DESCRIPTION")
        from rich.markup import escape

        for ext in result.extensions:
            description = escape(ext.error or ext.description or "-")
            ext_table.add_row(ext.name, "yes" if ext.enabled else "no", ext.state, description)
        output.out.print()
        output.out.print(ext_table)
    for warning in result.warnings:
        output.warn(warning)
