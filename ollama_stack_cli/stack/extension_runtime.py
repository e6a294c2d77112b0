"""Extensions at run time: their compose projects, the proxy's config, and their states."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .. import config, extensions
from ..docker_client import Compose
from ..errors import StackError
from ..schemas import (
    INSTALLATION_LABEL,
    ComposeModel,
    ContainerInfo,
    Extension,
    ExtensionInfo,
    ExtensionStatus,
    Platform,
)
from .context import Context, compose_env

EXTENSION_LABEL = "ollama-stack.extension"


def extension_compose(ctx: Context, extension: Extension, platform: Platform, *, for_up: bool = True) -> Compose:
    """The extension's own compose project, on the stack network, with our label forced on.

    The label is added by a generated override (one entry per service the
    extension defines), so a user's compose file cannot forget it.
    """
    folder = Path(extension.path)
    files = [folder / extensions.COMPOSE]
    overlay = folder / f"docker-compose.{platform}.yml"
    if overlay.is_file():
        files.append(overlay)
    compose = Compose(
        command=ctx.compose_command,
        project=ctx.ext_project(extension.name),
        files=files,
        env=compose_env(ctx),
        project_dir=folder,
    )
    if not for_up:
        return compose
    labels = {INSTALLATION_LABEL: ctx.project, EXTENSION_LABEL: extension.name}
    merged: ComposeModel = compose.config()
    override: dict[str, object] = {"services": {name: {"labels": labels} for name in merged.services}}
    for kind, resources in (("volumes", merged.volumes), ("networks", merged.networks)):
        own = {name: {"labels": labels} for name, resource in resources.items() if not resource.external}
        if own:
            override[kind] = own
    compose.files.append(config.write_run_file(ctx.home, f"ext-{extension.name}.labels.json", override))
    return compose


def ready_extensions(ctx: Context) -> list[str]:
    """Enabled extensions the proxy can serve: valid, meant for this platform, .env keys set."""
    platform = ctx.state.platform
    return [
        name
        for name in ctx.state.enabled_extensions
        if (ext := ctx.extensions.get(name)) is not None
        and ext.manifest is not None
        and not extensions.missing_env(ext.manifest, ctx.env_values)
        and (platform is None or platform in ext.manifest.platforms)
    ]


def sync_proxy_config(ctx: Context) -> Path:
    """Regenerate mcpo's config from the enabled extensions; mcpo hot-reloads it."""
    servers = extensions.proxy_servers(ready_extensions(ctx), ctx.extensions, ctx.env_values)
    return config.write_proxy_config(ctx.home, servers)


def restart_proxy(ctx: Context, listed: list[ContainerInfo]) -> bool:
    """Restart a running proxy container in place (same container, fresh process)."""
    proxies = [c for c in listed if c.project == ctx.project and c.service == "mcp_proxy" and c.state == "running"]
    for proxy in proxies:
        ctx.engine.restart_container(proxy.id)
    return bool(proxies)


def extension_containers(ctx: Context, listed: list[ContainerInfo], name: str | None = None) -> list[ContainerInfo]:
    """The containers of one extension (or of all), from a listing."""
    return [
        c
        for c in listed
        if c.installation == ctx.project
        and (owner := ctx.extension_of(c.project)) is not None
        and (name is None or owner == name)
    ]


def start_extension(ctx: Context, extension: Extension, platform: Platform) -> bool:
    """Run the extension's containers; False when it has none (it runs inside the proxy)."""
    if not extension.has_compose:
        return False
    if ctx.core_network not in ctx.engine.networks(ctx.project):
        raise StackError(
            f"The stack is not running, so extension {extension.name!r} has no network to join.",
            "Start the stack first: ollama-stack start.",
            slug="not_running",
        )
    extension_compose(ctx, extension, platform).up()
    return True


