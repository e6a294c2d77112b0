"""What the stack commands share: status from labels, compose for a home, health waits.

Commands call these functions and render what comes back; this module neither
prints nor parses options.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import config, extensions, net
from .docker_client import Compose, CorruptJournal, Engine, Journal, find_compose
from .errors import ExitCode, StackError
from .schemas import (
    CORE_SERVICES,
    SECRET_KEYS,
    ContainerInfo,
    Extension,
    ExtensionStatus,
    Health,
    JournalEntry,
    Platform,
    PreState,
    ServiceSpec,
    ServiceStatus,
    StackEnv,
    StackState,
    StackStatus,
    ToolServerSync,
)


@dataclass
class Context:
    """What every stack command needs, read once per invocation."""

    home: Path
    env: StackEnv
    state: StackState

    @property
    def project(self) -> str:
        return self.env.PROJECT_NAME


def load(home: Path) -> Context:
    """Read the home's state and settings without creating anything."""
    return Context(home=home, env=config.read_env(home), state=config.read_state(home))


def expected_services(platform: Platform | None) -> list[ServiceSpec]:
    """Services that run as containers on this platform (apple uses the host's Ollama)."""
    if platform == "apple":
        return [s for s in CORE_SERVICES if s.name != "ollama"]
    return list(CORE_SERVICES)


def compose_env(ctx: Context) -> dict[str, str]:
    """Values handed to compose: every `.env` key (the user's too), validated ones on top."""
    values = config.read_env_values(ctx.home)
    values.update({key: str(value) for key, value in ctx.env.model_dump().items()})
    values["MCP_PROXY_CONFIG_DIR"] = str(config.proxy_config_dir(ctx.home))
    for key in SECRET_KEYS:
        # `down` and `logs` must parse the file before the secrets exist; `start`
        # generates them before `up`, so this placeholder never reaches a container.
        values[key] = values.get(key) or "not-generated"
    values["STACK_NETWORK"] = core_network(ctx)
    return values


def core_network(ctx: Context) -> str:
    """The core compose project's default network, which extensions join as external."""
    return f"{ctx.project}_default"


def compose_for(ctx: Context, platform: Platform, command: list[str] | None = None) -> Compose:
    return Compose(
        command=command or find_compose(),
        project=ctx.project,
        files=config.compose_files(ctx.home, platform),
        env=compose_env(ctx),
        project_dir=ctx.home,
    )


# --- status -----------------------------------------------------------------


def build_status(
    ctx: Context, engine: Engine, probe: bool = True, containers: list[ContainerInfo] | None = None
) -> StackStatus:
    """The status document, from one container list call and host-side probes."""
    if containers is None:
        containers = engine.containers()
    ours = [c for c in containers if c.installation == ctx.project and c.project == ctx.project]
    by_service = {c.service: c for c in ours}
    platform = ctx.state.platform
    specs = expected_services(platform)

    probe_targets = []
    for spec in specs:
        container = by_service.get(spec.name)
        if container is not None and container.state == "running":
            port = _published_port(container, spec) or ctx.env.port_of(spec)
            probe_targets.append((spec.name, ctx.env.url_host, port, spec.health_path))
    answers = net.probe_many(probe_targets) if probe else {}

    services = [_service_status(ctx, spec, by_service.get(spec.name), answers.get(spec.name)) for spec in specs]
    running = all(s.state == "running" for s in services)
    healthy = running and all(s.health == "healthy" for s in services)
    return StackStatus(
        project=ctx.project,
        home=str(ctx.home),
        platform=platform,
        running=running,
        healthy=healthy,
        services=services,
        extensions=extension_statuses(ctx, containers),
        warnings=_warnings(ctx, containers, services),
    )


def _published_port(container: ContainerInfo, spec: ServiceSpec) -> int | None:
    for port in container.ports:
        if port.container_port == spec.container_port:
            return port.host_port
    return None


def _service_status(
    ctx: Context, spec: ServiceSpec, container: ContainerInfo | None, answered: bool | None
) -> ServiceStatus:
    port = (container and _published_port(container, spec)) or ctx.env.port_of(spec)
    url = f"http://{ctx.env.url_host}:{port}"
    if container is None:
        return ServiceStatus(name=spec.name, state="absent", health="none")
    health: Health
    if container.state != "running":
        health = "none"
    elif answered:
        health = "healthy"
    elif container.docker_health == "starting" or answered is None:
        health = "starting"
    else:
        health = "unhealthy"
    return ServiceStatus(
        name=spec.name,
        state=container.state,
        health=health,
        image=container.image,
        container_id=container.id,
        url=url if container.state == "running" else None,
        uptime=container.uptime,
        ports=container.ports,
    )


