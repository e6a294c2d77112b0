"""Models (SPEC 12): list, pull, remove and update the models of the stack's Ollama.

Ollama is reached over its HTTP API where a user's browser would reach it: the
published OLLAMA_PORT on the bind address, or on `apple` the host's native Ollama
(`OLLAMA_HOST`, default 127.0.0.1:11434, as Ollama's own CLI finds it).

Free space: a pull learns each layer's size from Ollama's own progress stream (the
first `total` of each digest, before its bytes are written), adds up what is still
to fetch, and compares that with the free space where the models live, measured once
before the pull: inside the ollama container (`df` run through the engine, so it
holds on a remote engine too) or the host's models directory on `apple`. When it
cannot fit, the connection is closed, which makes Ollama stop; at most what Ollama
wrote between its first progress line and the cancel is left (its partial file,
which a later pull resumes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import ExitCode, StackError
from ..ollama_api import OllamaAPI
from ..schemas import (
    LoadedModel,
    LoadedModelList,
    ModelInfo,
    ModelList,
    ModelPull,
    ModelPullReport,
    ModelTransfer,
)
from .context import Context
from .health import native_address
from .model_space import model_store, require_room, require_running

T = TypeVar("T")

# host[:port]/namespace/model:tag, each part of letters, digits, '.', '_', '-'.
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
MODEL_NAME = re.compile(rf"^(?:{_PART}(?::\d+)?/)?(?:{_PART}/)?{_PART}(?::[A-Za-z0-9_][A-Za-z0-9._-]{{0,127}})?$")


def validate_names(names: list[str]) -> list[str]:
    """Refuse, before any call, a name no model can have (exit 2)."""
    for name in names:
        if len(name) > 350 or not MODEL_NAME.match(name) or ".." in name:
            raise StackError(
                f"{name!r} is not a model name.",
                "Model names look like llama3.2, qwen2.5:7b or namespace/model:tag "
                "(letters, digits, '.', '_', '-', one ':' before the tag).",
                code=ExitCode.USAGE,
                slug="invalid_model_name",
            )
    return names


def canonical(name: str) -> str:
    """`llama3.2` is `llama3.2:latest`, as Ollama lists it."""
    return name if ":" in name.rsplit("/", 1)[-1] else f"{name}:latest"


def api(ctx: Context) -> OllamaAPI:
    if ctx.platform == "apple":
        return OllamaAPI(*native_address())
    return OllamaAPI(ctx.env.url_host, ctx.env.OLLAMA_PORT)


def _call(ctx: Context, fn: Callable[[], T]) -> T:
    """Ollama not answering: the stack is stopped (exit 3, start it first) or it fails to answer (exit 1)."""
    try:
        return fn()
    except StackError as exc:
        if exc.slug == "ollama_unreachable" and ctx.platform != "apple":
            require_running(ctx)
        raise


def any_installed(ctx: Context) -> bool | None:
    """Whether Ollama holds a model; None when it does not answer (nothing to advise then)."""
    try:
        return bool(api(ctx).tags())
    except StackError:
        return None


def installed(ctx: Context) -> ModelList:
    client = api(ctx)
    return ModelList(models=[_model_info(m) for m in _call(ctx, client.tags)])


def _model_info(raw: dict[str, Any]) -> ModelInfo:
    digest = str(raw.get("digest") or "").removeprefix("sha256:")
    return ModelInfo(
        name=str(raw.get("name") or raw.get("model") or ""),
        size=int(raw.get("size") or 0),
        digest=digest[:12],
        full_digest=digest,
        modified_at=str(raw.get("modified_at") or ""),
    )


def loaded(ctx: Context) -> LoadedModelList:
    client = api(ctx)
    raw = _call(ctx, client.ps)
    models = [
        LoadedModel(
            name=str(m.get("name") or m.get("model") or ""),
            size=int(m.get("size") or 0),
            size_vram=int(m.get("size_vram") or 0),
            expires_at=str(m.get("expires_at") or ""),
            digest=str(m.get("digest") or "").removeprefix("sha256:")[:12],
        )
        for m in raw
    ]
    return LoadedModelList(models=models)


class PullMeter:
    """A pull's layers as Ollama reports them: bytes done, in all, and still to fetch."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.layers: dict[str, tuple[int, int]] = {}
        self.to_fetch = 0  # what each layer still needed when first seen
        self.status = ""

    def update(self, event: dict[str, object]) -> bool:
        """Take one event; True when a layer was seen for the first time."""
        self.status = str(event.get("status") or self.status)
        digest, total = event.get("digest"), event.get("total")
        if not isinstance(digest, str) or not isinstance(total, int) or total <= 0:
            return False
        completed = event.get("completed")
        done = completed if isinstance(completed, int) else 0
        new = digest not in self.layers
        if new:
            self.to_fetch += max(0, total - done)
        self.layers[digest] = (done, total)
        return new

    def transfer(self, done: bool = False) -> ModelTransfer:
        completed = sum(d for d, _ in self.layers.values())
        total = sum(t for _, t in self.layers.values())
        return ModelTransfer(name=self.name, completed=completed, total=total, status=self.status, done=done)


