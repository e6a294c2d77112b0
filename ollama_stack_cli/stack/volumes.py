"""Volumes' contents through helper containers: read, stash, put back, commit (SPEC 13).

Everything goes through the Docker API (a helper container of an image already on
the engine, the archive endpoints), never through host paths under /var/lib/docker,
so it works for a non-root user and on a remote engine.

A restore keeps a volume's old contents inside the volume itself, in a hidden stash
folder (a rename: instant whatever the size), until it commits. Undo and commit are
idempotent, so recovery after a `kill -9` can run them again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..docker_client import Engine
from ..errors import StackError
from ..schemas import COMPOSE_PROJECT_LABEL, INSTALLATION_LABEL, JournalEntry

HELPER_LABEL = "ollama-stack.helper"
MOUNT = "/d"
STASH_PREFIX = ".ollama-stack-stash-"

# Every entry of the current folder, dotfiles included, as a busybox/dash loop.
_EACH = 'for f in * .[!.]* ..?*; do { [ -e "$f" ] || [ -L "$f" ]; } || continue; [ "$f" = "$S" ] && continue; '


def volume_name(project: str, volume: str) -> str:
    """The engine's name for one of the core's compose volumes."""
    return f"{project}_{volume}"


def stash_dir(journal_id: str) -> str:
    return f"{STASH_PREFIX}{journal_id}"


def ensure_volume(engine: Engine, project: str, volume: str, existing: list[str]) -> None:
    """Create a core volume as compose would label it, unless it exists."""
    name = volume_name(project, volume)
    if name in existing:
        return
    labels = {
        INSTALLATION_LABEL: project,
        COMPOSE_PROJECT_LABEL: project,
        "com.docker.compose.volume": volume,
    }
    engine.create_volume(name, labels)


class Helpers:
    """Helper containers of one installation, from one image already on the engine.

    Each carries `ollama-stack.helper=<project>`, so a leftover one is found and removed
    by the next command of this installation only.
    """

    def __init__(self, engine: Engine, project: str, image: str) -> None:
        self.engine = engine
        self.project = project
        self.image = image

    @contextmanager
    def container(self, mounts: dict[str, str], command: str = "") -> Iterator[str]:
        """A helper with these volumes mounted (never started without a command), removed afterwards."""
        labels = {HELPER_LABEL: self.project}
        container = self.engine.create_helper(self.image, mounts, labels, [command] if command else [])
        try:
            yield container
        finally:
            self.engine.remove_containers([container])

    def run_script(self, volume: str, script: str, what: str) -> None:
        with self.container({volume: MOUNT}, f"set -e; cd {MOUNT}; {script}") as container:
            code, output = self.engine.run_in(container)
        if code != 0:
            raise StackError(f"Could not {what} in volume {volume}: {output.strip()[-300:] or f'exit {code}'}.")

    def stash(self, volume: str, journal_id: str) -> None:
        """Move everything in the volume into its stash folder (renames only)."""
        script = f'S={stash_dir(journal_id)}; mkdir -p "$S"; {_EACH}mv "$f" "$S/"; done'
        self.run_script(volume, script, "set the current data aside")

    def unstash(self, volume: str, journal_id: str, wipe: bool) -> None:
        """Put the stashed contents back; with `wipe`, first delete what was put beside them."""
        clear = f'{_EACH}rm -rf "$f"; done; ' if wipe else ""
        back = 'for f in "$S"/* "$S"/.[!.]* "$S"/..?*; do { [ -e "$f" ] || [ -L "$f" ]; } || continue; mv "$f" .; done'
        script = f'S={stash_dir(journal_id)}; [ -d "$S" ] || exit 0; {clear}{back}; rmdir "$S"'
        self.run_script(volume, script, "put the previous data back")

    def drop_stash(self, volume: str, journal_id: str) -> None:
        self.run_script(volume, f'rm -rf "{stash_dir(journal_id)}"', "remove the previous data")


def remove_helpers(engine: Engine, project: str) -> None:
    """Helper containers a killed process left behind (they hold volumes in use)."""
    engine.remove_containers([c.id for c in engine.containers(f"{HELPER_LABEL}={project}")])


def finish_restore(engine: Engine, entry: JournalEntry) -> None:
    """Drop the stashed old contents: the restore is final (idempotent)."""
    image = entry.pre_state.helper_image
    if image is None:
        return
    helpers = Helpers(engine, entry.project, image)
    for name in entry.pre_state.stashed_volumes:
        if name in (entry.pre_state.volumes or []):
            helpers.drop_stash(name, entry.id)


def undo_restore(engine: Engine, entry: JournalEntry) -> list[str]:
    """Put every volume back as it was: stashed contents back, volumes the restore created removed."""
    image = entry.pre_state.helper_image
    if image is None:
        return []
    helpers = Helpers(engine, entry.project, image)
    extracted = entry.step("extract").status != "planned"
    before = entry.pre_state.volumes or []
    put_back, removed = [], []
    for name in entry.pre_state.stashed_volumes:
        if name in before:
            helpers.unstash(name, entry.id, wipe=extracted)
            put_back.append(name)
        elif name in engine.volumes(entry.project):
            engine.remove_volumes([name])
            removed.append(name)
    undone = []
    if put_back:
        undone.append(f"put the previous data back in {', '.join(put_back)}")
    if removed:
        undone.append(f"removed the volume(s) it had created: {', '.join(removed)}")
    return undone
