"""check, update (against a local registry), uninstall."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

import pytest

from .conftest import STUB_IMAGE, RegistryStack, StackHome, container_ids, make_home, publish

GIB = 1024**3
DISK_FREE = "OLLAMA_STACK_TEST_DISK_FREE"  # check's stand-in for the engine disk's free bytes


def test_check_on_a_healthy_machine_and_a_running_stack(stack_running: StackHome) -> None:
    report = stack_running.cli("check", "--json", env={DISK_FREE: str(50 * GIB)})  # not this host's free space

    assert report.code == 0, report.stdout + report.stderr
    data = report.json()
    checks = {c["name"]: c for c in data["checks"]}
    assert data["ok"] is True and data["platform"] == "cpu"
    assert checks["engine"]["status"] == "pass" and "Docker Engine" in checks["engine"]["detail"]
    assert checks["compose"]["status"] == "pass" and "Compose v2" in checks["compose"]["detail"]
    assert checks["port WEBUI_PORT"]["detail"].endswith("held by this stack")
    assert checks["disk"]["status"] == "pass" and "50.0 GiB free" in checks["disk"]["detail"]
    values = dict(line.split("=", 1) for line in stack_running.env_text().splitlines() if "=" in line)
    assert values["MCP_PROXY_API_KEY"] not in report.stdout


@pytest.mark.parametrize(
    ("free", "status", "code", "fix"),
    [(GIB, "fail", 1, "Free disk space"), (10 * GIB, "warn", 0, "5-40 GiB"), (20 * GIB, "pass", 0, None)],
)
def test_check_judges_free_disk_space(
    stack_home: StackHome, free: int, status: str, code: int, fix: str | None
) -> None:
    report = stack_home.cli("check", "--json", env={DISK_FREE: str(free)})

    checks = {c["name"]: c for c in report.json()["checks"]}
    assert checks["disk"]["status"] == status, checks["disk"]
    assert report.code == code and report.json()["ok"] is (code == 0), report.stdout
    assert f"{free / GIB:.1f} GiB free" in checks["disk"]["detail"]
    assert (fix in checks["disk"]["fix"]) if fix else not checks["disk"].get("fix"), checks["disk"]


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
        # Only a label differs from the stub: every layer is already here, and it says so.
        assert f"{reference}: pulled (its layers were already here)" in result.stderr
        assert "0.0 MB of 0.0 MB" not in result.stderr
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