def _warnings(ctx: Context, containers: list[ContainerInfo], services: list[ServiceStatus]) -> list[str]:
    warnings: list[str] = config.env_duplicates(ctx.home)
    states = {s.state for s in services}
    if "running" in states and states != {"running"}:
        missing = ", ".join(s.name for s in services if s.state != "running")
        warnings.append(f"The stack is only partly running ({missing} not running); `ollama-stack start` repairs it.")
    if not ctx.env.is_loopback:
        warnings.append(
            f"Ports are published on {ctx.env.BIND_ADDRESS}, reachable from other machines; "
            "Ollama has no authentication."
        )
    others: dict[str, list[ContainerInfo]] = {}
    for container in containers:
        name = container.installation
        if name and name != ctx.project:
            others.setdefault(name, []).append(container)
    for name, items in sorted(others.items()):
        running = [c for c in items if c.state == "running"]
        ports = sorted({p.host_port for c in running for p in c.ports})
        where = f" on ports {', '.join(map(str, ports))}" if ports else ""
        warnings.append(
            f"Another installation '{name}' has {len(items)} container(s) here, {len(running)} running{where}."
        )
    return warnings


# --- start ------------------------------------------------------------------


def shared_ports(env: StackEnv, platform: Platform) -> list[tuple[str, str, int]]:
    """Pairs of `.env` port keys set to the same port: (first key, second key, port)."""
    specs = expected_services(platform)
    return [
        (a.port_key, b.port_key, env.port_of(a))
        for i, a in enumerate(specs)
        for b in specs[i + 1 :]
        if env.port_of(a) == env.port_of(b)
    ]


def require_distinct_ports(ctx: Context, platform: Platform) -> None:
    for first, second, port in shared_ports(ctx.env, platform):
        raise StackError(
            f"{first} and {second} are both {port} in {config.env_path(ctx.home)}; each service needs its own port.",
            f"Set {second} to another free port in that file.",
            slug="port_conflict",
        )


def busy_ports(ctx: Context, platform: Platform, running: list[ContainerInfo]) -> list[tuple[str, int]]:
    """Ports the stack would publish that something else already holds."""
    held_by_us = {p.host_port for c in running if c.state == "running" for p in c.ports}
    busy = []
    for spec in expected_services(platform):
        port = ctx.env.port_of(spec)
        if port in held_by_us:
            continue
        if not net.port_free(ctx.env.BIND_ADDRESS, port):
            busy.append((spec.port_key, port))
    return busy


def wait_healthy(
    ctx: Context,
    engine: Engine,
    specs: list[ServiceSpec],
    timeout: float,
    on_update: Callable[[dict[str, str]], None],
    interval: float = 0.1,
) -> dict[str, str]:
    """Poll each endpoint from the host until all answer, one exits, or time runs out.

    Polls every 25 ms for the first two seconds (a fresh container starts listening
    moments after compose returns), then every `interval`. Returns the final state
    per service: "healthy", "waiting" or "exited".
    """
    status = {spec.name: "waiting" for spec in specs}
    started = time.monotonic()
    deadline = started + timeout
    next_engine_check = time.monotonic() + 1.0
    on_update(dict(status))
    while True:
        pending = [s for s in specs if status[s.name] == "waiting"]
        answers = net.probe_many((s.name, ctx.env.url_host, ctx.env.port_of(s), s.health_path) for s in pending)
        changed = False
        for name, ok in answers.items():
            if ok:
                status[name] = "healthy"
                changed = True
        if changed:
            on_update(dict(status))
        if all(v == "healthy" for v in status.values()):
            return status
        now = time.monotonic()
        if now >= next_engine_check:
            next_engine_check = now + 1.0
            by_service = {c.service: c for c in engine.containers() if c.project == ctx.project}
            for spec in pending:
                container = by_service.get(spec.name)
                gone = container is None or container.state in ("exited", "dead", "restarting")
                if status[spec.name] == "waiting" and gone:
                    status[spec.name] = "exited"
                    on_update(dict(status))
                    return status
        if now >= deadline:
            return status
        time.sleep(0.025 if now - started < 2.0 else interval)


def native_ollama_reachable() -> bool:
    """On apple, Open WebUI talks to the Ollama app on the host."""
    return net.probe("127.0.0.1", 11434, "/api/version", timeout=1.0)


