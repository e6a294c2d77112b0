"""`extensions list/info/enable/disable/start/stop/restart`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import config, extensions, stack
from ..docker_client import Engine, find_compose
from ..errors import ExitCode, StackError
from ..output import Output
from ..schemas import ContainerInfo, Extension, ExtensionList, ExtensionStatus, Platform, ToolServerSync


def _statuses(home: Path, output: Output) -> list[ExtensionStatus]:
    """Extension states from the engine; without one, still list them (state unknown)."""
    ctx = stack.load(home)
    try:
        containers = Engine().containers()
    except StackError as exc:
        if exc.code != ExitCode.DOCKER_UNAVAILABLE:
            raise
        output.warn(f"{exc.message} States are shown as unknown.")
        statuses = stack.extension_statuses(ctx, [])
        for status in statuses:
            if status.state not in ("invalid", "missing"):
                status.state = "unknown"
        return statuses
    return stack.extension_statuses(ctx, containers)


def _status_of(home: Path, name: str, output: Output) -> ExtensionStatus:
    found = next((s for s in _statuses(home, output) if s.name == name), None)
    return found or ExtensionStatus(name=name, enabled=False, state="absent", error="its folder is gone")


# --- read-only --------------------------------------------------------------


def list_(home: Path, output: Output) -> ExtensionList:
    return ExtensionList(extensions=_statuses(home, output))


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
    if not output.quiet:
        output.out.print(table)


def info(home: Path, name: str, output: Output) -> dict[str, Any]:
    extension = extensions.get(home, name)
    status = _status_of(home, name, output)
    document: dict[str, Any] = {"name": extension.name}
    if extension.manifest is not None:
        document.update(extension.manifest.model_dump(mode="json"))
    document.update(
        enabled=status.enabled,
        state=status.state,
        source=extension.source,
        path=extension.path,
        has_compose=extension.has_compose,
        valid=extension.valid,
        error=extension.error,
    )
    return document


def render_info(document: dict[str, Any], output: Output) -> None:
    if output.json_mode:
        output.emit(document)
        return
    if output.quiet:
        return
    out = output.out
    out.print(f"[bold]{document['name']}[/bold] {document.get('version', '')}  [dim]({document['source']})[/dim]")
    if document.get("description"):
        out.print(document["description"], markup=False)
    if document["error"]:
        out.print("invalid: " + document["error"], markup=False, style="red")
    rows = [
        ("enabled", "yes" if document["enabled"] else "no"),
        ("state", document["state"]),
        ("path", document["path"]),
        ("containers", "yes (its own compose project)" if document["has_compose"] else "no (runs inside the proxy)"),
    ]
    if "mcp" in document:
        mcp = document["mcp"]
        target = mcp.get("url") or " ".join([mcp.get("command") or "", *mcp.get("args", [])])
        rows += [("transport", mcp["transport"]), ("server", target), ("platforms", ", ".join(document["platforms"]))]
        if document.get("env"):
            rows.append(("needs .env keys", ", ".join(document["env"])))
    for key, value in rows:
        out.print(f"  {key + ':':<17}{value}", markup=False)


# --- changing (the caller holds the lock) -------------------------------------


def _require_ready(home: Path, extension: Extension, platform: Platform | None) -> None:
    """Valid, meant for this platform, and every .env key it needs is set."""
    manifest = extensions.require_valid(extension, platform)
    missing = extensions.missing_env(manifest, config.read_env_values(home))
    if missing:
        raise StackError(
            f"Extension {extension.name!r} needs {', '.join(missing)} in {config.env_path(home)}.",
            f"Add {missing[0]}=<value> to that file, then try again.",
            slug="missing_env",
        )


def enable(home: Path, name: str, output: Output) -> ExtensionStatus:
    ctx = stack.load(home)
    extension = extensions.get(home, name)
    _require_ready(home, extension, ctx.state.platform)
    if name in ctx.state.enabled_extensions:
        output.progress(f"{name} is already enabled; nothing to do.")
        return _status_of(home, name, output)
    journal = stack.begin(ctx, None, f"extensions enable {name}", ["files"], ctx.state.platform)
    try:
        with journal.step("files"):
            ctx.state = config.set_enabled_extensions(home, [*ctx.state.enabled_extensions, name])
            stack.sync_proxy_config(ctx)
    except BaseException:
        stack.rollback(home, Engine(), journal.entry)
        journal.close()
        raise
    journal.close()
    containers = _containers()
    if any(c.project == ctx.project and c.service == "mcp_proxy" and c.state == "running" for c in containers):
        output.progress(f"Enabled {name}: the proxy serves its tools at /{name} (it reloads its config by itself).")
    else:
        output.progress(f"Enabled {name}: the proxy will serve its tools at /{name} when the stack starts.")
    if extension.has_compose:
        output.progress(f"Start its containers with: ollama-stack extensions start {name}")
    _offer_in_webui(ctx, output, containers)
    return _status_of(home, name, output)


def _containers() -> list[ContainerInfo]:
    """The engine's containers of ours; none when it is unreachable (a files-only change still works)."""
    try:
        return Engine().containers()
    except StackError:
        return []


