"""The Typer app: global options, command wiring, and the one error boundary.

Command modules are imported inside the command functions, so `--help` and
`status --json` pay only for what they use.
"""

from __future__ import annotations

import copy
import gc
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from . import __version__, typer_patches
from .errors import ExitCode, StackError
from .output import Output

if TYPE_CHECKING:
    from . import stack
    from .schemas import Platform

HELP = """Run Ollama, Open WebUI and an MCP proxy on Docker with one command.

Examples:

  ollama-stack start            start the stack and wait until it answers

  ollama-stack status --json    machine-readable state (exit 3 when stopped)

  ollama-stack stop             stop it; models and chats are kept

Exit codes: 0 ok, 1 failed, 2 usage, 3 not running, 4 no Docker/compose,
5 locked by another operation, 130 interrupted.
"""


typer_patches.apply()

app = typer.Typer(
    name="ollama-stack",
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class AppState:
    """Global options, shared by every command of one invocation."""

    output: Output = field(default_factory=Output)
    home_option: str | None = None
    lock_timeout: float = 10.0

    @property
    def home(self) -> Path:
        from .config import resolve_home

        return resolve_home(self.home_option)


STATE = AppState()

JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout; progress goes to stderr.")]
PlatformOption = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional at runtime on 3.10
    typer.Option("--platform", help="cpu, nvidia, rocm (AMD) or apple; detected when omitted.", show_default=False),
]
NoWaitOption = Annotated[bool, typer.Option("--no-wait", help="Return once containers are created.")]
TimeoutOption = Annotated[float, typer.Option("--timeout", min=1, help="Seconds to wait for every service to answer.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ollama-stack {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    home: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--home",
            help="Stack home (state, .env, lock). Default: $OLLAMA_STACK_HOME or the per-user app dir.",
            show_default=False,
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug log on stderr.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and results.")] = False,
    lock_timeout: Annotated[
        float, typer.Option("--lock-timeout", min=0, help="Seconds to wait for another operation's lock.")
    ] = 10.0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    STATE.home_option = home
    STATE.lock_timeout = lock_timeout
    STATE.output.quiet = quiet
    STATE.output.verbose = verbose
    if verbose:
        import logging

        from .docker_client import log

        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
        log.enabled = True


def reading(*, docker: bool = True) -> stack.Context:
    """The context of a read-only command: loaded once, nothing created, no lock."""
    from . import stack

    ctx = stack.load(STATE.home)
    if docker:
        preflight(ctx)
    startup_done()
    return ctx


@contextmanager
def changing(command: str, *, docker: bool = True) -> Iterator[stack.Context]:
    """Hold the home's lock around a command that changes anything, and load its context.

    An operation a killed process left half done is repaired first; then the
    context is read (once, after the repair) and the pre-flight runs.
    """
    from . import stack
    from .config import ensure_home
    from .docker_client import Engine, Journal, operation_lock

    home = STATE.home
    ensure_home(home)
    with operation_lock(home, command, STATE.lock_timeout, STATE.output.progress):
        if Journal.has_open(home):
            note = stack.recover(home, Engine())
            if note:
                STATE.output.warn(note)
        ctx = stack.load(home)
        if docker:
            preflight(ctx)
        startup_done()
        yield ctx


def startup_done() -> None:
    """Turn the garbage collector back on once the modules and the context are loaded.

    `cli()` starts with it off: start-up allocates hundreds of thousands of objects
    that all live until exit, and the collector's passes over them cost ~6% of the
    start-up (measured with `time.process_time`). Frozen, they are never scanned again;
    long commands (a health wait, a pull, logs) then collect their own garbage as usual.
    A no-op where the collector was on (tests driving the app in-process).
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


def _platform_option(value: str | None) -> Platform | None:
    from .stack import require_valid_platform

    return require_valid_platform(value)


def preflight(ctx: stack.Context) -> None:
    """Before a command touches Docker: the engine answers and Compose v2 is there (exit 4)."""
    ctx.engine.ping()
    ctx.compose_command  # noqa: B018 - found now, so a missing compose fails before any change


UpdateOption = Annotated[
    bool, typer.Option("--update", help="Pull newer images first; changed services are recreated.")
]


@app.command()
def start(
    platform: PlatformOption = None,
    update: UpdateOption = False,
    no_wait: NoWaitOption = False,
    timeout: TimeoutOption = 600.0,
    json_: JsonOption = False,
) -> None:
    """Start the stack and wait until every service answers.

    Already running and healthy: changes nothing and exits 0. On first start the
    home's .env is created with generated secrets.

    Example: ollama-stack start --platform cpu --timeout 300
    """
    from .commands import start as cmd

    STATE.output.json_mode = json_
    forced = _platform_option(platform)  # a usage error before anything is created
    with changing("start") as ctx:
        result = cmd.run(ctx, STATE.output, platform=forced, wait=not no_wait, timeout=timeout, update=update)
    cmd.render(result, STATE.output, cmd.next_steps(ctx, result, STATE.output))


@app.command()
def stop(json_: JsonOption = False) -> None:
    """Stop the stack: containers and network are removed, volumes (models, chats) kept.

    Stopping a stopped stack does nothing and exits 0.
    """
    from .commands import stop as cmd

    STATE.output.json_mode = json_
    with changing("stop") as ctx:
        result = cmd.run(ctx, STATE.output)
    cmd.render(result, STATE.output)


@app.command()
def restart(
    platform: PlatformOption = None,
    update: UpdateOption = False,
    no_wait: NoWaitOption = False,
    timeout: TimeoutOption = 600.0,
    json_: JsonOption = False,
) -> None:
    """Stop, then start, holding the lock throughout."""
    from .commands import start as start_cmd
    from .commands import stop as stop_cmd

    STATE.output.json_mode = json_
    forced = _platform_option(platform)
    with changing("restart") as ctx:
        stop_cmd.run(ctx, STATE.output)
        result = start_cmd.run(ctx, STATE.output, platform=forced, wait=not no_wait, timeout=timeout, update=update)
    start_cmd.render(result, STATE.output, start_cmd.next_steps(ctx, result, STATE.output))


@app.command()
def status(json_: JsonOption = False) -> None:
    """Show services, health, ports and platform. Exit 3 when the stack is not running."""
    from .commands import status as cmd

    STATE.output.json_mode = json_
    result = cmd.run(reading(docker=False))  # one listing is all it asks of the engine
    cmd.render(result, STATE.output)
    if not result.running:
        raise typer.Exit(ExitCode.NOT_RUNNING)


YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Answer yes to confirmations (needed without a terminal).")
]


@app.command()
def update(
    yes: YesOption = False,
    timeout: TimeoutOption = 600.0,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Go back to the images and data from before the last update.")
    ] = False,
    json_: JsonOption = False,
) -> None:
    """Pull newer images for the core and enabled extensions, then recreate only what changed.

    The stack keeps running while images download; a failed pull changes nothing.
    Before recreating, the previous images are kept and Open WebUI's data is backed up
    in the home (the last 3); a service that does not become healthy puts both back
    (exit 1). `--rollback` undoes the last update the same way.
    """
    from .commands import update as cmd

    STATE.output.json_mode = json_
    with changing("update") as ctx:
        report = (cmd.rollback if rollback else cmd.run)(ctx, STATE.output, yes, timeout)
    cmd.render(report, STATE.output)


@app.command()
def uninstall(
    remove_volumes: Annotated[
        bool, typer.Option("--remove-volumes", help="Also delete the volumes (models, chats), after a warning.")
    ] = False,
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Remove this installation's containers and networks; other installations are never touched."""
    from .commands import uninstall as cmd

    STATE.output.json_mode = json_
    with changing("uninstall") as ctx:
        report = cmd.run(ctx, STATE.output, remove_volumes, yes)
    cmd.render(report, STATE.output, STATE.home)


@app.command()
def backup(
    output_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--output",
            "-o",
            help="Archive to write (.tar, or .tar.gz to compress). Default: ./ollama-stack-backup-PROJECT-TIME.tar",
            show_default=False,
        ),
    ] = None,
    include_models: Annotated[bool, typer.Option("--include-models", help="Also back up the models volume.")] = False,
    json_: JsonOption = False,
) -> None:
    """Write one verified archive: .env, state and Open WebUI's data (chats, accounts, uploads).

    The database is copied consistently while the stack runs. The archive holds your
    secrets: it is written readable by you only (0600).

    Example: ollama-stack backup --output ~/stack.tar
    """
    from .commands import backup as cmd

    STATE.output.json_mode = json_
    with changing("backup") as ctx:
        report = cmd.run(ctx, STATE.output, output_file, include_models)
    cmd.render(report, STATE.output)


