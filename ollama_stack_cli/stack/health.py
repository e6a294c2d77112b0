"""Waiting for the services to answer: from this machine as a browser would reach them, or,
when the engine is remote, by the services' own healthchecks run through the engine."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from .. import net
from ..schemas import ServiceSpec, WaitState
from .context import Context
from .reach import healthy_on_engine, ports_here


def wait_healthy(
    ctx: Context,
    specs: list[ServiceSpec],
    timeout: float,
    on_update: Callable[[dict[str, WaitState]], None],
    interval: float = 0.1,
) -> dict[str, WaitState]:
    """Poll each endpoint from the host until all answer, one exits, or time runs out.

    Polls every 25 ms for the first two seconds (a fresh container starts listening
    moments after compose returns), then every `interval`. Returns the final state
    per service.
    """
    status: dict[str, WaitState] = {spec.name: "waiting" for spec in specs}
    started = time.monotonic()
    deadline = started + timeout
    next_engine_check = time.monotonic() + 1.0
    on_update(dict(status))
    here = ports_here(ctx)
    while True:
        pending = [s for s in specs if status[s.name] == "waiting"]
        if here:
            answers = net.probe_many((s.name, ctx.env.url_host, ctx.env.port_of(s), s.health_path) for s in pending)
        else:
            answers = _engine_side_answers(ctx, pending)
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
            by_service = {c.service: c for c in ctx.engine.containers() if c.project == ctx.project}
            for spec in pending:
                container = by_service.get(spec.name)
                gone = container is None or container.state in ("exited", "dead", "restarting")
                if status[spec.name] == "waiting" and gone:
                    status[spec.name] = "exited"
                    on_update(dict(status))
                    return status
        if now >= deadline:
            return status
        time.sleep(0.025 if here and now - started < 2.0 else interval if here else max(interval, 0.5))


def _engine_side_answers(ctx: Context, pending: list[ServiceSpec]) -> dict[str, bool]:
    """Each pending service's own healthcheck, run by the engine inside its container."""
    wanted = {s.name for s in pending}
    running = [
        c for c in ctx.engine.containers() if c.project == ctx.project and c.service in wanted and c.state == "running"
    ]
    return {c.service or "": healthy_on_engine(ctx, c) for c in running}


def native_address() -> tuple[str, int]:
    """The host's native Ollama (apple): OLLAMA_HOST as Ollama reads it, else 127.0.0.1:11434."""
    value = os.environ.get("OLLAMA_HOST", "").split("://", 1)[-1].rstrip("/")
    host, _, port = value.rpartition(":")
    if not host:
        host, port = value, ""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    return host, int(port) if port.isdigit() else 11434


def native_ollama_reachable() -> bool:
    """On apple, Open WebUI talks to the Ollama app on the host."""
    host, port = native_address()
    return net.probe(host, port, "/api/version", timeout=1.0)