def disable(home: Path, name: str, output: Output) -> ExtensionStatus:
    extensions.validate_name(name)
    ctx = stack.load(home)
    if name not in ctx.state.enabled_extensions:
        extensions.get(home, name)  # unknown names get the did-you-mean
        output.progress(f"{name} is not enabled; nothing to do.")
        return _status_of(home, name, output)
    engine = Engine()
    journal = stack.begin(ctx, engine, f"extensions disable {name}", ["stop", "files"], ctx.state.platform)
    try:
        with journal.step("stop"):
            if stack.extension_containers(ctx, engine, name):
                stopped = stack.stop_extension(ctx, engine, name, find_compose())
                output.progress(f"Stopped {name} ({stopped} container(s); volumes kept).")
        with journal.step("files"):
            ctx.state = config.set_enabled_extensions(home, [n for n in ctx.state.enabled_extensions if n != name])
            stack.sync_proxy_config(ctx)
        # mcpo's hot reload adds servers but never drops a removed one: restart it to let go.
        if stack.restart_proxy(ctx, engine):
            output.progress("Restarted the MCP proxy so it drops the extension.")
    finally:
        journal.close()
    output.progress(f"Disabled {name}: removed from the proxy.")
    _offer_in_webui(ctx, output, engine.containers())
    return _status_of(home, name, output)


def start(home: Path, name: str, output: Output) -> ExtensionStatus:
    ctx = stack.load(home)
    extension = extensions.get(home, name)
    if name not in ctx.state.enabled_extensions:
        raise StackError(
            f"Extension {name!r} is not enabled.",
            f"Enable it first: ollama-stack extensions enable {name}",
            slug="not_enabled",
        )
    platform = ctx.state.platform or "cpu"
    _require_ready(home, extension, platform)
    if not extension.has_compose:
        output.progress(f"{name} has no containers: it runs inside the MCP proxy while enabled.")
        return _status_of(home, name, output)
    engine = Engine()
    command = find_compose()
    ctx.env = config.ensure_env(home)  # never hand compose a placeholder secret
    journal = stack.begin(ctx, engine, f"extensions start {name}", ["compose_up"], platform)
    try:
        with journal.step("compose_up"):
            output.progress(f"Starting extension {name}...")
            stack.start_extension(ctx, engine, extension, platform, command)
    except BaseException:
        undone = stack.rollback(home, engine, journal.entry)
        journal.close()
        if undone:
            output.progress(f"Rolled back: {'; '.join(undone)}.")
        raise
    journal.close()
    return _status_of(home, name, output)


def stop(home: Path, name: str, output: Output) -> ExtensionStatus:
    extensions.validate_name(name)
    ctx = stack.load(home)
    engine = Engine()
    if name not in extensions.discover(home) and not stack.extension_containers(ctx, engine, name):
        extensions.get(home, name)  # raises with a did-you-mean
    count = stack.stop_extension(ctx, engine, name, find_compose())
    output.progress(f"Stopped {name} ({count} container(s); volumes kept)." if count else f"{name} is not running.")
    return _status_of(home, name, output)


# --- Open WebUI's tool servers ----------------------------------------------------


def _offer_in_webui(ctx: stack.Context, output: Output, containers: list[ContainerInfo]) -> None:
    """After an enable or disable: change Open WebUI now if it runs, else at the next start."""
    if not stack.webui_running(ctx, containers):
        output.progress("Open WebUI gets the change at the next `ollama-stack start`.")
        return
    warning = report_tool_servers(stack.sync_tool_servers(ctx), output)
    if warning:
        output.warn(warning)


def sync(home: Path, output: Output) -> ToolServerSync:
    """`extensions sync`: make Open WebUI offer exactly the enabled extensions, now."""
    ctx = stack.load(home)
    if not stack.webui_running(ctx, Engine().containers()):
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