@app.command()
def restore(
    archive: Annotated[Path, typer.Argument(help="An archive written by `ollama-stack backup`.", show_default=False)],
    yes: YesOption = False,
    json_: JsonOption = False,
) -> None:
    """Replace this home's data and .env with an archive's; the stack is started again if it ran.

    The archive is checked member by member as it is unpacked beside the current data,
    so nothing changes (and a running stack keeps running) if it is damaged or foreign.
    A failure or interruption puts the previous data back. Into an empty home, this
    moves a stack to another machine.
    """
    from .commands import restore as restore_cmd
    from .commands import start as start_cmd

    STATE.output.json_mode = json_
    with changing("restore") as ctx:
        report = restore_cmd.run(ctx, STATE.output, archive, yes)
        if report.was_running:
            from . import stack

            fresh = stack.load(ctx.home)
            fresh._engine, fresh._compose_command = ctx._engine, ctx._compose_command
            start_cmd.run(fresh, STATE.output, platform=None, wait=True, timeout=600.0, update=False)
            report.started = True
    restore_cmd.render(report, STATE.output)


@app.command()
def check(platform: PlatformOption = None, json_: JsonOption = False) -> None:
    """Check the machine: engine, compose, platform, ports, disk, home and state files.

    Exit 1 when a check fails (4 when the engine or Compose is unavailable); warnings
    do not fail. Changes nothing.
    """
    from .commands import check as cmd

    STATE.output.json_mode = json_
    report = cmd.run(STATE.home, platform)
    cmd.render(report, STATE.output)
    if report.docker_unavailable:
        raise typer.Exit(ExitCode.DOCKER_UNAVAILABLE)
    if not report.ok:
        raise typer.Exit(ExitCode.FAILED)


