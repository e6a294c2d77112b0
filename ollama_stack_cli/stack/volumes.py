"""Volumes' contents through helper containers: read, stash, put back, commit (SPEC 13).

Everything goes through the Docker API (a helper container of an image already on
the engine, the archive endpoints), never through host paths under /var/lib/docker,
so it works for a non-root user and on a remote engine.

A restore unpacks the archive into a hidden stage folder inside each volume while the
stack still runs, then swaps by renames (instant whatever the size): the old contents
into a hidden stash folder, the staged ones into place. The stash stays until the
restore commits. Undo and commit are idempotent, so recovery after a `kill -9` can run
them again.
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
STAGE_PREFIX = ".ollama-stack-new-"

# Every entry of the current folder but the stash ($S) and stage ($N) folders, dotfiles
# included, as a busybox/dash loop.
_EACH = (
    'for f in * .[!.]* ..?*; do { [ -e "$f" ] || [ -L "$f" ]; } || continue; '
    '[ "$f" = "$S" ] && continue; [ "$f" = "$N" ] && continue; '
)


def volume_name(project: str, volume: str) -> str:
    """The engine's name for one of the core's compose volumes."""
    return f"{project}_{volume}"


def stash_dir(journal_id: str) -> str:
    return f"{STASH_PREFIX}{journal_id}"


def stage_dir(journal_id: str) -> str:
    return f"{STAGE_PREFIX}{journal_id}"


def _folders(journal_id: str) -> str:
    return f"S={stash_dir(journal_id)}; N={stage_dir(journal_id)}; "


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
        """Move everything in the volume but the stage folder into its stash folder (renames only)."""
        script = f'{_folders(journal_id)}mkdir -p "$S"; {_EACH}mv "$f" "$S/"; done'
        self.run_script(volume, script, "set the current data aside")

    def swap_in(self, volume: str, journal_id: str) -> None:
        """Move the staged contents into place (renames only); the stash stays until the commit."""
        back = 'for f in "$N"/* "$N"/.[!.]* "$N"/..?*; do { [ -e "$f" ] || [ -L "$f" ]; } || continue; mv "$f" .; done'
        script = f'{_folders(journal_id)}[ -d "$N" ] || exit 0; {back}; rmdir "$N"'
        self.run_script(volume, script, "put the restored data in place")

    def unstash(self, volume: str, journal_id: str, wipe: bool) -> None:
        """Put the stashed contents back and drop the stage; with `wipe`, first delete what was put beside them."""
        clear = f'{_EACH}rm -rf "$f"; done; ' if wipe else ""
        back = 'for f in "$S"/* "$S"/.[!.]* "$S"/..?*; do { [ -e "$f" ] || [ -L "$f" ]; } || continue; mv "$f" .; done'
        script = f'{_folders(journal_id)}rm -rf "$N"; [ -d "$S" ] || exit 0; {clear}{back}; rmdir "$S"'
        self.run_script(volume, script, "put the previous data back")

    def drop_stash(self, volume: str, journal_id: str) -> None:
        self.run_script(volume, f'{_folders(journal_id)}rm -rf "$S" "$N"', "remove the previous data")


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
    """Put every volume back as it was: staged data dropped, stashed contents back, created volumes removed."""
    image = entry.pre_state.helper_image
    if image is None:
        return []
    helpers = Helpers(engine, entry.project, image)
    stashed = entry.step("stash").status != "planned"
    swapped = entry.step("swap").status != "planned"
    before = entry.pre_state.volumes or []
    put_back, removed = [], []
    for name in entry.pre_state.stashed_volumes:
        if name in before:
            helpers.unstash(name, entry.id, wipe=swapped)
            if stashed:
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
