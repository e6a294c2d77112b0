"""`start`: pre-flight, first-run secrets, `compose up`, then wait until every service answers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .. import config, extensions, stack
from ..docker_client import Engine, find_compose
from ..errors import ExitCode, StackError
from ..output import Output
from ..platforms import decide, gather_evidence
from ..schemas import Platform, PlatformDecision, StackStatus

if TYPE_CHECKING:
    from rich.live import Live
    from rich.table import Table


def run(
    home: Path, output: Output, *, platform: str | None, wait: bool, timeout: float, update: bool = False
) -> StackStatus:
    forced = stack.require_valid_platform(platform)
    ctx = stack.load(home)  # refuses a corrupt state file or .env before anything changes
    engine = Engine()
    containers = engine.containers()  # the one listing this start needs; exit 4 when the engine is down
    compose_command = find_compose()
    decision = _platform(engine, forced)
    for warning in decision.warnings:
        output.warn(warning)

    ours = [c for c in containers if c.installation == ctx.project]
    current = stack.build_status(ctx, engine, containers=containers) if ours else None
    extensions_down = [
        e.name
        for e in (current.extensions if current else [])
        if e.enabled and e.state not in ("running", "in-proxy", "invalid", "missing")
    ]
    if update:
        from .update import pull

        output.progress("Pulling newer images...")
        pull(stack.compose_for(ctx, decision.platform, compose_command), output)
    elif current and current.healthy and ctx.state.platform == decision.platform and not extensions_down:
        output.progress(f"{ctx.project} is already running and healthy; nothing to do.")
        return current

    stack.require_distinct_ports(ctx, decision.platform)
    busy = stack.busy_ports(ctx, decision.platform, ours)
    if busy:
        key, port = busy[0]
        raise StackError(
            f"Port {port} on {ctx.env.BIND_ADDRESS} is already in use ({key}).",
            f"Stop what uses it, or set {key} to a free port in {config.env_path(home)}.",
            slug="port_in_use",
        )

    steps = ["files", "compose_up", "extensions_up"]
    journal = stack.begin(ctx, engine, "start", steps, decision.platform, containers)
    try:
        with journal.step("files"):
            created_env = not config.env_path(home).exists()
            ctx.env = config.ensure_env(home)
            if created_env:
                output.progress(f"Created {config.env_path(home)} with generated secrets.")
            ctx.state = config.set_platform(home, decision.platform)
            stack.sync_proxy_config(ctx)
        output.progress(f"Starting {ctx.project} ({decision.platform})...")
        with journal.step("compose_up"):
            compose = stack.compose_for(ctx, decision.platform, compose_command)
            with _busy(output, "Creating containers (the first start pulls images; that can take minutes)..."):
                compose.up()
        with journal.step("extensions_up"):
            _start_extensions(ctx, engine, decision.platform, compose_command, output)
    except BaseException as exc:
        undone = stack.rollback(home, engine, journal.entry)
        try:
            restored = stack.restore_previous(home, engine, journal.entry, compose_command)
        except StackError as again:
            restored = f"could not bring the previous stack back up ({again.message}); run `ollama-stack start`"
        if restored:
            undone.append(restored)
        journal.close()
        if undone:
            output.progress(f"Rolled back: {'; '.join(undone)} (existing volumes kept).")
        if isinstance(exc, KeyboardInterrupt):
            raise StackError(
                "Interrupted while starting; what this start had changed was undone.",
                "Run `ollama-stack start` again when ready.",
                code=ExitCode.INTERRUPTED,
                slug="interrupted",
            ) from None
        raise
    journal.close()

    if decision.platform == "apple" and not stack.native_ollama_reachable():
        output.warn("The native Ollama app does not answer on 127.0.0.1:11434; start it so Open WebUI can use it.")

    if wait:
        _wait(ctx, engine, decision, output, timeout)
    return stack.build_status(ctx, engine)


def _start_extensions(
    ctx: stack.Context, engine: Engine, platform: Platform, command: list[str], output: Output
) -> None:
    """Bring up enabled extensions that have containers; a broken one is skipped with a warning."""
    found = extensions.discover(ctx.home)
    env_values = config.read_env_values(ctx.home)
    for name in ctx.state.enabled_extensions:
        extension = found.get(name)
        if extension is None or extension.manifest is None:
            output.warn(f"Extension {name!r} is enabled but {'missing' if extension is None else 'invalid'}; skipped.")
            continue
        missing = extensions.missing_env(extension.manifest, env_values)
        if missing:
            output.warn(f"Extension {name!r} needs {', '.join(missing)} in the .env; skipped.")
            continue
        if extension.has_compose:
            output.progress(f"Starting extension {name}...")
            try:
                stack.start_extension(ctx, engine, extension, platform, command)
            except StackError as exc:
                # One broken extension must not take the core stack down with it.
                output.warn(f"Extension {name!r} did not start: {exc.message} The stack runs without it.")


def _platform(engine: Engine, forced: object) -> PlatformDecision:
    evidence = gather_evidence(engine.runtimes)
    return decide(evidence, forced)  # type: ignore[arg-type]


def _wait(ctx: stack.Context, engine: Engine, decision: PlatformDecision, output: Output, timeout: float) -> None:
    specs = stack.expected_services(decision.platform)
    display = _Display(output, [s.name for s in specs])
    try:
        with display:
            final = stack.wait_healthy(ctx, engine, specs, timeout, display.update)
    except KeyboardInterrupt:
        raise StackError(
            "Interrupted while waiting for the services to answer; the stack was started and keeps running.",
            "Check it with `ollama-stack status`, or stop it with `ollama-stack stop`.",
            code=ExitCode.INTERRUPTED,
            slug="interrupted",
        ) from None
    failed = [name for name, state in final.items() if state != "healthy"]
    if not failed:
        return
    name = failed[0]
    spec = next(s for s in specs if s.name == name)
    url = f"http://{ctx.env.url_host}:{ctx.env.port_of(spec)}{spec.health_path}"
    logs = stack.compose_for(ctx, decision.platform).logs(name, tail=20).rstrip()
    if logs and not output.json_mode:
        output.progress(f"Last log lines of {name}:")
        output.progress(logs)
    if final[name] == "exited":
        message = f"{name} stopped while starting; it never answered on {url}."
    else:
        message = f"Timed out after {timeout:.0f} s waiting for {name} to answer on {url}."
    raise StackError(
        message,
        f"The stack is left as it is: see `ollama-stack logs {name}`, retry with a longer --timeout, "
        "or `ollama-stack stop`.",
        slug="health_timeout",
        details=logs.splitlines()[-20:],
    )


@contextmanager
def _busy(output: Output, message: str) -> Iterator[None]:
    """A spinner on a terminal; nothing extra otherwise."""
    if not output.interactive:
        yield
        return
    with output.err.status(message):
        yield


class _Display:
    """A live table on a terminal; one plain line per change otherwise."""

    def __init__(self, output: Output, names: list[str]) -> None:
        self.output = output
        self.names = names
        self.live: Live | None = None
        self.last: dict[str, str] = {}

    def __enter__(self) -> _Display:
        if self.output.interactive:
            from rich.live import Live

            self.live = Live(self._table({}), console=self.output.err, refresh_per_second=8, transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)
            for name in self.names:  # the live table is transient: leave a plain record
                self.output.progress(f"  {name}: {self.last.get(name, 'waiting')}")

    def update(self, states: dict[str, str]) -> None:
        if self.live is not None:
            self.live.update(self._table(states))
        else:
            for name, state in states.items():
                if self.last.get(name) != state and state != "waiting":
                    self.output.progress(f"  {name}: {state}")
        self.last = states

    def _table(self, states: dict[str, str]) -> Table:
        from rich.spinner import Spinner
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        for name in self.names:
            state = states.get(name, "waiting")
            mark = "[green]✓[/green]" if state == "healthy" else Spinner("dots")
            table.add_row(mark, name, state)
        return table


def render(result: StackStatus, output: Output) -> None:
    if output.json_mode:
        output.emit(result)
        return
    if output.quiet:
        return
    state = "ready" if result.healthy else "started (not every service answers yet)"
    output.result(f"[bold]{result.project}[/bold] is {state}:")
    for service in result.services:
        if service.url:
            output.result(f"  {service.name:<10} {service.url}")
    for warning in result.warnings:
        output.warn(warning)
