"""One way to run a change: the journal, rollback in reverse, and recovery after a crash (SPEC 7).

Every changing command wraps its steps in `operation(...)`: the pre-state is written
to the journal before anything changes, each step is recorded as it completes, and a
failure or Ctrl-C undoes this operation's own steps in reverse, with one policy for
all. A journal left open by a killed process is found and repaired by `recover`.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import config
from ..docker_client import CorruptJournal, Engine, Journal, describe_holder, file_digest, lock_if_free
from ..errors import ExitCode, StackError
from ..schemas import ContainerInfo, JournalEntry, Platform, PreState
from .context import Context, load
from .extension_runtime import stop_all_extensions
from .volumes import finish_restore, remove_helpers, undo_restore

# Home files an operation may change, restored on rollback (home-relative).
TRACKED_FILES = (config.STATE_FILE, config.ENV_FILE, f"{config.PROXY_CONFIG_DIR}/{config.PROXY_CONFIG_FILE}")

# Steps `rollback` knows how to undo; others (recreate, stop) can only be reported.
UNDOABLE_STEPS = ("compose_up", "extensions_up", "files", "stack_down", "stage", "stash", "swap")
# Steps after which a stopped stack is brought back up by a rollback.
BRINGS_BACK = ("compose_up", "stack_down")


@contextmanager
def operation(
    ctx: Context,
    name: str,
    steps: list[str],
    on_undo: Callable[[str], None],
    *,
    docker: bool = True,
    platform: Platform | None = None,
    listed: list[ContainerInfo] | None = None,
    stash: list[str] | None = None,
    helper_image: str | None = None,
) -> Iterator[Journal]:
    """Run a journaled change; on failure or Ctrl-C, undo what it did and say so.

    `docker=False` for changes to the home's files only (no engine needed to undo).
    A change that had started bringing containers up over a running stack (or had
    stopped it) also brings the previous stack back. `stash` names the volumes a restore
    stages into and sets aside inside themselves, through helper containers of `helper_image`. Ctrl-C
    becomes exit 130 once the undo is done.
    """
    pre_state = capture_pre_state(ctx, docker, listed)
    pre_state.stashed_volumes, pre_state.helper_image = stash or [], helper_image
    journal = Journal.begin(ctx.home, name, ctx.project, steps, pre_state, platform or ctx.platform, TRACKED_FILES)
    try:
        yield journal
    except BaseException as exc:
        undone = rollback(ctx.home, ctx.engine, journal.entry)
        if docker and _brings_back(journal.entry):
            try:
                restored = restore_previous(ctx, journal.entry)
            except StackError as again:
                restored = f"could not bring the previous stack back up ({again.message}); run `ollama-stack start`"
            if restored:
                undone.append(restored)
        journal.close()
        if undone:
            on_undo(f"Rolled back: {'; '.join(undone)} (existing volumes kept).")
        if isinstance(exc, KeyboardInterrupt):
            raise StackError(
                f"Interrupted during `{name}`; what it had changed was undone.",
                "Run it again when ready.",
                code=ExitCode.INTERRUPTED,
                slug="interrupted",
            ) from None
        raise
    journal.close()


def capture_pre_state(ctx: Context, docker: bool, listed: list[ContainerInfo] | None = None) -> PreState:
    """What an operation may need to undo. Without docker (files-only changes), files only."""
    files = {}
    for name in TRACKED_FILES:
        content = config.read_bytes(ctx.home / name)
        files[name] = content.decode("utf-8") if content is not None else None
    if not docker:
        return PreState(files=files)
    engine = ctx.engine
    ours = [c for c in (engine.containers() if listed is None else listed) if c.installation == ctx.project]
    return PreState(
        container_ids=sorted(c.id for c in ours),
        services=sorted({_service_key(c) for c in ours}),
        running_services=sorted({_service_key(c) for c in ours if c.state == "running"}),
        networks=engine.networks(ctx.project),
        volumes=engine.volumes(ctx.project),
        files=files,
    )


def _service_key(container: ContainerInfo) -> str:
    return f"{container.project}/{container.service}"


def rollback(home: Path, engine: Engine, entry: JournalEntry) -> list[str]:
    """Undo the entry's running and done steps in reverse; return what was undone.

    Containers, networks and volumes that did not exist before are removed; state
    files are put back. Anything that existed before, volumes above all, is never touched. Ctrl-C is
    ignored meanwhile: a half-finished rollback would be worse than a slow one.
    """
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if entry.pre_state.helper_image:
            remove_helpers(engine, entry.project)
        if _committing(entry):
            finish_restore(engine, entry)
            return ["finished it (the restored data is kept; the previous data was dropped)"]
        undone: list[str] = []
        for step in reversed(entry.steps):
            if step.status == "planned":
                continue
            if step.name in ("compose_up", "extensions_up"):
                undone.extend(_remove_created(engine, entry))
            elif step.name == "stage":  # reached last, in reverse: the stash and swap are undone with it
                undone.extend(undo_restore(engine, entry))
            elif step.name == "files":
                restored, kept = _restore_files(home, entry)
                if restored:
                    undone.append(f"restored {', '.join(restored)}")
                if kept:
                    undone.append(f"left {', '.join(kept)} as edited since")
        return undone
    finally:
        signal.signal(signal.SIGINT, previous)


def _committing(entry: JournalEntry) -> bool:
    return any(s.name == "commit" and s.status != "planned" for s in entry.steps)


def _brings_back(entry: JournalEntry) -> bool:
    return not _committing(entry) and any(s.name in BRINGS_BACK and s.status != "planned" for s in entry.steps)


def _remove_created(engine: Engine, entry: JournalEntry) -> list[str]:
    """Remove containers of services that did not exist before; never a recreated one."""
    before = set(entry.pre_state.container_ids)
    existed = set(entry.pre_state.services)
    created = [
        c
        for c in engine.containers()
        if c.installation == entry.project and c.id not in before and _service_key(c) not in existed
    ]
    engine.remove_containers([c.id for c in created])
    new_networks = [n for n in engine.networks(entry.project) if n not in entry.pre_state.networks]
    engine.remove_networks(new_networks)
    new_volumes: list[str] = []
    if entry.pre_state.volumes is not None:
        # Only volumes this operation created: empty, or holding what a failed start wrote.
        new_volumes = [v for v in engine.volumes(entry.project) if v not in entry.pre_state.volumes]
        failed = engine.remove_volumes(new_volumes)
        new_volumes = [v for v in new_volumes if v not in failed]
    undone = []
    if created:
        undone.append(f"removed {len(created)} container(s)")
    if new_networks:
        undone.append(f"removed network {', '.join(new_networks)}")
    if new_volumes:
        undone.append(f"removed the volume(s) it had created: {', '.join(new_volumes)}")
    return undone


def _restore_files(home: Path, entry: JournalEntry) -> tuple[list[str], list[str]]:
    """Put tracked files back; one changed since the operation wrote it is left alone."""
    restored, kept = [], []
    for name, text in entry.pre_state.files.items():
        path = home / name
        current = config.read_bytes(path)
        wanted = text.encode("utf-8") if text is not None else None
        if current == wanted:
            continue
        if name in entry.written and file_digest(path) != entry.written[name]:
            kept.append(name)
            continue
        config.restore_file(path, wanted)
        restored.append(name)
    return restored, kept


def restore_previous(ctx: Context, entry: JournalEntry) -> str:
    """After a failed change to a running stack, bring its previous configuration back up.

    Compose may have recreated services before it failed (their old containers are
    gone), so the files are restored first and compose reconciles to them.
    """
    core_running = [k for k in entry.pre_state.running_services if k.startswith(f"{entry.project}/")]
    if not core_running:
        return ""
    ctx.reload()  # the files as the rollback put them back
    ctx.compose().up([k.split("/", 1)[1] for k in core_running])
    return "brought the previous stack back up"


def recover(home: Path, engine: Engine) -> str | None:
    """Repair after an operation that died mid-way; the caller holds the lock.

    Returns one line saying what was found and done, or None when all was well.
    """
    try:
        entry = Journal.find_open(home)
    except CorruptJournal as exc:
        return f"Found a corrupt operation journal ({exc.reason}); moved it to {exc.moved_to.name}."
    if entry is None:
        return None
    found = f"Found an interrupted `{entry.operation}` (pid {entry.pid}, started {entry.started})"
    journal = Journal(home, entry)
    pending = [s for s in entry.steps if s.status != "done"]
    if not pending:
        journal.close()
        return f"{found}: all its steps had completed; nothing to repair."
    if pending[0].name == "compose_down":
        # A stop is finished rather than undone: it is idempotent and "stopped" is what was asked.
        ctx = load(home, engine)
        stop_all_extensions(ctx)
        ctx.compose(entry.platform or ctx.state.platform).down()
        journal.close()
        return f"{found}: finished stopping it."
    committing = _committing(entry)
    undone = rollback(home, engine, entry)
    if any(s.name == "stack_down" and s.status != "planned" for s in entry.steps) and not committing:
        ctx = load(home)
        ctx._engine = engine
        try:
            restored = restore_previous(ctx, entry)
        except StackError as exc:
            restored = f"could not bring the stack back up ({exc.message}); run `ollama-stack start`"
        if restored:
            undone.append(restored)
    journal.close()
    if committing:
        return f"{found}: it had all but finished; {'; '.join(undone)}."
    started = [s.name for s in entry.steps if s.status != "planned" and s.name not in UNDOABLE_STEPS]
    if started and not undone:
        return (
            f"{found}: its step '{started[-1]}' cannot be undone; "
            "run `ollama-stack start` to bring the stack to a known state."
        )
    what = "; ".join(undone) if undone else "nothing had changed yet"
    return f"{found}: rolled it back ({what}; existing volumes kept)."


def repair_if_idle(ctx: Context) -> str | None:
    """For read-only commands: repair an interrupted operation only if nobody holds the lock.

    Returns the note to show (what was repaired, or who is working), or None. The
    context is reloaded after a repair, since it may have put files back.
    """
    if not Journal.has_open(ctx.home):
        return None
    with lock_if_free(ctx.home, "status") as free:
        if not free:
            return f"Another operation is in progress: {describe_holder(ctx.home)}."
        note = recover(ctx.home, ctx.engine)
        ctx.reload()
        return note
