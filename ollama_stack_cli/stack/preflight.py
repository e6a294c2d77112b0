"""Before anything changes: which platform, and are the ports this start needs free?"""

from __future__ import annotations

from .. import config
from ..errors import ExitCode, StackError
from ..platforms import decide, gather_evidence
from ..schemas import PLATFORMS, ContainerInfo, Platform, PlatformDecision, StackEnv
from .context import Context, expected_services
from .reach import busy_ports


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
    if ctx is None:
        return decide(gather_evidence(None), forced)
    evidence = gather_evidence(ctx.engine.runtimes, engine_local=ctx.engine.endpoint.local)
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
            f"Port {port} on {ctx.env.BIND_ADDRESS} is already in use ({key}) on the engine's host.",
            f"Stop what uses it, or set {key} to a free port in {config.env_path(ctx.home)}.",
            slug="port_in_use",
        )
