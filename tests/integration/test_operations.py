"""check, update (against a local registry), uninstall."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .conftest import STUB_IMAGE, StackHome, free_ports, make_home


def test_check_on_a_healthy_machine_and_a_running_stack(stack_running: StackHome) -> None:
    report = stack_running.cli("check", "--json")

    assert report.code == 0, report.stdout + report.stderr
    data = report.json()
    checks = {c["name"]: c for c in data["checks"]}
    assert data["ok"] is True and data["platform"] == "cpu"
    assert checks["engine"]["status"] == "pass" and "Docker Engine" in checks["engine"]["detail"]
    assert checks["compose"]["status"] == "pass" and "Compose v2" in checks["compose"]["detail"]
    assert checks["port WEBUI_PORT"]["detail"].endswith("held by this stack")
    assert checks["disk"]["status"] in ("pass", "warn")
    values = dict(line.split("=", 1) for line in stack_running.env_text().splitlines() if "=" in line)
    assert values["MCP_PROXY_API_KEY"] not in report.stdout


def test_check_with_the_engine_down_and_a_port_taken(stack_home: StackHome) -> None:
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", stack_home.ports["ollama"]))
        listener.listen()
        taken = stack_home.cli("check", "--json")
        down = stack_home.cli("check", env={"DOCKER_HOST": f"unix://{stack_home.path}/none.sock"})

    assert taken.code == 1
    failing = [c for c in taken.json()["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failing] == ["port OLLAMA_PORT"]
    assert "OLLAMA_PORT" in failing[0]["fix"]
    assert down.code == 4 and "Traceback" not in down.stderr  # the engine is unavailable: exit 4, as everywhere
    assert "FAIL  engine" in down.stdout and "Cannot connect" in down.stdout


def test_check_reports_a_corrupt_state_file_without_touching_it(stack_home: StackHome) -> None:
    state = stack_home.path / ".ollama-stack.json"
    state.write_text("{")
    result = stack_home.cli("check", "--json")
    assert result.code == 1
    [failing] = [c for c in result.json()["checks"] if c["status"] == "fail"]
    assert failing["name"] == "state-file" and str(state) in failing["detail"]
    assert state.read_text() == "{"


# --- update against a local registry ------------------------------------------


@pytest.fixture(scope="session")
def registry(docker_client: Any) -> Iterator[str]:
    """Debian's docker-registry on a free loopback port; the engine pushes there without TLS."""
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed (apt-get install docker-registry); .ci/run installs it")
    root = Path(tempfile.mkdtemp(prefix="ostest-registry-"))
    (port,) = free_ports(1)
    config = root / "config.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root}/data\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "registry did not start"
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
        for image in docker_client.images.list():
            for tag in image.tags:
                if tag.startswith(f"127.0.0.1:{port}/"):
                    docker_client.images.remove(tag, force=True)
        # Builds replaced by a newer push leave untagged images; only ours carry this label.
        docker_client.images.prune(filters={"dangling": True, "label": "ollama-stack.test=1"})


def publish(client: Any, registry: str, name: str, version: str) -> str:
    """Push a distinct image (stub + a label) as registry/name:test, then drop it locally."""
    reference = f"{registry}/{name}:test"
    context = Path(tempfile.mkdtemp(prefix="ostest-image-"))
    (context / "Dockerfile").write_text(f"FROM {STUB_IMAGE}\nLABEL ostest.version={version}\n")
    image, _ = client.images.build(
        path=str(context), tag=reference, labels={"ollama-stack.test": "1"}, rm=True, forcerm=True
    )
    client.images.push(reference)
    client.images.remove(reference, force=True)
    shutil.rmtree(context, ignore_errors=True)
    return str(image.id)


IMAGE_KEYS = (("OLLAMA_IMAGE", "ollama"), ("WEBUI_IMAGE", "webui"), ("MCP_PROXY_IMAGE", "proxy"))


@dataclass
class RegistryStack:
    """A running stack whose three images come from the local registry, each under its own name."""

    home: StackHome
    tag: str
    registry: str

    def publish_new(self, name: str) -> str:
        return publish(self.home.client, self.registry, f"{self.tag}-{name}", "2")


@pytest.fixture
def registry_stack_running(tmp_path: Path, docker_client: Any, registry: str) -> Iterator[RegistryStack]:
    tag = f"t{uuid.uuid4().hex[:8]}"
    home = make_home(tmp_path, docker_client)
    try:
        text = home.env_text()
        for key, name in IMAGE_KEYS:
            publish(docker_client, registry, f"{tag}-{name}", "1")
            text = text.replace(f"{key}={STUB_IMAGE}", f"{key}={registry}/{tag}-{name}:test")
        (home.path / ".env").write_text(text)
        assert home.cli("start", "--platform", "cpu", "--timeout", "60").code == 0
        yield RegistryStack(home=home, tag=tag, registry=registry)
    finally:
        home.cleanup()


def container_ids(home: StackHome) -> dict[str, str]:
    return {c.labels["com.docker.compose.service"]: c.id for c in home.containers()}