def require_valid_platform(value: str | None) -> Platform | None:
    if value is None:
        return None
    if value not in ("cpu", "nvidia", "apple"):
        raise StackError(
            f"Unknown platform {value!r}.", "Use one of: cpu, nvidia, apple.", code=ExitCode.USAGE, slug="usage"
        )
    return value  # type: ignore[return-value]


# --- journal, rollback, recovery ------------------------------------------

# Home files an operation may change, restored on rollback (home-relative).
TRACKED_FILES = (config.STATE_FILE, config.ENV_FILE, f"{config.PROXY_CONFIG_DIR}/{config.PROXY_CONFIG_FILE}")


def capture_pre_state(ctx: Context, engine: Engine | None, containers: list[ContainerInfo] | None = None) -> PreState:
    """What an operation may need to undo. Without an engine (files-only changes), files only."""
    files = {}
    for name in TRACKED_FILES:
        content = config.read_bytes(ctx.home / name)
        files[name] = content.decode("utf-8") if content is not None else None
    if engine is None:
        return PreState(files=files)
    ours = [c for c in (engine.containers() if containers is None else containers) if c.installation == ctx.project]
    return PreState(
        container_ids=sorted(c.id for c in ours),
        services=sorted({_service_key(c) for c in ours}),
        running_services=sorted({_service_key(c) for c in ours if c.state == "running"}),
        networks=engine.networks(ctx.project),
        volumes=engine.volumes(ctx.project),
        files=files,
    )


def _service_key(container: ContainerInfo) -> str:
    return f"{container.project}/{container.service}"


def begin(
    ctx: Context,
    engine: Engine | None,
    operation: str,
    steps: list[str],
    platform: Platform | None,
    containers: list[ContainerInfo] | None = None,
) -> Journal:
    pre_state = capture_pre_state(ctx, engine, containers)
    return Journal.begin(ctx.home, operation, ctx.project, steps, pre_state, platform, TRACKED_FILES)


# Steps `rollback` knows how to undo; others (recreate, stop) can only be reported.
UNDOABLE_STEPS = ("compose_up", "extensions_up", "files")


def rollback(home: Path, engine: Engine, entry: JournalEntry) -> list[str]:
    """Undo the entry's running and done steps in reverse; return what was undone.

    Containers, networks and volumes that did not exist before are removed; state
    files are put back. Anything that existed before, volumes above all, is never touched. Ctrl-C is
    ignored meanwhile: a half-finished rollback would be worse than a slow one.
    """
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        undone: list[str] = []
        for step in reversed(entry.steps):
            if step.status == "planned":
                continue
            if step.name in ("compose_up", "extensions_up"):
                undone.extend(_remove_created(engine, entry))
            elif step.name == "files":
                restored, kept = _restore_files(home, entry)
                if restored:
                    undone.append(f"restored {', '.join(restored)}")
                if kept:
                    undone.append(f"left {', '.join(kept)} as edited since")
        return undone
    finally:
        signal.signal(signal.SIGINT, previous)


def _remove_created(engine: Engine, entry: JournalEntry) -> list[str]:
    """Remove containers of services that did not exist before; never a recreated one."""
    before = set(entry.pre_state.container_ids)
    existed = set(entry.pre_state.services)
    created = [
        c
        for c in engine.containers()
        if c.installation == entry.project and c.id not in before and _service_key(c) not in existed
    ]
    engine.remove_containers([c.id for c in created])
    new_networks = [n for n in engine.networks(entry.project) if n not in entry.pre_state.networks]
    engine.remove_networks(new_networks)
    new_volumes: list[str] = []
    if entry.pre_state.volumes is not None:
        # Only volumes this operation created: empty, or holding what a failed start wrote.
        new_volumes = [v for v in engine.volumes(entry.project) if v not in entry.pre_state.volumes]
        failed = engine.remove_volumes(new_volumes)
        new_volumes = [v for v in new_volumes if v not in failed]
    undone = []
    if created:
        undone.append(f"removed {len(created)} container(s)")
    if new_networks:
        undone.append(f"removed network {', '.join(new_networks)}")
    if new_volumes:
        undone.append(f"removed the volume(s) it had created: {', '.join(new_volumes)}")
    return undone


def _restore_files(home: Path, entry: JournalEntry) -> tuple[list[str], list[str]]:
    """Put tracked files back; one changed since the operation wrote it is left alone."""
    from .docker_client import file_digest

    restored, kept = [], []
    for name, text in entry.pre_state.files.items():
        path = home / name
        current = config.read_bytes(path)
        wanted = text.encode("utf-8") if text is not None else None
        if current == wanted:
            continue
        if name in entry.written and file_digest(path) != entry.written[name]:
            kept.append(name)
            continue
        config.restore_file(path, wanted)
        restored.append(name)
    return restored, kept


