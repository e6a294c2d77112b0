"""Backup, restore and undoable updates on real Open WebUI (SPEC 13), as a person would see them.

One stack whose Open WebUI image comes from the local registry (so `update` can pull a
newer one): an account and a chat are made, backed up while it runs (SQLite's online
backup inside the real container), the volumes destroyed, the archive restored, and the
chat found again; then an update to an Open WebUI image that never becomes healthy is
rolled back with the account and chat intact.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import StackHome, serve_registry

from . import owui
from .conftest import ADMIN_PASSWORD, WEBUI_IMAGE, RealStack, boot, make_real_home

TITLE = "kept across backup, restore and a failed update"


CACHE = Path(os.environ.get("OLLAMA_STACK_TEST_CACHE", "/var/tmp/ollama-stack-tests"))


@pytest.fixture(scope="module")
def registry_webui(real_engine: Any) -> Iterator[str]:
    """The real Open WebUI image pushed to a local registry, so it has a registry origin.

    The registry keeps its blobs on the machine, per image id, like the built images
    themselves: on the next run the engine finds every 3 GB layer already there and
    pushes only the manifest (minutes saved). Storage for other image ids is removed.
    """
    image_id = real_engine.images.get(WEBUI_IMAGE).id.split(":")[-1][:16]
    storage = CACHE / f"registry-{image_id}"
    for old in CACHE.glob("registry-*") if CACHE.is_dir() else []:
        if old != storage:
            shutil.rmtree(old, ignore_errors=True)
    storage.mkdir(parents=True, exist_ok=True)
    with serve_registry(storage, real_engine) as address:
        reference = f"{address}/ose2e-open-webui:test"
        real_engine.images.get(WEBUI_IMAGE).tag(reference)
        real_engine.images.push(reference)
        yield reference


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, real_engine: Any, registry_webui: str) -> Iterator[StackHome]:
    made = make_real_home(tmp_path_factory.mktemp("e2e-backup"), real_engine)
    env = made.path / ".env"
    env.write_text(env.read_text().replace(f"WEBUI_IMAGE={WEBUI_IMAGE}", f"WEBUI_IMAGE={registry_webui}"))
    try:
        yield made
    finally:
        made.cli("stop", timeout=120)
        made.cleanup()


def chat_titles(stack: RealStack) -> list[str]:
    admin = owui.signin(stack.webui, "admin@example.com", ADMIN_PASSWORD)
    return [str(chat["title"]) for chat in admin.call("GET", "/api/v1/chats/")]


def test_an_account_and_a_chat_survive_destroyed_volumes_through_backup_and_restore(
    home: StackHome, tmp_path: Path
) -> None:
    stack = boot(home)
    first = home.cli("start")  # running already: it says what to do next
    assert "the first account you create there becomes the admin" in first.stdout, first.stdout
    admin = owui.signup(stack.webui, "Admin", "admin@example.com", ADMIN_PASSWORD)
    admin.call("POST", "/api/v1/chats/new", {"chat": {"title": TITLE, "messages": [], "history": {}}})
    assert chat_titles(stack) == [TITLE]
    archive = tmp_path / "stack.tar.gz"

    backup = home.cli("backup", "--output", str(archive), "--json", timeout=600)
    assert backup.code == 0, backup.stderr
    assert "online backup" in backup.json()["consistent_copy"]
    assert backup.json()["database"] == "volumes/open_webui_data/webui.db"
    gone = home.cli("uninstall", "--remove-volumes", "--yes")
    assert gone.code == 0 and not home.volumes(), gone.stderr
    restored = home.cli("restore", str(archive), timeout=600)
    assert restored.code == 0, restored.stderr
    started = boot(home)
    again = home.cli("start")
    assert f"Open {started.webui} in your browser and sign in." in again.stdout, again.stdout  # an admin exists

    assert chat_titles(started) == [TITLE]


def test_an_update_to_a_never_healthy_open_webui_is_rolled_back_with_the_data(
    home: StackHome,
    real_engine: Any,
    registry_webui: str,
) -> None:
    stack = RealStack(home=home)
    before = stack.container("webui").image.id
    context = Path(tempfile.mkdtemp(prefix="ose2e-broken-"))
    (context / "Dockerfile").write_text(f'FROM {registry_webui}\nENTRYPOINT ["sleep", "infinity"]\n')
    try:
        real_engine.images.build(path=str(context), tag=registry_webui, labels={"ollama-stack.test": "1"}, rm=True)
        real_engine.images.push(registry_webui)
    finally:
        shutil.rmtree(context, ignore_errors=True)

    result = home.cli("update", "--yes", "--timeout", "60", timeout=900)

    assert result.code == 1, result.stderr
    assert "previous images and data were put back" in result.stderr
    assert stack.container("webui").image.id == before
    assert chat_titles(stack) == [TITLE]