@app.command()
def logs(
    target: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="ollama, webui, mcp_proxy or an extension; all core services when omitted."),
    ] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep streaming new lines.")] = False,
    tail: Annotated[str, typer.Option("--tail", "-n", help="Lines from the end of each log, or 'all'.")] = "100",
    since: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--since", help="Only lines since a time: 2026-01-02T13:00:00 or relative like 10m."),
    ] = None,
) -> None:
    """Show logs of the core, one service, or one extension.

    Example: ollama-stack logs webui -f --tail 50
    """
    from .commands import logs as cmd

    tail, since = cmd.validate_tail(tail), cmd.validate_since(since)
    code = cmd.run(reading(), target, follow, tail, since)
    if code:
        raise typer.Exit(ExitCode.INTERRUPTED if code == 130 else ExitCode.FAILED)


extensions_app = typer.Typer(
    help="MCP tool servers the proxy serves to Open WebUI: list, enable, start and stop them.",
    no_args_is_help=True,
)
app.add_typer(extensions_app, name="extensions")


def _complete_extension(incomplete: str) -> list[str]:
    try:
        from .extensions import discover

        return [name for name in discover(STATE.home) if name.startswith(incomplete)]
    except Exception:  # completion must never crash the shell
        return []


ExtensionName = Annotated[
    str, typer.Argument(help="Extension name (see `extensions list`).", autocompletion=_complete_extension)
]


@extensions_app.command("list")
def extensions_list(json_: JsonOption = False) -> None:
    """List bundled and user extensions with their state. Works without Docker (state unknown)."""
    from .commands import extensions as cmd

    STATE.output.json_mode = json_
    cmd.render_list(cmd.list_(reading(docker=False), STATE.output), STATE.output)


@extensions_app.command("info")
def extensions_info(name: ExtensionName, json_: JsonOption = False) -> None:
    """Show one extension: its MCP server, platforms, required .env keys and state."""
    from .commands import extensions as cmd

    STATE.output.json_mode = json_
    cmd.render_info(cmd.info(reading(docker=False), name, STATE.output), STATE.output)


