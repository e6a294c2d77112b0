"""The images the stack runs: pulling what is missing or newer, recreating what changed."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ..docker_client import Compose, PullProgress, translate_compose_error
from ..errors import StackError
from ..schemas import ContainerInfo, ImageChange, ImageTarget, Platform, ServiceSpec
from .context import Context, expected_services
from .extension_runtime import extension_compose

IMAGE_KEYS_HINT = "Check the image names (OLLAMA_IMAGE, WEBUI_IMAGE, MCP_PROXY_IMAGE) in the .env and the network."


def missing_images(ctx: Context, platform: Platform) -> list[ServiceSpec]:
    """The core services whose image is not on the engine yet (what a first start downloads)."""
    return [s for s in expected_services(platform) if ctx.engine.image_id(ctx.env.image_of(s, platform)) is None]


def pull_images(
    ctx: Context, specs: list[ServiceSpec], on_progress: Callable[[PullProgress], None], platform: Platform
) -> None:
    """Pull these services' images. Nothing else changes, so a failure leaves nothing to undo.

    The error names the image, the registry's reason and the `.env` key that chose it.
    """
    for spec in specs:
        try:
            ctx.engine.pull(ctx.env.image_of(spec, platform), on_progress)
        except StackError as exc:
            exc.hint = (
                f"Check {ctx.env.image_key_of(spec, platform)} in {ctx.home / '.env'}, your network, "
                "or `docker login` for a private registry."
            )
            raise


def update_targets(ctx: Context, listed: list[ContainerInfo]) -> list[ImageTarget]:
    """Every service image of the core and of the enabled extensions with containers."""
    running = {(c.project, c.service): c for c in listed if c.installation == ctx.project}
    targets = []
    for compose in _projects(ctx):
        for service, spec in compose.config().services.items():
            if not spec.image:
                continue
            container = running.get((compose.project, service))
            extension = ctx.extension_of(compose.project)
            targets.append(
                ImageTarget(
                    project=compose.project,
                    service=service,
                    label=f"{extension}/{service}" if extension else service,
                    image=spec.image,
                    before_id=container.image_id if container else ctx.engine.image_id(spec.image),
                    running=container is not None and container.state == "running",
                )
            )
    return targets


def pull_updates(ctx: Context, stream: bool, skip: Sequence[ImageTarget] = ()) -> None:
    """`docker compose pull` for each project, with compose's own progress when `stream`.

    `skip`: services not to pull (images built locally). A failure raises before
    anything is recreated, so the stack is left as it was.
    """
    skipped = {(t.project, t.service) for t in skip}
    for compose in _projects(ctx):
        services = [s for s, spec in compose.config().services.items() if spec.image]
        wanted = [s for s in services if (compose.project, s) not in skipped]
        if wanted:
            _pull(compose, stream, wanted if len(wanted) < len(services) else [])


def image_changes(ctx: Context, targets: list[ImageTarget]) -> tuple[list[ImageChange], list[ImageTarget]]:
    """After pulling: each target's old and new image id, and the running ones whose image changed."""
    changes: list[ImageChange] = []
    changed: list[ImageTarget] = []
    for target in targets:
        new_id = ctx.engine.image_id(target.image)
        changes.append(
            ImageChange(
                service=target.label, image=target.image, old_id=_short(target.before_id), new_id=_short(new_id)
            )
        )
        if target.running and new_id and new_id != target.before_id:
            changed.append(target)
    return changes, changed


def _short(image_id: str | None) -> str | None:
    return image_id.removeprefix("sha256:")[:12] if image_id else None


def recreate(ctx: Context, targets: list[ImageTarget]) -> None:
    """Recreate exactly these services with their (new) images; their projects' others stay."""
    ctx.ensure_env()  # never hand compose a placeholder secret
    by_project: dict[str, list[str]] = {}
    for target in targets:
        by_project.setdefault(target.project, []).append(target.service)
    for compose in _projects(ctx, for_up=True):
        services = by_project.get(compose.project)
        if services:
            result = compose.run("up", "--detach", "--no-deps", *services)
            if result.returncode != 0:
                raise translate_compose_error("up", result.stderr)


def _projects(ctx: Context, *, for_up: bool = False) -> list[Compose]:
    """The core's compose project, then each enabled extension's that has containers."""
    projects = [ctx.compose()]
    for name in ctx.state.enabled_extensions:
        extension = ctx.extensions.get(name)
        if extension is not None and extension.valid and extension.has_compose:
            projects.append(extension_compose(ctx, extension, ctx.platform, for_up=for_up))
    return projects


def _pull(compose: Compose, stream: bool, services: list[str]) -> None:
    if stream:
        code = compose.stream("pull", *services, scrub=False)
        stderr = ""
    else:
        result = compose.run("pull", "--quiet", *services)
        code, stderr = result.returncode, result.stderr
    if code != 0 and not stderr:
        # Streamed: compose's own messages, shown above, name the image and the reason.
        raise StackError(
            "Pulling failed, so the stack was left as it was; compose's messages above say which image and why.",
            IMAGE_KEYS_HINT,
            slug="pull_failed",
        )
    if code != 0:
        error = translate_compose_error("pull", stderr)
        failed = re.search(r"^\s*([A-Za-z0-9_.-]+) (?:Error|error)\s+(.+)$", stderr, re.MULTILINE)
        what = f"{failed.group(1)}'s image: {failed.group(2)[:200]}" if failed else error.message
        raise StackError(
            f"Pulling failed, so the stack was left as it was. Could not pull {what}",
            IMAGE_KEYS_HINT,
            slug="pull_failed",
            details=error.details,
        )