def restore_previous(home: Path, engine: Engine, entry: JournalEntry, command: list[str]) -> str:
    """After a failed change to a running stack, bring its previous configuration back up.

    Compose may have recreated services before it failed (their old containers are
    gone), so the files are restored first and compose reconciles to them.
    """
    core_running = [k for k in entry.pre_state.running_services if k.startswith(f"{entry.project}/")]
    if not core_running:
        return ""
    ctx = load(home)
    compose_for(ctx, ctx.state.platform or "cpu", command).up([k.split("/", 1)[1] for k in core_running])
    return "brought the previous stack back up"


def recover(home: Path, engine: Engine) -> str | None:
    """Repair after an operation that died mid-way; the caller holds the lock.

    Returns one line saying what was found and done, or None when all was well.
    """
    try:
        entry = Journal.find_open(home)
    except CorruptJournal as exc:
        return f"Found a corrupt operation journal ({exc.reason}); moved it to {exc.moved_to.name}."
    if entry is None:
        return None
    found = f"Found an interrupted `{entry.operation}` (pid {entry.pid}, started {entry.started})"
    journal = Journal(home, entry)
    pending = [s for s in entry.steps if s.status != "done"]
    if not pending:
        journal.close()
        return f"{found}: all its steps had completed; nothing to repair."
    if pending[0].name == "compose_down":
        # A stop is finished rather than undone: it is idempotent and "stopped" is what was asked.
        ctx = load(home)
        command = find_compose()
        stop_all_extensions(ctx, engine, command)
        compose_for(ctx, entry.platform or ctx.state.platform or "cpu", command).down()
        journal.close()
        return f"{found}: finished stopping it."
    undone = rollback(home, engine, entry)
    journal.close()
    started = [s.name for s in entry.steps if s.status != "planned" and s.name not in UNDOABLE_STEPS]
    if started and not undone:
        return (
            f"{found}: its step '{started[-1]}' cannot be undone; "
            "run `ollama-stack start` to bring the stack to a known state."
        )
    what = "; ".join(undone) if undone else "nothing had changed yet"
    return f"{found}: rolled it back ({what}; existing volumes kept)."


# --- extensions -------------------------------------------------------------

LABELS_DIR = "run"


def ext_project(ctx: Context, name: str) -> str:
    return f"{ctx.project}-ext-{name}"


def extension_compose(
    ctx: Context, extension: Extension, platform: Platform, command: list[str], *, for_up: bool = True
) -> Compose:
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
        command=command,
        project=ext_project(ctx, extension.name),
        files=files,
        env=compose_env(ctx),
        project_dir=folder,
    )
    if not for_up:
        return compose
    labels = {"ollama-stack.installation": ctx.project, "ollama-stack.extension": extension.name}
    merged = compose.config()
    override: dict[str, object] = {"services": {name: {"labels": labels} for name in merged.get("services", {})}}
    for kind in ("volumes", "networks"):
        own = {name: {"labels": labels} for name, v in (merged.get(kind) or {}).items() if not v.get("external")}
        if own:
            override[kind] = own
    compose.files.append(config.write_run_file(ctx.home, f"ext-{extension.name}.labels.json", override))
    return compose


def ready_extensions(ctx: Context, found: dict[str, Extension], values: dict[str, str]) -> list[str]:
    """Enabled extensions the proxy can serve: valid, meant for this platform, .env keys set."""
    platform = ctx.state.platform
    return [
        name
        for name in ctx.state.enabled_extensions
        if (ext := found.get(name)) is not None
        and ext.manifest is not None
        and not extensions.missing_env(ext.manifest, values)
        and (platform is None or platform in ext.manifest.platforms)
    ]


def sync_proxy_config(ctx: Context) -> Path:
    """Regenerate mcpo's config from the enabled extensions; mcpo hot-reloads it."""
    found = extensions.discover(ctx.home)
    values = config.read_env_values(ctx.home)
    ready = ready_extensions(ctx, found, values)
    return config.write_proxy_config(ctx.home, extensions.proxy_servers(ready, found, values))


# --- Open WebUI's tool servers ------------------------------------------------


def wanted_tool_servers(ctx: Context) -> list[str]:
    """The extensions Open WebUI should offer: exactly those the proxy serves."""
    return ready_extensions(ctx, extensions.discover(ctx.home), config.read_env_values(ctx.home))


