"""What a person at a terminal sees: the live health table, the spinner, pull bars, prompts, NO_COLOR."""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from .conftest import STUB_IMAGE, RegistryStack, StackHome, container_ids, make_home
from .tty import run_tty

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
COLOR = re.compile(r"\x1b\[[0-9;]*(?:3[0-7]|9[0-7]|38;[0-9;]+)m")  # a foreground color
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"  # rich's "dots"


def test_start_at_a_terminal_shows_the_spinner_and_the_live_health_table(stack_home: StackHome) -> None:
    result = run_tty(stack_home, "start", "--platform", "cpu", "--timeout", "60", columns=100)

    assert result.code == 0, result.stdout
    screen = result.stdout
    assert "Creating containers..." in screen  # the spinner's message: only shown on a terminal
    assert "\x1b[?25l" in screen  # rich hides the cursor while a live display runs
    assert any(char in screen for char in SPINNER), screen
    assert "✓" in screen  # the live table marks an answering service
    # The transient table leaves a plain record behind.
    plain = ANSI.sub("", screen)
    for name in ("ollama", "webui", "mcp_proxy"):
        assert f"  {name}: healthy" in plain, plain


def test_start_in_a_pipe_has_no_spinner_or_live_table(stack_home: StackHome) -> None:
    result = stack_home.cli("start", "--platform", "cpu", "--timeout", "60")

    assert result.code == 0, result.stderr
    assert "\x1b[" not in result.stderr and "✓" not in result.stderr
    assert "Creating containers..." not in result.stderr
    assert "  webui: healthy" in result.stderr


def publish_with_a_fresh_layer(client: Any, reference: str) -> None:
    """Push an image with 3 MB of new bytes, then drop it here: pulling it really downloads."""
    context = Path(tempfile.mkdtemp(prefix="ostest-image-"))
    (context / "Dockerfile").write_text(f"FROM {STUB_IMAGE}\nRUN head -c 3000000 /dev/urandom > /blob\n")
    client.images.build(path=str(context), tag=reference, labels={"ollama-stack.test": "1"}, rm=True, forcerm=True)
    client.images.push(reference)
    client.images.remove(reference, force=True)
    shutil.rmtree(context, ignore_errors=True)


def test_pull_at_a_terminal_draws_download_bars(tmp_path: Path, docker_client: Any, registry: str) -> None:
    reference = f"{registry}/t{uuid.uuid4().hex[:8]}-webui:test"
    publish_with_a_fresh_layer(docker_client, reference)
    home = make_home(tmp_path, docker_client)
    try:
        env = home.path / ".env"
        env.write_text(env.read_text().replace(f"WEBUI_IMAGE={STUB_IMAGE}", f"WEBUI_IMAGE={reference}"))

        result = run_tty(home, "start", "--platform", "cpu", "--timeout", "60", columns=140)

        assert result.code == 0, result.stdout
        plain = ANSI.sub("", result.stdout)
        assert "Pulling 1 image(s)" in plain
        bars = [line for line in plain.splitlines() if reference in line and "━" in line]
        assert bars, plain
        # DownloadColumn at the end: all of the new layer's ~3 MB, done of total.
        assert re.search(r"(\d\.\d)/\1 MB", bars[-1]), bars[-1]
        assert f"{reference}: pulled" not in plain  # the pipe's plain lines are not printed here
    finally:
        home.cleanup()
        docker_client.images.remove(reference, force=True)


def test_update_asks_at_a_terminal_and_does_what_was_answered(registry_stack_running: RegistryStack) -> None:
    home = registry_stack_running.home
    before = container_ids(home)
    registry_stack_running.publish_new("webui")

    declined = run_tty(home, "update", answers=[("with the new images?", "n\r")], columns=120)

    assert "Recreate webui with the new images?" in ANSI.sub("", declined.stdout), declined.stdout
    assert declined.code == 0 and container_ids(home) == before, declined.stdout

    accepted = run_tty(home, "update", answers=[("with the new images?", "y\r")], columns=120)

    assert accepted.code == 0, accepted.stdout
    after = container_ids(home)
    assert after["webui"] != before["webui"] and after["ollama"] == before["ollama"]


def test_no_color_is_honored_at_a_terminal(stack_running: StackHome) -> None:
    colored = run_tty(stack_running, "status", columns=120)
    plain = run_tty(stack_running, "status", columns=120, env={"NO_COLOR": "1"})

    assert colored.code == 0 and plain.code == 0
    assert COLOR.search(colored.stdout), colored.stdout  # so the check below can fail
    assert not COLOR.search(plain.stdout), plain.stdout
    assert "healthy" in plain.stdout and "webui" in plain.stdout
