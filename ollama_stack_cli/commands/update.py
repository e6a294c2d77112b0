"""`update`: pull newer images while the stack runs, then recreate only what changed."""

from __future__ import annotations

from pathlib import Path

from .. import config, extensions, stack
from ..docker_client import Compose, Engine, find_compose
from ..errors import StackError
from ..output import Output, confirm
from ..schemas import ImageChange, UpdateReport


def run(home: Path, output: Output, yes: bool, timeout: float) -> UpdateReport:
    ctx = stack.load(home)
    engine = Engine()
    engine.ping()  # exit 4 now when the engine is down
    command = find_compose()
    platform = ctx.state.platform or "cpu"
    targets = _targets(ctx, platform, command)
    running = {(c.project, c.service): c for c in engine.containers() if c.installation == ctx.project}

    planned = []
    for compose, images in targets:
        for service, image in images.items():
            planned.append((compose, service, image, engine.image_id(image)))

    count = len({image for _, _, image, _ in planned})
    if any(c.state == "running" for c in running.values()):
        output.progress(f"Pulling {count} image(s); the stack keeps running...")
    else:
        output.progress(f"Pulling {count} image(s); the stack is not running, so nothing will be recreated...")
    for compose, _ in targets:
        pull(compose, output)

    changes: list[ImageChange] = []
    to_recreate: dict[str, tuple[Compose, list[str]]] = {}
    for compose, service, image, old_id in planned:
        new_id = engine.image_id(image)
        container = running.get((compose.project, service))
        current = container.image_id if container else old_id
        changes.append(
            ImageChange(
                service=_label(ctx, compose, service), image=image, old_id=_short(current), new_id=_short(new_id)
            )
        )
        if container is not None and container.state == "running" and new_id and new_id != container.image_id:
            to_recreate.setdefault(compose.project, (compose, []))[1].append(service)

    names = [_label(ctx, compose, s) for compose, services in to_recreate.values() for s in services]
    if not names:
        output.progress("Everything is up to date; nothing recreated.")
        return UpdateReport(project=ctx.project, changes=changes, recreated=[])
    if not confirm(output, f"Recreate {', '.join(names)} with the new images?", yes, "Recreating running services"):
        output.progress("Left the running services as they are; the new images are pulled.")
        return UpdateReport(project=ctx.project, changes=changes, recreated=[])

    ctx.env = config.ensure_env(home)  # never hand compose a placeholder secret
    for compose, _ in to_recreate.values():
        compose.env = stack.compose_env(ctx)
    journal = stack.begin(ctx, engine, "update", ["recreate"], platform)
    try:
        with journal.step("recreate"):
            for compose, services in to_recreate.values():
                if compose.project != ctx.project:
                    found = extensions.discover(home)[compose.project.removeprefix(f"{ctx.project}-ext-")]
                    compose = stack.extension_compose(ctx, found, platform, command)
                output.progress(f"Recreating {', '.join(services)}...")
                result = compose.run("up", "--detach", "--no-deps", *services)
                if result.returncode != 0:
                    from ..docker_client import translate_compose_error

                    raise translate_compose_error("up", result.stderr)
    finally:
        journal.close()
    for change in changes:
        change.recreated = change.service in names
    core = [s for s in stack.expected_services(platform) if s.name in to_recreate.get(ctx.project, (None, []))[1]]
    if core:
        final = stack.wait_healthy(ctx, engine, core, timeout, lambda _: None)
        bad = [name for name, state in final.items() if state != "healthy"]
        if bad:
            raise StackError(
                f"{bad[0]} did not answer after the update.",
                f"See `ollama-stack logs {bad[0]}`.",
                slug="health_timeout",
            )
    return UpdateReport(project=ctx.project, changes=changes, recreated=names)


def _targets(ctx: stack.Context, platform: str, command: list[str]) -> list[tuple[Compose, dict[str, str]]]:
    """Compose projects to update (core, then enabled extensions) with their service images."""
    core = stack.compose_for(ctx, platform, command)  # type: ignore[arg-type]
    targets = [(core, _images(core))]
    found = extensions.discover(ctx.home)
    for name in ctx.state.enabled_extensions:
        extension = found.get(name)
        if extension is not None and extension.valid and extension.has_compose:
            compose = stack.extension_compose(ctx, extension, platform, command, for_up=False)  # type: ignore[arg-type]
            targets.append((compose, _images(compose)))
    return targets


def _images(compose: Compose) -> dict[str, str]:
    services = compose.config().get("services", {})
    return {name: spec["image"] for name, spec in services.items() if spec.get("image")}


def pull(compose: Compose, output: Output) -> None:
    """Pull with compose's own progress on a terminal; a failure leaves the stack untouched."""
    if output.interactive:
        code = compose.stream("pull", scrub=False)
        stderr = ""
    else:
        result = compose.run("pull", "--quiet")
        code, stderr = result.returncode, result.stderr
    if code != 0 and not stderr:
        # Streamed: compose's own messages, shown above, name the image and the reason.
        raise StackError(
            "Pulling failed, so the stack was left as it was; compose's messages above say which image and why.",
            "Check the image names (OLLAMA_IMAGE, WEBUI_IMAGE, MCP_PROXY_IMAGE) in the .env and the network.",
            slug="pull_failed",
        )
    if code != 0:
        import re

        from ..docker_client import translate_compose_error

        error = translate_compose_error("pull", stderr)
        failed = re.search(r"^\s*([A-Za-z0-9_.-]+) (?:Error|error)\s+(.+)$", stderr, re.MULTILINE)
        what = f"{failed.group(1)}'s image: {failed.group(2)[:200]}" if failed else error.message
        raise StackError(
            f"Pulling failed, so the stack was left as it was. Could not pull {what}",
            "Check the image names (OLLAMA_IMAGE, WEBUI_IMAGE, MCP_PROXY_IMAGE) in the .env and the network.",
            slug="pull_failed",
            details=error.details,
        )


def _label(ctx: stack.Context, compose: Compose, service: str) -> str:
    if compose.project == ctx.project:
        return service
    return f"{compose.project.removeprefix(f'{ctx.project}-ext-')}/{service}"


def _short(image_id: str | None) -> str | None:
    return image_id.removeprefix("sha256:")[:12] if image_id else None


def render(report: UpdateReport, output: Output) -> None:
    if output.json_mode:
        output.emit(report)
        return
    if output.quiet:
        return
    for change in report.changes:
        same = change.old_id == change.new_id
        note = "recreated" if change.recreated else ("unchanged" if same else "new image pulled")
        output.out.print(f"  {change.service:<18} {change.old_id or '-':<12} -> {change.new_id or '-':<12}  {note}")
