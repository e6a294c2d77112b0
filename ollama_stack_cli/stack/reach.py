"""Where the engine publishes the stack's ports, and how this machine reaches them (SPEC 14).

A local engine (a socket, or an address of this machine) publishes on this machine:
health is probed from here, as a browser would reach it. A remote engine publishes on
its own host: health is read through the engine, URLs carry the engine's host, and
ports bound to the engine's loopback get the `ssh -L` line that reaches them.
"""

from __future__ import annotations

import ipaddress

from .. import net
from ..schemas import ContainerInfo, EngineInfo
from .context import Context, expected_services


def ports_here(ctx: Context) -> bool:
    """True when the published ports are on this machine."""
    return ctx.engine.endpoint.local


def healthy_on_engine(ctx: Context, container: ContainerInfo) -> bool:
    """A remote service's health, read through the engine: its healthcheck's verdict, else the check run now.

    The engine runs the first healthcheck an interval after the start; until then (or
    without one) the container's own healthcheck command is run in it through the engine.
    """
    health = container.docker_health
    return health == "healthy" or (health in ("starting", "none") and ctx.engine.healthcheck_passes(container.id))


def engine_info(ctx: Context) -> EngineInfo:
    return ctx.engine.endpoint.info()


def url_host(ctx: Context) -> str:
    """The host in the URLs: this machine's for a local engine; the engine's when it is remote.

    A remote engine's loopback is reached through the tunnel, whose local end is ours.
    """
    if ports_here(ctx) or ctx.env.is_loopback:
        return ctx.env.url_host
    if ipaddress.ip_address(ctx.env.BIND_ADDRESS).is_unspecified:
        return ctx.engine.endpoint.hostname or ctx.env.url_host
    return ctx.env.url_host


def tunnel(ctx: Context, ports: list[int]) -> str | None:
    """The `ssh -L` line that brings a remote engine's loopback-bound ports here, or None."""
    endpoint = ctx.engine.endpoint
    if ports_here(ctx) or not ctx.env.is_loopback or not ports:
        return None
    forwards = " ".join(f"-L {port}:{ctx.env.url_host}:{port}" for port in ports)
    where = endpoint.hostname or "ENGINE-HOST"
    if endpoint.scheme == "ssh":
        where = f"{endpoint.user}@{where}" if endpoint.user else where
        if endpoint.port:
            where = f"-p {endpoint.port} {where}"
    return f"ssh -N {forwards} {where}"


def busy_ports(ctx: Context, platform: str, listed: list[ContainerInfo]) -> list[tuple[str, int]]:
    """Ports the stack would publish that something already holds, asked where they will be published.

    On this machine: a bind attempt. On a remote engine: the ports its containers
    publish (one list call); anything else there is caught by compose's own error,
    and the start rolls back.
    """
    held_by_us = {
        p.host_port for c in listed if c.installation == ctx.project and c.state == "running" for p in c.ports
    }
    if ports_here(ctx):
        taken = None
    else:
        bind = ctx.env.BIND_ADDRESS
        taken = {
            p.host_port
            for p in ctx.engine.all_published_ports()
            if p.host_ip in (bind, "", "0.0.0.0", "::") or bind in ("0.0.0.0", "::")
        }
    busy = []
    for spec in expected_services(platform):  # type: ignore[arg-type]
        port = ctx.env.port_of(spec)
        if port in held_by_us:
            continue
        if (port in taken) if taken is not None else not net.port_free(ctx.env.BIND_ADDRESS, port):
            busy.append((spec.port_key, port))
    return busy
