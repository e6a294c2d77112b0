"""`extensions list/info/enable/disable/start/stop/restart/sync`: thin, over the stack layer."""

from __future__ import annotations

from .. import stack
from ..errors import ExitCode, StackError
from ..output import Output
from ..schemas import ContainerInfo, ExtensionInfo, ExtensionList, ExtensionStatus, ToolServerSync


def _listed(ctx: stack.Context) -> list[ContainerInfo] | None:
    """The engine's containers; None when it is unreachable (a files-only command still works)."""
    try:
        return stack.containers(ctx)
    except StackError as exc:
        if exc.code != ExitCode.DOCKER_UNAVAILABLE:
            raise
        return None


def _statuses(ctx: stack.Context, output: Output) -> list[ExtensionStatus]:
    """Extension states from the engine; without one, still list them (state unknown)."""
    try:
        return stack.extension_statuses(ctx, stack.containers(ctx))
    except StackError as exc:
        if exc.code != ExitCode.DOCKER_UNAVAILABLE:
            raise
        output.warn(f"{exc.message} States are shown as unknown.")
        return stack.statuses_without_engine(ctx)


def _status_of(ctx: stack.Context, name: str, output: Output) -> ExtensionStatus:
    found = next((s for s in _statuses(ctx, output) if s.name == name), None)
    return found or ExtensionStatus(name=name, enabled=False, state="absent", error="its folder is gone")


# --- read-only --------------------------------------------------------------


def list_(ctx: stack.Context, output: Output) -> ExtensionList:
    return ExtensionList(extensions=_statuses(ctx, output))


def render_list(result: ExtensionList, output: Output) -> None:
    if output.json_mode:
        output.emit(result)
        return
    if not result.extensions:
        output.result("No extensions found. Write your own in <home>/extensions/<name>/ (see the README).")
        return
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "ENABLED", "STATE", "VERSION", "SOURCE", "DESCRIPTION"):
        table.add_column(column, no_wrap=column != "DESCRIPTION")
    from rich.markup import escape

    for ext in result.extensions:
        description = escape(ext.description) if not ext.error else f"[red]{escape(ext.error)}[/red]"
        table.add_row(
            ext.name, "yes" if ext.enabled else "no", ext.state, ext.version or "-", ext.source or "-", description
        )
    output.out.print(table)


def info(ctx: stack.Context, name: str, output: Output) -> ExtensionInfo:
    extension = ctx.extension(name)
    return stack.extension_info(ctx, extension, _status_of(ctx, name, output))


def render_info(info: ExtensionInfo, output: Output) -> None:
    if output.json_mode:
        output.emit(info)
        return
    out = output.out
    out.print(f"[bold]{info.name}[/bold] {info.version or ''}  [dim]({info.source})[/dim]")
    if info.description:
        out.print(info.description, markup=False)
    if info.error:
        out.print("invalid: " + info.error, markup=False, style="red")
    rows = [
        ("enabled", "yes" if info.enabled else "no"),
        ("state", info.state),
        ("path", info.path),
        ("containers", "yes (its own compose project)" if info.has_compose else "no (runs inside the proxy)"),
    ]
    if info.mcp is not None:
        target = info.mcp.url or " ".join([info.mcp.command or "", *info.mcp.args])
        rows += [("transport", info.mcp.transport), ("server", target), ("platforms", ", ".join(info.platforms or []))]
        if info.env:
            rows.append(("needs .env keys", ", ".join(info.env)))
    for key, value in rows:
        out.print(f"  {key + ':':<17}{value}", markup=False)


# --- changing (the caller holds the lock) -------------------------------------


def enable(ctx: stack.Context, name: str, output: Output) -> ExtensionStatus:
    extension = ctx.extension(name)
    stack.require_ready(ctx, extension, ctx.state.platform)
    if name in ctx.state.enabled_extensions:
        output.progress(f"{name} is already enabled; nothing to do.")
        return _status_of(ctx, name, output)
    with stack.operation(ctx, f"extensions enable {name}", ["files"], output.progress, docker=False) as journal:
        with journal.step("files"):
            ctx.set_enabled([*ctx.state.enabled_extensions, name])
            stack.sync_proxy_config(ctx)
    listed = _listed(ctx) or []
    if stack.service_running(ctx, listed, "mcp_proxy"):
        output.progress(f"Enabled {name}: the proxy serves its tools at /{name} (it reloads its config by itself).")
    else:
        output.progress(f"Enabled {name}: the proxy will serve its tools at /{name} when the stack starts.")
    if extension.has_compose:
        output.progress(f"Start its containers with: ollama-stack extensions start {name}")
    _offer_in_webui(ctx, output, listed)
    return _status_of(ctx, name, output)


