"""The status document: one container listing, host-side probes, and the warnings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from .. import config, net
from ..schemas import ContainerInfo, EngineInfo, ExtensionStatus, Health, ServiceSpec, ServiceStatus, StackStatus
from .context import Context, expected_services
from .extension_runtime import extension_statuses
from .reach import engine_info, healthy_on_engine, ports_here, tunnel, url_host


def containers(ctx: Context) -> list[ContainerInfo]:
    """Every container carrying the installation label (any installation): one API call."""
    return ctx.engine.containers()


def ours(ctx: Context, listed: list[ContainerInfo]) -> list[ContainerInfo]:
    """This installation's containers: the core's and its extensions'."""
    return [c for c in listed if c.installation == ctx.project]


def service_running(ctx: Context, listed: list[ContainerInfo], service: str) -> bool:
    return any(c.project == ctx.project and c.service == service and c.state == "running" for c in listed)


def build_status(
    ctx: Context,
    probe: bool = True,
    listed: list[ContainerInfo] | None = None,
    answered: dict[str, bool] | None = None,
) -> StackStatus:
    """The status document, from one container list call and host-side probes.

    `answered`: each service's answer just seen by the caller (start's health wait),
    used instead of probing them all again.
    """
    if listed is None:
        listed = containers(ctx)
    by_service = {c.service: c for c in listed if c.installation == ctx.project and c.project == ctx.project}
    platform = ctx.state.platform
    specs = expected_services(platform)

    host = url_host(ctx)
    answers: dict[str, bool] = {}
    running_here = [c for c in by_service.values() if c.state == "running"]
    if answered is not None:
        answers = answered
    elif not ports_here(ctx):
        # The ports are on the engine's host: its own healthchecks say how each service is;
        # one that has not run yet (the first runs an interval after the start) is run now.
        answers = {c.service or "": healthy_on_engine(ctx, c) for c in running_here} if probe else {}
    elif probe:
        answers = net.probe_many(
            (spec.name, host, _published_port(container, spec) or ctx.env.port_of(spec), spec.health_path)
            for spec in specs
            if (container := by_service.get(spec.name)) is not None and container.state == "running"
        )

    services = [_service_status(ctx, host, spec, by_service.get(spec.name), answers.get(spec.name)) for spec in specs]
    running = all(s.state == "running" for s in services)
    healthy = running and all(s.health == "healthy" for s in services)
    return StackStatus(
        engine=engine_info(ctx),
        tunnel=tunnel(ctx, [p for s in services if s.url for p in _host_ports(s)]),
        project=ctx.project,
        home=str(ctx.home),
        platform=platform,
        running=running,
        healthy=healthy,
        services=services,
        extensions=extension_statuses(ctx, listed),
        warnings=_warnings(ctx, listed, services),
    )


@contextmanager
def status_prepared_meanwhile() -> Iterator[None]:
    """Prepare, in a thread, what the status after a change needs, while the caller waits on compose.

    The models' validators are built on first use (schemas' defer_build) and the next
    steps load Ollama's client and urllib: ~9 ms that would otherwise follow `compose up`, done
    while this process only waits for it. Joined on exit, so nothing runs alongside
    the caller afterwards; a failure here is left for the real use to report.
    """
    import threading

    def prepare() -> None:
        try:
            for model in (StackStatus, ServiceStatus, EngineInfo, ExtensionStatus):
                model.model_rebuild()
            import urllib.request  # noqa: F401 - next steps ask Open WebUI whether it has an account

            from . import models  # noqa: F401 - and Ollama whether it has a model
        except Exception:  # pragma: no cover - only an optimisation
            pass

    thread = threading.Thread(target=prepare, name="status-prepare", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()


def _published_port(container: ContainerInfo, spec: ServiceSpec) -> int | None:
    for port in container.ports:
        if port.container_port == spec.container_port:
            return port.host_port
    return None


def _host_ports(service: ServiceStatus) -> list[int]:
    return sorted({p.host_port for p in service.ports})


def _service_status(
    ctx: Context, host: str, spec: ServiceSpec, container: ContainerInfo | None, answered: bool | None
) -> ServiceStatus:
    port = (container and _published_port(container, spec)) or ctx.env.port_of(spec)
    url = f"http://{host}:{port}"
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


def _warnings(ctx: Context, listed: list[ContainerInfo], services: list[ServiceStatus]) -> list[str]:
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
    for container in listed:
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


def networks(ctx: Context) -> list[str]:
    return ctx.engine.networks(ctx.project)


def volumes(ctx: Context) -> list[str]:
    return ctx.engine.volumes(ctx.project)
