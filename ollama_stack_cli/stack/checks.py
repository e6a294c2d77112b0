"""The checks behind `check`: is this machine ready to run the stack, and if not, what to do.

Every check is independent: a failing one (Docker down, a corrupt file) is reported
and the others still run. Read-only: nothing is created or changed.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

from .. import config, net
from ..docker_client import Engine, Journal, compose_version, find_compose
from ..errors import StackError
from ..platforms import decide, gather_evidence
from ..schemas import CheckReport, CheckResult, EngineInfo, Platform, StackEnv
from .context import expected_services, load
from .extension_runtime import ready_extensions
from .preflight import require_valid_platform, shared_ports
from .status import service_running
from .tool_servers import sync_tool_servers

GIB = 1024**3
MIN_ENGINE = (20, 10)


def run_checks(home: Path, platform: str | None) -> CheckReport:
    checks: list[CheckResult] = []
    env = _guard(checks, "env-file", lambda: _env_file(home))
    state_ok = _guard(checks, "state-file", lambda: _state_file(home)) is not None
    checks.append(_home(home))
    if Journal.has_open(home):
        checks.append(
            CheckResult(
                name="journal",
                status="warn",
                detail="an interrupted operation was found",
                fix="Run `ollama-stack status` (or any command) to repair it.",
            )
        )
    engine = Engine()
    engine_ok = _guard(checks, "engine", lambda: _engine(engine)) is not None
    compose_ok = _guard(checks, "compose", _compose) is not None
    decision = _platform(engine if engine_ok else None, require_valid_platform(platform))
    checks.append(decision[0])
    settings = env if isinstance(env, StackEnv) else StackEnv()
    checks.extend(_ports(home, settings, engine if engine_ok else None, decision[1]))
    if engine_ok:
        checks.append(_disk(engine))
    checks.append(_bind(settings))
    if engine_ok and state_ok and isinstance(env, StackEnv):
        _guard(checks, "openwebui-tool-servers", lambda: (_tool_servers(home, engine), None))
    ok = all(c.status != "fail" for c in checks)
    try:
        engine_info: EngineInfo | None = engine.endpoint.info()
    except StackError:  # a context that does not exist: the engine check says so
        engine_info = None
    return CheckReport(
        ok=ok,
        platform=decision[1],
        checks=checks,
        docker_unavailable=not (engine_ok and compose_ok),
        engine=engine_info,
    )


def _guard(checks: list[CheckResult], name: str, probe: Callable[[], tuple[CheckResult, object]]) -> object:
    """Run one check; an expected error becomes a failing result instead of stopping `check`."""
    try:
        result, value = probe()
    except StackError as exc:
        checks.append(CheckResult(name=name, status="fail", detail=exc.message, fix=exc.hint))
        return None
    checks.append(result)
    return value


def _env_file(home: Path) -> tuple[CheckResult, StackEnv]:
    path = config.env_path(home)
    settings = config.read_env(home)
    if not path.exists():
        return CheckResult(name="env-file", status="pass", detail="not created yet (start creates it)"), settings
    mode = stat.S_IMODE(path.stat().st_mode)
    secrets = "secrets set (hidden)" if settings.WEBUI_SECRET_KEY and settings.MCP_PROXY_API_KEY else "secrets not yet"
    duplicates = config.env_duplicates(home)
    if duplicates:
        fix = "Keep one line per key."
        return CheckResult(name="env-file", status="warn", detail=" ".join(duplicates), fix=fix), settings
    if mode & 0o077:
        return (
            CheckResult(
                name="env-file",
                status="warn",
                detail=f"{path} is readable by others (mode {mode:o}); it holds secrets",
                fix=f"chmod 600 {path}",
            ),
            settings,
        )
    return CheckResult(name="env-file", status="pass", detail=f"{path} valid, mode 600, {secrets}"), settings


def _state_file(home: Path) -> tuple[CheckResult, bool]:
    path = config.state_path(home)
    config.read_state(home)
    detail = f"{path} valid" if path.exists() else "not created yet"
    return CheckResult(name="state-file", status="pass", detail=detail), True


def _home(home: Path) -> CheckResult:
    if not home.exists():
        return CheckResult(name="home", status="pass", detail=f"{home} (created on first start)")
    if not home.is_dir():
        return CheckResult(
            name="home", status="fail", detail=f"{home} is not a directory", fix="Move that file aside or use --home."
        )
    mode = stat.S_IMODE(home.stat().st_mode)
    if not os.access(home, os.W_OK):
        return CheckResult(
            name="home", status="fail", detail=f"{home} is not writable", fix="Fix its owner or use --home."
        )
    if mode & 0o077:
        return CheckResult(
            name="home", status="warn", detail=f"{home} is open to others (mode {mode:o})", fix=f"chmod 700 {home}"
        )
    return CheckResult(name="home", status="pass", detail=f"{home} (mode 700)")


def _engine(engine: Engine) -> tuple[CheckResult, str]:
    version = engine.version()
    endpoint = engine.endpoint
    where = f"at {endpoint.host} ({endpoint.source}{'' if endpoint.local else ', on another machine'})"
    parts = tuple(int(p) for p in version.split("+")[0].split(".")[:2] if p.isdigit())
    if parts and parts < MIN_ENGINE:
        return (
            CheckResult(
                name="engine",
                status="warn",
                detail=f"Docker Engine {version} is older than 20.10",
                fix="Upgrade Docker Engine.",
            ),
            version,
        )
    return CheckResult(name="engine", status="pass", detail=f"Docker Engine {version} reachable {where}"), version


def _compose() -> tuple[CheckResult, list[str]]:
    command = find_compose()
    version = compose_version(command) or "?"
    return CheckResult(name="compose", status="pass", detail=f"Compose v{version} ({' '.join(command)})"), command


def _platform(engine: Engine | None, forced: Platform | None) -> tuple[CheckResult, Platform]:
    evidence = gather_evidence(
        engine.runtimes if engine else None, engine_local=engine is None or engine.endpoint.local
    )
    decision = decide(evidence, forced)
    detail = f"{decision.platform} ({decision.source}): " + "; ".join(decision.evidence)
    if decision.warnings:
        return CheckResult(
            name="platform", status="warn", detail=detail, fix=" ".join(decision.warnings)
        ), decision.platform
    return CheckResult(name="platform", status="pass", detail=detail), decision.platform


def _ports(home: Path, env: StackEnv, engine: Engine | None, platform: Platform) -> list[CheckResult]:
    """Each port free where it will be published: on this machine, or on a remote engine's host.

    A remote host is asked through its engine: the ports its containers publish (a
    program outside Docker there is not visible from here).
    """
    held: set[int] = set()
    remote: set[int] | None = None
    if engine is not None:
        held = {p.host_port for c in engine.containers() if c.installation == env.PROJECT_NAME for p in c.ports}
        if not engine.endpoint.local:
            remote = {p.host_port for p in engine.all_published_ports()}
    results = [
        CheckResult(
            name=f"port {first}",
            status="fail",
            detail=f"{first} and {second} are both {port}",
            fix=f"Set {second} to another free port in {config.env_path(home)}.",
        )
        for first, second, port in shared_ports(env, platform)
    ]
    for spec in expected_services(platform):
        port = env.port_of(spec)
        name = f"port {spec.port_key}"
        if port in held:
            results.append(CheckResult(name=name, status="pass", detail=f"{port} held by this stack"))
        elif remote is not None and port not in remote:
            detail = f"{port} not published by any container on the engine's host"
            results.append(CheckResult(name=name, status="pass", detail=detail))
        elif remote is None and net.port_free(env.BIND_ADDRESS, port):
            results.append(CheckResult(name=name, status="pass", detail=f"{port} free on {env.BIND_ADDRESS}"))
        elif engine is None:
            results.append(
                CheckResult(
                    name=name,
                    status="warn",
                    detail=f"{port} is in use; with the engine unreachable, it may be this stack's own",
                )
            )
        else:
            results.append(
                CheckResult(
                    name=name,
                    status="fail",
                    detail=f"{port} is published by another container on the engine's host"
                    if remote is not None
                    else f"{port} on {env.BIND_ADDRESS} is used by another program",
                    fix=f"Stop it, or set {spec.port_key} to a free port in {config.env_path(home)}.",
                )
            )
    return results


def _disk(engine: Engine) -> CheckResult:
    root = str(engine.info().get("DockerRootDir") or "/var/lib/docker")
    if not engine.endpoint.local:
        return CheckResult(
            name="disk",
            status="warn",
            detail=f"the engine is on another machine; its disk ({root}) is not visible here",
        )
    try:
        free = int(os.environ.get("OLLAMA_STACK_TEST_DISK_FREE") or shutil.disk_usage(root).free)  # tests
    except OSError:
        return CheckResult(
            name="disk", status="warn", detail=f"cannot see the engine's disk ({root}); a remote or VM engine?"
        )
    detail = f"{free / GIB:.1f} GiB free where volumes live ({root})"
    if free < 2 * GIB:
        return CheckResult(name="disk", status="fail", detail=detail, fix="Free disk space: models need several GiB.")
    if free < 20 * GIB:
        return CheckResult(name="disk", status="warn", detail=detail, fix="Large models need 5-40 GiB each.")
    return CheckResult(name="disk", status="pass", detail=detail)


def _bind(env: StackEnv) -> CheckResult:
    if env.is_loopback:
        return CheckResult(name="bind-address", status="pass", detail=f"ports bind to {env.BIND_ADDRESS} only")
    return CheckResult(
        name="bind-address",
        status="warn",
        detail=f"ports are published on {env.BIND_ADDRESS}: other machines can reach Ollama, which has no login",
        fix="Set BIND_ADDRESS=127.0.0.1 in the .env unless you mean to expose the stack.",
    )


def _tool_servers(home: Path, engine: Engine) -> CheckResult:
    """Does Open WebUI offer exactly the enabled extensions? Read-only: compares, never writes."""
    name = "openwebui-tool-servers"
    ctx = load(home, engine)
    wanted = ready_extensions(ctx)
    if not service_running(ctx, engine.containers(), "webui"):
        detail = "Open WebUI is not running; it gets the enabled extensions at the next start"
        return CheckResult(name=name, status="pass", detail=detail)
    result = sync_tool_servers(ctx, write=False)
    fix = "Run `ollama-stack extensions sync`."
    if result.outcome == "failed":
        return CheckResult(name=name, status="warn", detail=result.detail, fix=fix)
    if result.drift:
        parts = [
            f"{what}: {', '.join(names)}"
            for what, names in (
                ("missing", result.added),
                ("left over", result.removed),
                ("out of date", result.updated),
            )
            if names
        ]
        return CheckResult(name=name, status="warn", detail="Open WebUI's tool servers " + "; ".join(parts), fix=fix)
    offered = ", ".join(wanted) or "none"
    return CheckResult(name=name, status="pass", detail=f"Open WebUI offers the enabled extensions ({offered})")