def test_update_recreates_only_what_changed(registry_stack_running: RegistryStack, docker_client: Any) -> None:
    home = registry_stack_running.home
    before = container_ids(home)
    new_id = registry_stack_running.publish_new("webui")

    result = home.cli("update", "--yes", "--json")

    assert result.code == 0, result.stderr
    report = result.json()
    assert report["recreated"] == ["webui"]
    change = next(c for c in report["changes"] if c["service"] == "webui")
    assert change["new_id"] == new_id.removeprefix("sha256:")[:12] and change["old_id"] != change["new_id"]
    after = container_ids(home)
    assert after["webui"] != before["webui"]
    assert after["ollama"] == before["ollama"] and after["mcp_proxy"] == before["mcp_proxy"]
    webui = docker_client.containers.get(after["webui"])
    assert webui.image.id == new_id and webui.status == "running"

    again = home.cli("update", "--yes", "--json")
    assert again.code == 0 and again.json()["recreated"] == []


def test_failed_pull_leaves_the_running_stack_untouched(registry_stack_running: RegistryStack) -> None:
    home = registry_stack_running.home
    before = container_ids(home)
    registry_stack_running.publish_new("webui")
    env_file = home.path / ".env"
    env_file.write_text(env_file.read_text().replace(f"{registry_stack_running.tag}-ollama:test", "missing:test"))

    result = home.cli("update", "--yes")

    assert result.code == 1
    assert "Pulling failed" in result.stderr and "ollama" in result.stderr
    assert container_ids(home) == before
    assert {c.status for c in home.containers()} == {"running"}
    assert not (home.path / "journal.json").exists()


def test_update_without_a_terminal_needs_yes(registry_stack_running: RegistryStack) -> None:
    home = registry_stack_running.home
    before = container_ids(home)
    registry_stack_running.publish_new("proxy")

    result = home.cli("update")

    assert result.code == 2 and "--yes" in result.stderr
    assert container_ids(home) == before


# --- uninstall ------------------------------------------------------------------


def test_uninstall_keeps_volumes_and_other_installations(
    stack_running: StackHome, tmp_path: Path, docker_client
) -> None:
    other = make_home(tmp_path / "other", docker_client)
    try:
        assert other.cli("start", "--platform", "cpu", "--timeout", "60").code == 0
        volumes = sorted(v.name for v in stack_running.volumes())

        kept = stack_running.cli("uninstall", "--json")

        assert kept.code == 0, kept.stderr
        assert kept.json()["kept_volumes"] == volumes and kept.json()["removed_volumes"] == []
        assert stack_running.containers() == [] and stack_running.networks() == []
        assert sorted(v.name for v in stack_running.volumes()) == volumes
        assert "pip uninstall ollama-stack" in stack_running.cli("uninstall").stdout

        refused = stack_running.cli("uninstall", "--remove-volumes")
        assert refused.code == 2 and "--yes" in refused.stderr
        assert sorted(v.name for v in stack_running.volumes()) == volumes

        removed = stack_running.cli("uninstall", "--remove-volumes", "--yes", "--json")
        assert removed.code == 0 and removed.json()["removed_volumes"] == volumes
        assert stack_running.volumes() == []

        assert {c.status for c in other.containers()} == {"running"} and len(other.containers()) == 3
        assert len(other.volumes()) == 3 and other.cli("status").code == 0
    finally:
        other.cleanup()


# --- the first start's pulls -------------------------------------------------


def test_first_start_pulls_missing_images_with_progress_lines(
    tmp_path: Path, docker_client: Any, registry: str
) -> None:
    tag = f"t{uuid.uuid4().hex[:8]}"
    home = make_home(tmp_path, docker_client)
    try:
        reference = f"{registry}/{tag}-webui:test"
        publish(docker_client, registry, f"{tag}-webui", "1")
        env = home.path / ".env"
        env.write_text(env.read_text().replace(f"WEBUI_IMAGE={STUB_IMAGE}", f"WEBUI_IMAGE={reference}"))

        result = home.cli("start", "--platform", "cpu", "--timeout", "60", "--json")

        assert result.code == 0, result.stderr
        assert result.json()["healthy"] is True  # stdout is still one JSON document
        assert "Pulling 1 image(s)" in result.stderr
        assert f"{reference}: pulled" in result.stderr
        assert docker_client.images.get(reference).id
    finally:
        home.cleanup()
        docker_client.images.remove(f"{registry}/{tag}-webui:test", force=True)


def test_a_failed_pull_names_the_image_and_the_registrys_reason(
    tmp_path: Path, docker_client: Any, registry: str
) -> None:
    home = make_home(tmp_path, docker_client)
    missing = f"{registry}/nothing-here-{uuid.uuid4().hex[:6]}:test"
    env = home.path / ".env"
    env.write_text(env.read_text().replace(f"OLLAMA_IMAGE={STUB_IMAGE}", f"OLLAMA_IMAGE={missing}"))

    result = home.cli("start", "--platform", "cpu", "--timeout", "60")

    assert result.code == 1
    [error] = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert f"Could not pull {missing}:" in error
    assert "manifest unknown" in error.lower() or "not found" in error.lower(), error
    [hint] = [line for line in result.stderr.splitlines() if line.startswith("Hint:")]
    assert "OLLAMA_IMAGE" in hint and str(env) in hint
    assert env.exists() and "WEBUI_SECRET_KEY=" in env.read_text()  # the file the hint names is there
    assert home.containers() == [] and home.networks() == []