def disable(ctx: stack.Context, name: str, output: Output) -> ExtensionStatus:
    if name not in ctx.state.enabled_extensions:
        ctx.extension(name)  # unknown names get the did-you-mean
        output.progress(f"{name} is not enabled; nothing to do.")
        return _status_of(ctx, name, output)
    listed = stack.containers(ctx)
    with stack.operation(ctx, f"extensions disable {name}", ["stop", "files"], output.progress) as journal:
        with journal.step("stop"):
            stopped = stack.stop_extension(ctx, name, listed)
            if stopped:
                output.progress(f"Stopped {name} ({stopped} container(s); volumes kept).")
        with journal.step("files"):
            ctx.set_enabled([n for n in ctx.state.enabled_extensions if n != name])
            stack.sync_proxy_config(ctx)
        # mcpo's hot reload adds servers but never drops a removed one: restart it to let go.
        if stack.restart_proxy(ctx, listed):
            output.progress("Restarted the MCP proxy so it drops the extension.")
    output.progress(f"Disabled {name}: removed from the proxy.")
    _offer_in_webui(ctx, output, listed)
    return _status_of(ctx, name, output)


def start(ctx: stack.Context, name: str, output: Output) -> ExtensionStatus:
    extension = ctx.extension(name)
    if name not in ctx.state.enabled_extensions:
        raise StackError(
            f"Extension {name!r} is not enabled.",
            f"Enable it first: ollama-stack extensions enable {name}",
            slug="not_enabled",
        )
    stack.require_ready(ctx, extension, ctx.platform)
    if not extension.has_compose:
        output.progress(f"{name} has no containers: it runs inside the MCP proxy while enabled.")
        return _status_of(ctx, name, output)
    ctx.ensure_env()  # never hand compose a placeholder secret
    with stack.operation(ctx, f"extensions start {name}", ["compose_up"], output.progress) as journal:
        with journal.step("compose_up"):
            output.progress(f"Starting extension {name}...")
            stack.start_extension(ctx, extension, ctx.platform)
    return _status_of(ctx, name, output)


def stop(ctx: stack.Context, name: str, output: Output) -> ExtensionStatus:
    listed = stack.containers(ctx)
    if name not in ctx.extensions and not stack.extension_containers(ctx, listed, name):
        ctx.extension(name)  # raises with a did-you-mean
    count = stack.stop_extension(ctx, name, listed)
    output.progress(f"Stopped {name} ({count} container(s); volumes kept)." if count else f"{name} is not running.")
    return _status_of(ctx, name, output)


# --- Open WebUI's tool servers ----------------------------------------------------


def _offer_in_webui(ctx: stack.Context, output: Output, listed: list[ContainerInfo]) -> None:
    """After an enable or disable: change Open WebUI now if it runs, else at the next start."""
    if not stack.service_running(ctx, listed, "webui"):
        output.progress("Open WebUI gets the change at the next `ollama-stack start`.")
        return
    warning = report_tool_servers(stack.sync_tool_servers(ctx), output)
    if warning:
        output.warn(warning)


def sync(ctx: stack.Context, output: Output) -> ToolServerSync:
    """`extensions sync`: make Open WebUI offer exactly the enabled extensions, now."""
    if not stack.service_running(ctx, stack.containers(ctx), "webui"):
        raise StackError(
            "Open WebUI is not running, so its tool servers cannot be changed now.",
            "Run `ollama-stack start`: it brings them in line once Open WebUI answers.",
            slug="not_running",
        )
    result = stack.sync_tool_servers(ctx)
    warning = report_tool_servers(result, output)
    if warning:
        raise StackError(result.detail, SYNC_FIX, slug="openwebui_sync_failed")
    return result


SYNC_FIX = "Once Open WebUI answers (`ollama-stack status`), run `ollama-stack extensions sync`."


def report_tool_servers(result: ToolServerSync, output: Output) -> str | None:
    """Say what changed in Open WebUI; return the warning to show when nothing could be changed."""
    if result.outcome == "failed":
        return f"Open WebUI's tool servers were not updated: {result.detail} {SYNC_FIX}"
    changes = [
        f"{verb} {', '.join(names)}"
        for verb, names in (("added", result.added), ("updated", result.updated), ("removed", result.removed))
        if names
    ]
    if changes:
        output.progress(f"Open WebUI tool servers: {'; '.join(changes)}.")
    return None


def render_sync(result: ToolServerSync, output: Output) -> None:
    if output.json_mode:
        output.emit(result)
        return
    held = sorted(set(result.held + result.added) - set(result.removed))
    output.result(f"Open WebUI offers the tool servers of: {', '.join(held) or 'no extension'}.")


def render_status(result: ExtensionStatus, output: Output) -> None:
    if output.json_mode:
        output.emit(result)
        return
    output.result(f"{result.name}: {'enabled' if result.enabled else 'disabled'}, {result.state}")
