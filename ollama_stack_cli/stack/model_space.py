"""Free space where the models live (SPEC 12): measured before a pull, compared with what it still needs.

Inside the ollama container, `df` runs through the engine (so it holds on a remote
engine too); on `apple`, the host's models directory (OLLAMA_MODELS, else
~/.ollama/models) is measured here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import ExitCode, StackError
from ..output import human_size
from ..schemas import ModelStore
from .context import Context
from .status import containers

# Where Ollama keeps models unless OLLAMA_MODELS says otherwise (also inside the image).
DF_SCRIPT = 'd="${OLLAMA_MODELS:-$HOME/.ollama/models}"; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; df -Pk "$d"'


def model_store(ctx: Context) -> ModelStore:
    """Free space where the models live: in the ollama container, or the host's dir on apple."""
    if ctx.platform == "apple":
        path = Path(os.environ.get("OLLAMA_MODELS") or Path.home() / ".ollama" / "models")
        while not path.exists() and path != path.parent:
            path = path.parent
        return ModelStore(where=f"{path} on this machine", available=shutil.disk_usage(path).free)
    container = require_running(ctx)
    code, output = ctx.engine.exec_output(container, ["sh", "-c", DF_SCRIPT])
    parsed = parse_df(output) if code == 0 else None
    if parsed is None:
        raise StackError(
            f"Could not measure the free space in the ollama container: {output.strip()[:200] or code}.",
            "Pass --force to pull without the free-space check.",
            slug="free_space_unknown",
        )
    available, mount = parsed
    return ModelStore(where=f"{mount} in the ollama container ({ctx.project})", available=available)


def parse_df(output: str) -> tuple[int, str] | None:
    """`df -Pk` output -> (bytes available, mount point), or None when it does not parse."""
    lines = [line.split() for line in output.strip().splitlines() if line.strip()]
    if len(lines) < 2 or len(lines[-1]) < 6 or not lines[-1][3].isdigit():
        return None
    fields = lines[-1]
    return int(fields[3]) * 1024, " ".join(fields[5:])


def require_room(name: str, to_fetch: int, store: ModelStore) -> None:
    """Refuse (exit 1, insufficient_space) a pull whose remaining bytes exceed the free space."""
    if to_fetch > store.available:
        raise StackError(
            f"Not enough space to pull {name}: it needs {human_size(to_fetch)}, "
            f"and {human_size(store.available)} is free at {store.where}.",
            "Free some space (`ollama-stack models rm NAME`), or pass --force to pull anyway.",
            slug="insufficient_space",
        )


def _ollama_container(ctx: Context) -> str | None:
    """The running ollama container's id, or None."""
    for c in containers(ctx):
        if c.project == ctx.project and c.service == "ollama" and c.state == "running":
            return c.id
    return None


def require_running(ctx: Context) -> str:
    container = _ollama_container(ctx)
    if container is None:
        raise StackError(
            f"{ctx.project} is not running, so its Ollama is not there.",
            "Start it first: ollama-stack start",
            code=ExitCode.NOT_RUNNING,
            slug="not_running",
        )
    return container