def _extension_change(action: str, name: str, json_: bool) -> None:
    """The adapter every changing `extensions` command shares: lock, act, render."""
    from .commands import extensions as cmd

    STATE.output.json_mode = json_
    # Enabling only changes the home's files: it works with the engine down.
    with changing(f"extensions {action} {name}", docker=action != "enable") as ctx:
        if action == "restart":
            cmd.stop(ctx, name, STATE.output)
        run = {"enable": cmd.enable, "disable": cmd.disable, "start": cmd.start, "restart": cmd.start, "stop": cmd.stop}
        result = run[action](ctx, name, STATE.output)
    cmd.render_status(result, STATE.output)


@extensions_app.command("enable")
def extensions_enable(name: ExtensionName, json_: JsonOption = False) -> None:
    """Enable an extension: the proxy serves its tools at /NAME, and Open WebUI offers them.

    Open WebUI gets it as a tool server at once when it runs, else at the next start.
    Example: ollama-stack extensions enable time
    """
    _extension_change("enable", name, json_)


@extensions_app.command("disable")
def extensions_disable(name: ExtensionName, json_: JsonOption = False) -> None:
    """Disable an extension, stopping its containers first (volumes kept); Open WebUI drops it."""
    _extension_change("disable", name, json_)


@extensions_app.command("sync")
def extensions_sync(json_: JsonOption = False) -> None:
    """Make Open WebUI's tool servers match the enabled extensions now.

    Start and enable/disable do this by themselves; use it when `check` reports drift
    (an admin removed an entry, or Open WebUI was not answering at the time).
    Entries an admin added by hand are never touched.
    """
    from .commands import extensions as cmd

    STATE.output.json_mode = json_
    with changing("extensions sync") as ctx:
        result = cmd.sync(ctx, STATE.output)
    cmd.render_sync(result, STATE.output)


@extensions_app.command("start")
def extensions_start(name: ExtensionName, json_: JsonOption = False) -> None:
    """Start an enabled extension's containers on the stack network."""
    _extension_change("start", name, json_)


@extensions_app.command("stop")
def extensions_stop(name: ExtensionName, json_: JsonOption = False) -> None:
    """Stop an extension's containers; its volumes are kept."""
    _extension_change("stop", name, json_)


@extensions_app.command("restart")
def extensions_restart(name: ExtensionName, json_: JsonOption = False) -> None:
    """Stop, then start an extension's containers."""
    _extension_change("restart", name, json_)


models_app = typer.Typer(
    help="Ollama's models in the stack: list, pull (checking free space first), remove, update.",
    no_args_is_help=True,
)
app.add_typer(models_app, name="models")

ModelNames = Annotated[list[str], typer.Argument(help="Model names, e.g. llama3.2 or qwen2.5:7b.", metavar="NAME...")]


def _model_names(names: list[str]) -> list[str]:
    from .stack.models import validate_names

    return validate_names(names)  # a usage error (exit 2) before any call


@models_app.command("list")
def models_list(json_: JsonOption = False) -> None:
    """List installed models: name, size, short digest, modified."""
    from .commands import models as cmd

    STATE.output.json_mode = json_
    cmd.render_list(cmd.list_(reading(docker=False)), STATE.output)


@models_app.command("ps")
def models_ps(json_: JsonOption = False) -> None:
    """Models loaded in memory, with their size in RAM and VRAM and when they unload."""
    from .commands import models as cmd

    STATE.output.json_mode = json_
    cmd.render_ps(cmd.ps(reading(docker=False)), STATE.output)


@models_app.command("pull")
def models_pull(
    names: ModelNames,
    force: Annotated[bool, typer.Option("--force", help="Pull without checking the free space first.")] = False,
    json_: JsonOption = False,
) -> None:
    """Pull models one after the other, with progress; refused when one cannot fit on the disk.

    Before bytes are written, what is still to fetch is compared with the free space where
    the models live (exit 1, insufficient_space). Example: ollama-stack models pull llama3.2
    """
    from .commands import models as cmd

    STATE.output.json_mode = json_
    names = _model_names(names)
    with changing("models pull") as ctx:
        report = cmd.pull(ctx, STATE.output, names, force)
    cmd.render_pull(report, STATE.output)


@models_app.command("rm")
def models_rm(names: ModelNames, yes: YesOption = False, json_: JsonOption = False) -> None:
    """Remove installed models (asks first; --yes without a terminal)."""
    from .commands import models as cmd

    STATE.output.json_mode = json_
    names = _model_names(names)
    with changing("models rm") as ctx:
        result = cmd.remove(ctx, STATE.output, names, yes)
    cmd.render_remove(result, STATE.output)


