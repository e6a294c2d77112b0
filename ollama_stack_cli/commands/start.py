"""`start`: pre-flight, first-run secrets, `compose up`, then wait until every service answers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .. import stack
from ..errors import ExitCode, StackError
from ..output import Output, TransferDisplay
from ..schemas import Platform, StackStatus, WaitState

if TYPE_CHECKING:
    from rich.live import Live
    from rich.table import Table


def run(
    ctx: stack.Context, output: Output, *, platform: Platform | None, wait: bool, timeout: float, update: bool
) -> StackStatus:
    decision = stack.decide_platform(ctx, platform)
    for warning in decision.warnings:
        output.warn(warning)
    listed = stack.containers(ctx)  # the one listing this start needs
    current = stack.build_status(ctx, listed=listed) if stack.ours(ctx, listed) else None
    extensions_down = [
        e.name
        for e in (current.extensions if current else [])
        if e.enabled and e.state not in ("running", "in-proxy", "invalid", "missing")
    ]
    if update:
        output.progress("Pulling newer images...")
        stack.pull_updates(ctx, stream=output.interactive)
    elif current and current.healthy and ctx.state.platform == decision.platform and not extensions_down:
        output.progress(f"{ctx.project} is already running and healthy; nothing to do.")
        if stack.tool_servers_lag(ctx):  # an enable or disable that Open WebUI has not seen yet
            _tool_servers(ctx, output, current)
        return current
    stack.require_free_ports(ctx, decision.platform, listed)

    # The first run's .env (generated secrets) is kept even if this start fails: it is
    # the file a failed start's hint tells the user to edit.
    created_env = not (ctx.home / ".env").exists()
    ctx.ensure_env()
    if created_env:
        output.progress(f"Created {ctx.home / '.env'} with generated secrets.")
    missing = stack.missing_images(ctx, decision.platform)
    if missing:
        output.progress(f"Pulling {len(missing)} image(s) (the first start downloads several GB)...")
        with TransferDisplay(output, plain_every=5.0) as display:
            stack.pull_images(
                ctx, missing, lambda p: display.update(p.image, p.completed, p.total, p.done), decision.platform
            )

    # No extension enabled, no extensions step: its two journal writes would record nothing.
    steps = ["files", "compose_up"] + (["extensions_up"] if ctx.state.enabled_extensions else [])
    with stack.operation(ctx, "start", steps, output.progress, platform=decision.platform, listed=listed) as journal:
        with journal.step("files"):
            ctx.record_platform(decision.platform)
            stack.sync_proxy_config(ctx)
        output.progress(f"Starting {ctx.project} ({decision.platform})...")
        with journal.step("compose_up"), _busy(output, "Creating containers..."), stack.status_prepared_meanwhile():
            ctx.compose(decision.platform).up()
        if "extensions_up" in steps:
            with journal.step("extensions_up"):
                for warning in stack.start_enabled_extensions(ctx, decision.platform, output.progress):
                    output.warn(warning)

    if decision.platform == "apple" and not stack.native_ollama_reachable():
        output.warn("The native Ollama app does not answer on 127.0.0.1:11434; start it so Open WebUI can use it.")
    if not wait:
        if stack.tool_servers_involved(ctx):
            output.warn(
                "Open WebUI's tool servers are updated once it answers; "
                "run `ollama-stack extensions sync` when it does (or start without --no-wait)."
            )
        return stack.build_status(ctx)
    answered = _wait(ctx, decision.platform, output, timeout)
    result = stack.build_status(ctx, answered=answered)  # every service just answered: not probed again
    if stack.tool_servers_involved(ctx):
        _tool_servers(ctx, output, result)
    return result


def _tool_servers(ctx: stack.Context, output: Output, result: StackStatus) -> None:
    """Bring Open WebUI's tool servers in line with the extensions; a failure becomes a warning."""
    from .extensions import report_tool_servers

    warning = report_tool_servers(stack.sync_tool_servers(ctx), output)
    if warning:
        result.warnings.append(warning)


def _wait(ctx: stack.Context, platform: Platform, output: Output, timeout: float) -> dict[str, bool]:
    """Wait until every service answers; returns that they did, or raises what did not."""
    specs = stack.expected_services(platform)
    display = _Display(output, [s.name for s in specs])
    try:
        stack.pause_point(ctx, "start:health")  # a test interrupts the wait here, at a known moment
        with display:
            final = stack.wait_healthy(ctx, specs, timeout, display.update)
    except KeyboardInterrupt:
        raise StackError(
            "Interrupted while waiting for the services to answer; the stack was started and keeps running.",
            "Check it with `ollama-stack status`, or stop it with `ollama-stack stop`.",
            code=ExitCode.INTERRUPTED,
            slug="interrupted",
        ) from None
    failed = [name for name, state in final.items() if state != "healthy"]
    if not failed:
        return {name: True for name in final}
    name = failed[0]
    spec = next(s for s in specs if s.name == name)
    url = f"http://{stack.url_host(ctx)}:{ctx.env.port_of(spec)}{spec.health_path}"
    logs = ctx.compose(platform).logs(name, tail=20).rstrip()
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
        self.last: dict[str, WaitState] = {}

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

    def update(self, states: dict[str, WaitState]) -> None:
        if self.live is not None:
            self.live.update(self._table(states))
        else:
            for name, state in states.items():
                if self.last.get(name) != state and state != "waiting":
                    self.output.progress(f"  {name}: {state}")
        self.last = states

    def _table(self, states: dict[str, WaitState]) -> Table:
        from rich.spinner import Spinner
        from rich.table import Table

        table = Table.grid(padding=(0, 1))
        for name in self.names:
            state = states.get(name, "waiting")
            mark = "[green]✓[/green]" if state == "healthy" else Spinner("dots")
            table.add_row(mark, name, state)
        return table


def render(result: StackStatus, output: Output, next_steps: Sequence[str] = ()) -> None:
    if output.json_mode:
        output.emit(result)
        return
    state = "ready" if result.healthy else "started (not every service answers yet)"
    output.result(f"[bold]{result.project}[/bold] is {state}{engine_note(result)}:")
    if result.tunnel:
        output.result(f"  The ports are on the engine's loopback; reach them with:  {result.tunnel}")
    for service in result.services:
        if service.url:
            output.result(f"  {service.name:<10} {service.url}")
    for warning in result.warnings:
        output.warn(warning)
    for line in next_steps:
        output.result(line)


def engine_note(result: StackStatus) -> str:
    """` on context gpu (ssh://me@gpu-box)` for any engine but the default one."""
    engine = result.engine
    if engine is None or engine.source == "default":
        return ""
    return f" on {engine.source} ({engine.host})"


def next_steps(ctx: stack.Context, result: StackStatus, output: Output) -> list[str]:
    """What to do next (SPEC 12): the URL to open, who becomes admin, how to get a model."""
    if output.json_mode or output.quiet or not result.healthy:
        return []
    webui = next((s.url for s in result.services if s.name == "webui" and s.url), None)
    lines = ["", "Next steps:"]
    if webui:
        first = stack.awaiting_first_account(webui)
        after = "." if first is None else "; the first account you create there becomes the admin."
        lines.append(f"  Open {webui} in your browser{' and sign in.' if first is False else after}")
    if stack.models.any_installed(ctx) is False:
        lines.append("  No model is installed yet: ollama-stack models pull NAME   (e.g. llama3.2)")
    return lines if len(lines) > 2 else []