def pull(ctx: Context, name: str, on_progress: Callable[[ModelTransfer], None], *, force: bool = False) -> ModelPull:
    """Pull one model; refused (exit 1, insufficient_space) before it can fill the disk."""
    client = api(ctx)
    before = _digest_of(ctx, name)
    store = None if force else model_store(ctx)
    meter = PullMeter(name)
    on_progress(meter.transfer())
    try:
        with client.pull(name) as events:
            for event in events:
                if meter.update(event) and store is not None:
                    require_room(name, meter.to_fetch, store)  # leaving the block closes the stream: Ollama stops
                on_progress(meter.transfer())
    except StackError as exc:
        if exc.slug != "ollama_error":
            raise
        reason = exc.message.removeprefix("Ollama: ")
        if "no space left" in reason.lower():
            hint, slug = "The disk filled up: free some space (`ollama-stack models rm NAME`).", "insufficient_space"
        else:
            hint, slug = "Check the name and tag at https://ollama.com/library.", "pull_failed"
        raise StackError(f"Could not pull {name}: {reason}", hint, slug=slug) from None
    on_progress(meter.transfer(done=True))
    return ModelPull(name=name, before=before, after=_digest_of(ctx, name), downloaded=meter.to_fetch)


def _digest_of(ctx: Context, name: str) -> str | None:
    wanted = canonical(name)
    for model in installed(ctx).models:
        if model.name == wanted:
            return model.digest
    return None


def pull_each(
    ctx: Context,
    names: list[str],
    on_progress: Callable[[ModelTransfer], None],
    on_failure: Callable[[str, StackError], None],
    *,
    force: bool = False,
) -> ModelPullReport:
    """Pull each name in turn; a failure is reported and the next one still pulls.

    A stopped stack or an unreachable Ollama stops at once (nothing else would work).
    """
    report = ModelPullReport(models=[])
    for name in names:
        try:
            result = pull(ctx, name, on_progress, force=force)
        except StackError as exc:
            if exc.slug in ("not_running", "ollama_unreachable") or len(names) == 1:
                raise
            on_failure(name, exc)
            result = ModelPull(name=name, error=exc.message)
            report.failed.append(name)
        else:
            (report.changed if result.changed else report.current).append(name)
        report.models.append(result)
    return report


def require_installed(ctx: Context, names: list[str]) -> None:
    """A name that is not installed: exit 1 listing the installed ones."""
    have = {m.name for m in installed(ctx).models}
    unknown = [n for n in names if canonical(n) not in have and n not in have]
    if unknown:
        listing = ", ".join(sorted(have)) or "none"
        raise StackError(
            f"Not installed: {', '.join(unknown)}. Installed: {listing}.",
            "See `ollama-stack models list`.",
            slug="model_not_found",
        )


def remove(ctx: Context, names: list[str]) -> list[str]:
    """Remove installed models (checked with `require_installed` first)."""
    client = api(ctx)
    for name in names:
        client.delete(name)
    return names