@models_app.command("update")
def models_update(json_: JsonOption = False) -> None:
    """Re-pull every installed model; say which changed (digest before -> after) and which were current.

    One failure does not stop the others; the command then exits 1 naming them.
    """
    from .commands import models as cmd

    STATE.output.json_mode = json_
    with changing("models update") as ctx:
        report = cmd.update(ctx, STATE.output)
    cmd.render_pull(report, STATE.output)


GLOBAL_FLAGS = {"--verbose", "-v", "--quiet", "-q"}
GLOBAL_VALUED = {"--home", "--lock-timeout"}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Let global options follow the command (`status --home X -q`), as users write them.

    Only the app's own global options move, and only before a `--`.
    """
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name = arg.split("=", 1)[0]
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif name in GLOBAL_VALUED and "=" in arg:
            front.append(arg)
        elif arg in GLOBAL_VALUED and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def app_for(args: list[str]) -> typer.Typer:
    """The app with only the invoked command (or group) in it, when the command line names one.

    Typer builds every command (signatures, type hints, parameters) before running
    one: ~8 ms for ours, for nothing. `--help`, completion and unknown names get the
    whole app, so listings and "did you mean" stay complete.
    """
    name = _command_name(args)
    if name is None or "_OLLAMA_STACK_COMPLETE" in os.environ:
        return app
    commands = [c for c in app.registered_commands if c.callback and _name_of(c.name, c.callback) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app
    only = copy.copy(app)
    only.registered_commands, only.registered_groups = commands, groups
    return only


def _command_name(args: list[str]) -> str | None:
    """The command's name, when only hoisted global options come before it."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in GLOBAL_FLAGS or (arg.split("=", 1)[0] in GLOBAL_VALUED and "=" in arg):
            i += 1
        elif arg in GLOBAL_VALUED:
            i += 2
        else:
            return None if arg.startswith("-") else arg
    return None


def _name_of(name: str | None, callback: Any) -> str:
    return name or callback.__name__.lower().replace("_", "-")  # typer's default command name


def cli() -> None:
    """Console-script entry point: the one place errors become output and exit codes."""
    gc.disable()  # until the command's context is loaded: see startup_done()
    output = STATE.output
    try:
        args = hoist_global_options(sys.argv[1:])
        result = app_for(args)(args=args, prog_name="ollama-stack", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except StackError as exc:
        output.error(exc)
        code = int(exc.code)
    except (KeyboardInterrupt, typer.Abort):
        output.error(StackError("Interrupted.", code=ExitCode.INTERRUPTED, slug="interrupted"))
        code = ExitCode.INTERRUPTED
    except Exception as exc:  # the boundary: anything unexpected is one line, not a traceback
        code = _click_error(exc, output) if _is_click_error(exc) else _unexpected(exc, output)
    _exit(int(code))


def _exit(code: int) -> None:
    """Leave without the interpreter's teardown (~20 ms of module cleanup).

    Safe here: state files are fsynced when written, locks are released, child
    processes have finished; only stdout and stderr need flushing.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed pipe (`| head`): nothing left to say
        pass
    os._exit(code)


def _is_click_error(exc: Exception) -> bool:
    """Click's usage errors, matched by shape: typer vendors click privately in new releases."""
    return hasattr(exc, "show") and isinstance(getattr(exc, "exit_code", None), int)


def _click_error(exc: Exception, output: Output) -> int:
    code: int = exc.exit_code  # type: ignore[attr-defined]
    if "--json" in sys.argv[1:]:
        output.json_mode = True
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        output.error(StackError(message, "See --help.", code=ExitCode(code), slug="usage"))
    else:
        exc.show()  # type: ignore[attr-defined]
    return code


def _unexpected(exc: Exception, output: Output) -> int:
    if output.verbose:
        import traceback

        traceback.print_exc()
    output.error(
        StackError(
            f"Unexpected error: {type(exc).__name__}: {exc}",
            "Run again with --verbose for the traceback, and report it.",
            slug="unexpected",
        )
    )
    return int(ExitCode.FAILED)


if __name__ == "__main__":
    cli()
