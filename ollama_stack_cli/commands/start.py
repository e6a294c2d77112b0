"""`start`: pre-flight, first-run secrets, `compose up`, then wait until every service answers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import config, extensions, stack
from ..docker_client import Engine, PullProgress, find_compose, pause_for_tests
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
        if stack.tool_servers_lag(ctx):  # an enable or disable that Open WebUI has not seen yet
            _tool_servers(ctx, compose_command, output, current)
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

    # The first run's .env (generated secrets) is kept even if this start fails: it is
    # the file a failed start's hint tells the user to edit.
    created_env = not config.env_path(home).exists()
    ctx.env = config.ensure_env(home)
    if created_env:
        output.progress(f"Created {config.env_path(home)} with generated secrets.")
    _pull_missing(ctx, engine, decision.platform, output)

    steps = ["files", "compose_up", "extensions_up"]
    journal = stack.begin(ctx, engine, "start", steps, decision.platform, containers)
    try:
        with journal.step("files"):
            ctx.state = config.set_platform(home, decision.platform)
            stack.sync_proxy_config(ctx)
        output.progress(f"Starting {ctx.project} ({decision.platform})...")
        with journal.step("compose_up"):
            compose = stack.compose_for(ctx, decision.platform, compose_command)
            with _busy(output, "Creating containers..."):
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

    if not wait:
        if ctx.state.enabled_extensions or ctx.state.openwebui_tool_servers:
            output.warn(
                "Open WebUI's tool servers are updated once it answers; "
                "run `ollama-stack extensions sync` when it does (or start without --no-wait)."
            )
        return stack.build_status(ctx, engine)
    _wait(ctx, engine, decision, output, timeout)
    result = stack.build_status(ctx, engine)
    if ctx.state.enabled_extensions or ctx.state.openwebui_tool_servers:
        _tool_servers(ctx, compose_command, output, result)
    return result


def _tool_servers(ctx: stack.Context, command: list[str], output: Output, result: StackStatus) -> None:
    """Bring Open WebUI's tool servers in line with the extensions; a failure becomes a warning."""
    from .extensions import report_tool_servers

    warning = report_tool_servers(stack.sync_tool_servers(ctx, command), output)
    if warning:
        result.warnings.append(warning)


def _pull_missing(ctx: stack.Context, engine: Engine, platform: Platform, output: Output) -> None:
    """Pull the core images that are not here yet, with progress: the first start's long wait.

    Before anything is created, so a failed pull leaves nothing to roll back; the
    error names the image, the registry's reason and the .env key that chose it.
    """
    missing = [spec for spec in stack.expected_services(platform) if engine.image_id(ctx.env.image_of(spec)) is None]
    if not missing:
        return
    output.progress(f"Pulling {len(missing)} image(s) (the first start downloads several GB)...")
    with PullDisplay(output) as display:
        for spec in missing:
            image = ctx.env.image_of(spec)
            try:
                engine.pull(image, display.update)
            except StackError as exc:
                exc.hint = (
                    f"Check {spec.image_key} in {config.env_path(ctx.home)}, your network, "
                    "or `docker login` for a private registry."
                )
                raise


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
        if platform not in extension.manifest.platforms:  # enabled before the first start chose a platform
            output.warn(f"Extension {name!r} does not support the {platform} platform; skipped.")
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
        pause_for_tests(ctx.home, "start:health")  # a test interrupts the wait here, at a known moment
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


class PullDisplay:
    """Download bars on a terminal; in a pipe a line per image now and then, and when done."""

    PLAIN_EVERY = 5.0  # seconds between plain progress lines for one image

    def __init__(self, output: Output) -> None:
        self.output = output
        self.bars: Any = None
        self.tasks: dict[str, Any] = {}
        self.last_line: dict[str, float] = {}

    def __enter__(self) -> PullDisplay:
        if self.output.interactive:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self.bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=self.output.err,
            )
            self.bars.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bars is not None:
            self.bars.__exit__(None, None, None)

    def update(self, progress: PullProgress) -> None:
        if self.bars is not None:
            task = self.tasks.get(progress.image)
            if task is None:
                task = self.tasks[progress.image] = self.bars.add_task(progress.image, total=None)
            total = progress.total or None
            self.bars.update(task, completed=progress.completed, total=total)
            if progress.done:
                self.bars.update(task, completed=progress.total, total=progress.total or 1)
            return
        now = time.monotonic()
        if progress.done:
            self.output.progress(f"  {progress.image}: pulled ({_size(progress.total)})")
        elif now - self.last_line.get(progress.image, 0.0) >= self.PLAIN_EVERY:
            self.last_line[progress.image] = now
            self.output.progress(f"  {progress.image}: {_size(progress.completed)} of {_size(progress.total)}")


def _size(count: int) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 1e9 else f"{count / 1e6:.1f} MB"
