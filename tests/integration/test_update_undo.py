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