def tool_servers_lag(ctx: Context) -> bool:
    """Whether Open WebUI may not hold what it should, as far as the CLI last knew."""
    synced = ctx.state.openwebui_tool_servers
    wanted = wanted_tool_servers(ctx)
    return sorted(wanted) != sorted(synced or [])


def webui_running(ctx: Context, containers: list[ContainerInfo]) -> bool:
    return any(c.project == ctx.project and c.service == "webui" and c.state == "running" for c in containers)


def sync_tool_servers(ctx: Context, command: list[str] | None = None, *, write: bool = True) -> ToolServerSync:
    """Make Open WebUI's tool servers match the served extensions (or, without `write`, compare).

    Never raises for Open WebUI's sake: a failure comes back as outcome "failed" with
    the reason, for the command to turn into a warning with the fix.
    """
    from . import openwebui

    wanted = wanted_tool_servers(ctx)
    entries = openwebui.tool_server_entries(wanted, ctx.env.MCP_PROXY_API_KEY, ctx.env.EXTENSIONS_VISIBLE_TO)
    compose = compose_for(ctx, ctx.state.platform or "cpu", command)
    try:
        result = openwebui.reconcile(compose, entries, write=write)
    except StackError as exc:
        return ToolServerSync(outcome="failed", detail=exc.message)
    if write:
        ctx.state = config.set_openwebui_tool_servers(ctx.home, wanted)
    return result


def restart_proxy(ctx: Context, engine: Engine) -> bool:
    """Restart a running proxy container in place (same container, fresh process)."""
    proxies = [
        c for c in engine.containers() if c.project == ctx.project and c.service == "mcp_proxy" and c.state == "running"
    ]
    for proxy in proxies:
        engine.restart_container(proxy.id)
    return bool(proxies)


def extension_containers(ctx: Context, engine: Engine, name: str | None = None) -> list[ContainerInfo]:
    prefix = f"{ctx.project}-ext-"
    return [
        c
        for c in engine.containers()
        if c.installation == ctx.project
        and (c.project or "").startswith(prefix)
        and (name is None or c.project == prefix + name)
    ]


def start_extension(ctx: Context, engine: Engine, extension: Extension, platform: Platform, command: list[str]) -> bool:
    """Run the extension's containers; False when it has none (it runs inside the proxy)."""
    if not extension.has_compose:
        return False
    if core_network(ctx) not in engine.networks(ctx.project):
        raise StackError(
            f"The stack is not running, so extension {extension.name!r} has no network to join.",
            "Start the stack first: ollama-stack start.",
            slug="not_running",
        )
    extension_compose(ctx, extension, platform, command).up()
    return True


def stop_extension(ctx: Context, engine: Engine, name: str, command: list[str]) -> int:
    """Remove the extension's containers (volumes kept). Returns how many there were."""
    containers = extension_containers(ctx, engine, name)
    if not containers:
        return 0
    found = extensions.discover(ctx.home).get(name)
    if found is not None and found.has_compose:
        platform = ctx.state.platform or "cpu"
        compose = extension_compose(ctx, found, platform, command, for_up=False)
        try:
            result = compose.run("down", "--remove-orphans", "--timeout", "10")
        except StackError:
            result = None
        if result is not None and result.returncode == 0:
            return len(containers)
    # Its files are gone or broken: remove what carries its project label directly.
    engine.remove_containers([c.id for c in containers])
    return len(containers)


def stop_all_extensions(ctx: Context, engine: Engine, command: list[str]) -> None:
    names = sorted({(c.project or "").removeprefix(f"{ctx.project}-ext-") for c in extension_containers(ctx, engine)})
    for name in names:
        stop_extension(ctx, engine, name, command)


def extension_statuses(ctx: Context, containers: list[ContainerInfo]) -> list[ExtensionStatus]:
    """Each known or enabled extension with its state, from the one container list."""
    found = extensions.discover(ctx.home)
    prefix = f"{ctx.project}-ext-"
    by_project: dict[str, list[ContainerInfo]] = {}
    for c in containers:
        if c.installation == ctx.project and (c.project or "").startswith(prefix):
            by_project.setdefault(c.project or "", []).append(c)
    proxy_running = any(
        c.project == ctx.project and c.service == "mcp_proxy" and c.state == "running" for c in containers
    )
    result = []
    for name in sorted(set(found) | set(ctx.state.enabled_extensions)):
        enabled = name in ctx.state.enabled_extensions
        extension = found.get(name)
        own = by_project.get(prefix + name, [])
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