def start_enabled_extensions(ctx: Context, platform: Platform, on_progress: Callable[[str], None]) -> list[str]:
    """Bring up enabled extensions that have containers; returns a warning per one skipped.

    One broken extension must not take the core stack down with it.
    """
    warnings = []
    for name in ctx.state.enabled_extensions:
        extension = ctx.extensions.get(name)
        if extension is None or extension.manifest is None:
            warnings.append(
                f"Extension {name!r} is enabled but {'missing' if extension is None else 'invalid'}; skipped."
            )
            continue
        if platform not in extension.manifest.platforms:  # enabled before the first start chose a platform
            warnings.append(f"Extension {name!r} does not support the {platform} platform; skipped.")
            continue
        missing = extensions.missing_env(extension.manifest, ctx.env_values)
        if missing:
            warnings.append(f"Extension {name!r} needs {', '.join(missing)} in the .env; skipped.")
            continue
        if extension.has_compose:
            on_progress(f"Starting extension {name}...")
            try:
                start_extension(ctx, extension, platform)
            except StackError as exc:
                warnings.append(f"Extension {name!r} did not start: {exc.message} The stack runs without it.")
    return warnings


def stop_extension(ctx: Context, name: str, listed: list[ContainerInfo] | None = None) -> int:
    """Remove the extension's containers (volumes kept). Returns how many there were."""
    containers = extension_containers(ctx, ctx.engine.containers() if listed is None else listed, name)
    if not containers:
        return 0
    found = ctx.extensions.get(name)
    if found is not None and found.has_compose:
        compose = extension_compose(ctx, found, ctx.platform, for_up=False)
        try:
            result = compose.run("down", "--remove-orphans", "--timeout", "10")
        except StackError:
            result = None
        if result is not None and result.returncode == 0:
            return len(containers)
    # Its files are gone or broken: remove what carries its project label directly.
    ctx.engine.remove_containers([c.id for c in containers])
    return len(containers)


def stop_all_extensions(ctx: Context) -> None:
    listed = ctx.engine.containers()
    names = sorted({ctx.extension_of(c.project) or "" for c in extension_containers(ctx, listed)})
    for name in names:
        stop_extension(ctx, name, listed)


def extension_statuses(ctx: Context, listed: list[ContainerInfo]) -> list[ExtensionStatus]:
    """Each known or enabled extension with its state, from the one container list."""
    found = ctx.extensions
    by_name: dict[str, list[ContainerInfo]] = {}
    for c in extension_containers(ctx, listed):
        by_name.setdefault(ctx.extension_of(c.project) or "", []).append(c)
    proxy_running = any(c.project == ctx.project and c.service == "mcp_proxy" and c.state == "running" for c in listed)
    result = []
    for name in sorted(set(found) | set(ctx.state.enabled_extensions)):
        enabled = name in ctx.state.enabled_extensions
        extension = found.get(name)
        own = by_name.get(name, [])
        if extension is None:
            state = "missing"
        elif extension.manifest is None:
            state = "invalid"
        elif own:
            state = "running" if any(c.state == "running" for c in own) else own[0].state
        elif not extension.has_compose:
            state = "in-proxy" if enabled and proxy_running else "absent"
        else:
            state = "absent"
        manifest = extension.manifest if extension else None
        result.append(
            ExtensionStatus(
                name=name,
                enabled=enabled,
                state=state,
                description=manifest.description if manifest else "",
                version=manifest.version if manifest else None,
                source=extension.source if extension else None,
                error=extension.error if extension else "enabled, but its folder is gone",
            )
        )
    return result


def statuses_without_engine(ctx: Context) -> list[ExtensionStatus]:
    """Extension states when the engine is unreachable: what the files say, the rest unknown."""
    statuses = extension_statuses(ctx, [])
    for status in statuses:
        if status.state not in ("invalid", "missing"):
            status.state = "unknown"
    return statuses


def extension_info(ctx: Context, extension: Extension, status: ExtensionStatus) -> ExtensionInfo:
    manifest = extension.manifest.model_dump() if extension.manifest is not None else {}
    manifest.pop("name", None)
    return ExtensionInfo(
        name=extension.name,
        **manifest,
        enabled=status.enabled,
        state=status.state,
        source=extension.source,
        path=extension.path,
        has_compose=extension.has_compose,
        valid=extension.valid,
        error=extension.error,
    )


def require_ready(ctx: Context, extension: Extension, platform: Platform | None) -> None:
    """Valid, meant for this platform, and every .env key it needs is set."""
    manifest = extensions.require_valid(extension, platform)
    missing = extensions.missing_env(manifest, ctx.env_values)
    if missing:
        raise StackError(
            f"Extension {extension.name!r} needs {', '.join(missing)} in {config.env_path(ctx.home)}.",
            f"Add {missing[0]}=<value> to that file, then try again.",
            slug="missing_env",
        )
