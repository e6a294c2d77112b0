"""Undoable updates against the local registry (SPEC 13): automatic rollback and `update --rollback`."""

from __future__ import annotations

from typing import Any

from .conftest import STUB_IMAGE, RegistryStack, publish
from .test_backup import in_volume, listing


def publish_broken(client: Any, registry: str, name: str) -> str:
    """An image that runs but never answers: an update to it can never become healthy."""
    return publish(client, registry, name, "broken", extra='ENTRYPOINT ["sleep", "3600"]\n')


def webui_image(stack: RegistryStack) -> str:
    [webui] = [c for c in stack.home.containers() if c.labels.get("com.docker.compose.service") == "webui"]
    return str(webui.image.id)


def test_an_update_that_never_becomes_healthy_puts_the_previous_image_and_data_back(
    registry_stack_running: RegistryStack, docker_client: Any, registry: str
) -> None:
    stack = registry_stack_running
    home = stack.home
    in_volume(home, "mkdir -p /d/uploads && echo chat > /d/uploads/chat.txt")
    before_image, before_data = webui_image(stack), listing(home)
    publish_broken(docker_client, registry, f"{stack.tag}-webui")

    result = home.cli("update", "--yes", "--timeout", "15")

    assert result.code == 1, result.stderr
    assert "did not become healthy after the update, so the previous images and data were put back" in result.stderr
    assert webui_image(stack) == before_image
    assert listing(home) == before_data
    assert home.cli("status").code == 0  # running and healthy again
    backups = list((home.path / "backups").glob("update-*.tar"))
    assert len(backups) == 1 and (backups[0].stat().st_mode & 0o777) == 0o600


def test_update_rollback_returns_to_the_previous_images_and_data(registry_stack_running: RegistryStack) -> None:
    stack = registry_stack_running
    home = stack.home
    assert home.cli("update", "--rollback", "--yes").code == 1  # nothing recorded yet
    in_volume(home, "mkdir -p /d/uploads && echo before > /d/uploads/chat.txt")
    before_image, before_data = webui_image(stack), listing(home)
    new_id = stack.publish_new("webui")

    updated = home.cli("update", "--yes", "--json")
    assert updated.code == 0, updated.stderr
    assert updated.json()["recreated"] == ["webui"] and updated.json()["backup"]
    assert webui_image(stack) == new_id
    in_volume(home, "echo after-update > /d/uploads/chat.txt")

    result = home.cli("update", "--rollback", "--yes", "--json")

    assert result.code == 0, result.stderr
    assert result.json()["rolled_back"] is True and result.json()["recreated"] == ["webui"]
    assert webui_image(stack) == before_image
    assert listing(home) == before_data
    assert home.cli("status").code == 0


def test_a_locally_built_image_is_skipped_with_a_note(registry_stack_running: RegistryStack) -> None:
    home = registry_stack_running.home
    env = home.path / ".env"
    env.write_text(
        "\n".join(
            f"MCP_PROXY_IMAGE={STUB_IMAGE}" if line.startswith("MCP_PROXY_IMAGE=") else line
            for line in env.read_text().splitlines()
        )
        + "\n"
    )

    result = home.cli("update", "--yes", "--json")

    assert result.code == 0, result.stderr
    assert "mcp_proxy" in result.json()["skipped"]
    assert "built locally" in result.stderr


def test_uninstall_removes_this_installations_keep_tags_and_nothing_else(
    registry_stack_running: RegistryStack, docker_client: Any
) -> None:
    import docker.errors

    stack = registry_stack_running
    home = stack.home
    for name in ("ollama", "webui", "proxy"):
        stack.publish_new(name)
    updated = home.cli("update", "--yes", "--json")
    assert updated.code == 0, updated.stderr
    ours = {f"ollama-stack-previous/{home.project}-{s}:previous" for s in ("ollama", "webui", "mcp_proxy")}
    old = {tag: docker_client.images.get(tag).id for tag in ours}
    # The old ollama image keeps another tag; a container outside the installation uses the old webui
    # image; the old proxy image is held by nothing but its keep-tag.
    kept_tag = f"ostest-kept/{stack.tag}:kept"
    docker_client.images.get(old[f"ollama-stack-previous/{home.project}-ollama:previous"]).tag(kept_tag)
    holder = docker_client.containers.create(
        old[f"ollama-stack-previous/{home.project}-webui:previous"], labels={"ostest.holder": home.project}
    )
    # Another installation's keep-tags, one named like ours plus a suffix (project `<ours>-x`).
    stub = docker_client.images.get(STUB_IMAGE)
    others = [
        f"ollama-stack-previous/{home.project}-x-webui:previous",
        f"ollama-stack-previous/o{stack.tag}-webui:previous",
    ]
    for tag in others:
        stub.tag(tag)
    try:
        result = home.cli("uninstall", "--yes", "--json")

        assert result.code == 0, result.stderr
        assert sorted(result.json()["removed_keep_tags"]) == sorted(ours)
        remaining = {t for image in docker_client.images.list() for t in image.tags}
        assert not ours & remaining
        assert set(others) <= remaining and kept_tag in remaining
        assert docker_client.images.get(kept_tag).id == old[f"ollama-stack-previous/{home.project}-ollama:previous"]
        docker_client.images.get(old[f"ollama-stack-previous/{home.project}-webui:previous"])  # still used: kept
        try:  # held by nothing else: no tag left (its registry digest, like any replaced pull's, or gone)
            assert docker_client.images.get(old[f"ollama-stack-previous/{home.project}-mcp_proxy:previous"]).tags == []
        except docker.errors.ImageNotFound:
            pass
        # Without --remove-volumes the volumes and the update's data backup stay.
        assert home.volumes() and list((home.path / "backups").glob("update-*.tar"))
        text = home.cli("uninstall", "--yes")  # a second time: nothing left to untag, says where backups are
        assert text.code == 0, text.stderr
        assert str(home.path / "backups") in text.stdout
    finally:
        holder.remove(force=True)
        for tag in [*others, kept_tag]:
            try:
                docker_client.images.remove(tag)
            except docker.errors.ImageNotFound:
                pass
