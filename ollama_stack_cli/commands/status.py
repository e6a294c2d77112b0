"""`status`: what runs, how healthy it is, where to reach it."""

from __future__ import annotations

from .. import stack
from ..output import Output
from ..schemas import StackStatus


def run(ctx: stack.Context) -> StackStatus:
    # Repairs a crashed operation only when nobody is working: status never waits.
    note = stack.repair_if_idle(ctx)
    result = stack.build_status(ctx)
    if note:
        result.warnings.insert(0, note)
    return result


def render(result: StackStatus, output: Output) -> None:
    if output.json_mode:
        output.emit(result)
        return
    render_table(result, output)


def render_table(result: StackStatus, output: Output) -> None:
    from rich.table import Table

    # --quiet drops progress and warnings, not the result asked for.
    summary = "running" if result.running else "not running"
    if result.running:
        summary += ", healthy" if result.healthy else ", not healthy yet"
    engine = f", engine {result.engine.source} {result.engine.host}" if result.engine else ""
    output.out.print(
        f"[bold]{result.project}[/bold]: {summary}  "
        f"[dim](platform {result.platform or 'unknown'}{engine}, home {result.home})[/dim]"
    )
    if result.tunnel:
        output.out.print(f"The ports are on the engine's loopback; reach them from here with:\n  {result.tunnel}")
    colors = {"healthy": "green", "unhealthy": "red", "starting": "yellow", "none": "dim"}
    rows = [
        {
            "SERVICE": service.name,
            "STATE": service.state,
            "HEALTH": service.health,
            "URL": service.url or "-",
            "UPTIME": short_uptime(service.uptime),
            "IMAGE": service.image or "-",
        }
        for service in result.services
    ]
    # Columns in order of priority: the least useful go first when the terminal is narrow.
    columns = ["SERVICE", "STATE", "HEALTH", "URL", "UPTIME", "IMAGE"]
    while len(columns) > 3 and _width(columns, rows) > output.out.width:
        columns.pop()
    order: list[str] = [c for c in ("SERVICE", "STATE", "HEALTH", "URL", "IMAGE", "UPTIME") if c in columns]
    table = Table(box=None, pad_edge=False)
    for column in order:
        table.add_column(column, no_wrap=True)
    for row in rows:
        cells = dict(row, HEALTH=f"[{colors[row['HEALTH']]}]{row['HEALTH']}[/]")
        table.add_row(*(cells[column] for column in order))
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


def _width(columns: list[str], rows: list[dict[str, str]]) -> int:
    """The table's natural width: widest cell per column, two spaces between columns."""
    return sum(max(len(c), *(len(r[c]) for r in rows)) for c in columns) + 2 * (len(columns) - 1)


_UPTIME_UNITS = {"second": "s", "minute": "m", "hour": "h", "day": "d", "week": "w", "month": "mo", "year": "y"}


def short_uptime(uptime: str | None) -> str:
    """Docker's "About an hour", "3 days", "Less than a second" as "1h", "3d", "<1s"."""
    if not uptime:
        return "-"
    words = uptime.lower().split()
    if words[:3] == ["less", "than", "a"]:
        return "<1s"
    if len(words) >= 2:
        count = {"a": "1", "an": "1"}.get(words[-2], words[-2])
        unit = _UPTIME_UNITS.get(words[-1].rstrip("s"))
        if unit and count.isdigit():
            return count + unit
    return uptime
