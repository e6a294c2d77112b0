"""Before anything changes: which platform, and are the ports this start needs free?"""

from __future__ import annotations

from .. import config, net
from ..errors import ExitCode, StackError
from ..platforms import decide, gather_evidence
from ..schemas import PLATFORMS, ContainerInfo, Platform, PlatformDecision, StackEnv
from .context import Context, expected_services


def require_valid_platform(value: str | None) -> Platform | None:
    """A `--platform` option, checked before any side effect (usage error, exit 2)."""
    if value is None:
        return None
    if value not in PLATFORMS:
        raise StackError(
            f"Unknown platform {value!r}.",
            f"Use one of: {', '.join(PLATFORMS)}.",
            code=ExitCode.USAGE,
            slug="usage",
        )
    return value  # type: ignore[return-value]


def decide_platform(ctx: Context | None, forced: Platform | None) -> PlatformDecision:
    """SPEC 4's choice from what the machine shows; without an engine, from the machine alone."""
    evidence = gather_evidence(ctx.engine.runtimes if ctx is not None else lambda: [])
    return decide(evidence, forced)


def shared_ports(env: StackEnv, platform: Platform) -> list[tuple[str, str, int]]:
    """Pairs of `.env` port keys set to the same port: (first key, second key, port)."""
    specs = expected_services(platform)
    return [
        (a.port_key, b.port_key, env.port_of(a))
        for i, a in enumerate(specs)
        for b in specs[i + 1 :]
        if env.port_of(a) == env.port_of(b)
    ]


def busy_ports(ctx: Context, platform: Platform, listed: list[ContainerInfo]) -> list[tuple[str, int]]:
    """Ports the stack would publish that something else already holds."""
    held_by_us = {
        p.host_port for c in listed if c.installation == ctx.project and c.state == "running" for p in c.ports
    }
    busy = []
    for spec in expected_services(platform):
        port = ctx.env.port_of(spec)
        if port in held_by_us:
            continue
        if not net.port_free(ctx.env.BIND_ADDRESS, port):
            busy.append((spec.port_key, port))
    return busy


def require_free_ports(ctx: Context, platform: Platform, listed: list[ContainerInfo]) -> None:
    """Each service its own port, and none held by another program: checked before `up`."""
    for first, second, port in shared_ports(ctx.env, platform):
        raise StackError(
            f"{first} and {second} are both {port} in {config.env_path(ctx.home)}; each service needs its own port.",
            f"Set {second} to another free port in that file.",
            slug="port_conflict",
        )
    for key, port in busy_ports(ctx, platform, listed):
        raise StackError(
            f"Port {port} on {ctx.env.BIND_ADDRESS} is already in use ({key}).",
            f"Stop what uses it, or set {key} to a free port in {config.env_path(ctx.home)}.",
            slug="port_in_use",
        )
