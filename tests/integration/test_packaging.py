"""Compose overlays as compose merges them, and the wheel working from any directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from ollama_stack_cli import stack

from .conftest import LABEL, REPO, STUB_IMAGE, StackHome


@pytest.mark.parametrize("platform", ["cpu", "nvidia", "apple"])
def test_overlays_as_compose_merges_them(stack_home: StackHome, platform: str) -> None:
    ctx = stack.load(stack_home.path)
    result = ctx.compose(platform).run("config", "--format", "json")  # type: ignore[arg-type]
    assert result.returncode == 0, result.stderr
    merged = json.loads(result.stdout)
    services = merged["services"]

    expected = {"webui", "mcp_proxy"} if platform == "apple" else {"ollama", "webui", "mcp_proxy"}
    assert set(services) == expected
    for name, service in services.items():
        assert service["labels"][LABEL] == stack_home.project
        assert all(port["host_ip"] == "127.0.0.1" for port in service["ports"]), name
        assert "start_interval" not in service.get("healthcheck", {})
        assert "cpus" not in service and "mem_limit" not in service
    assert all(v["labels"][LABEL] == stack_home.project for v in merged["volumes"].values())
    assert merged["networks"]["default"]["labels"][LABEL] == stack_home.project

    if platform == "nvidia":
        devices = services["ollama"]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and devices[0]["capabilities"] == ["gpu"]
    else:
        assert "deploy" not in services.get("ollama", {})
    if platform == "apple":
        assert services["webui"]["environment"]["OLLAMA_BASE_URL"] == "http://host.docker.internal:11434"
        assert "host.docker.internal=host-gateway" in services["webui"]["extra_hosts"]


def test_wheel_runs_from_any_directory(stack_home: StackHome, tmp_path: Path) -> None:
    """Build the wheel, install it alone in a fresh venv, and start the stack from /."""
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(REPO)],
        check=True,
    )
    wheel = next(dist.glob("ollama_stack-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [str(venv / "bin/python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)], check=True
    )
    # Dependencies come from the test environment; the package itself only from the wheel.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    script = [str(venv / "bin/python"), "-c", "from ollama_stack_cli.main import cli; cli()"]
    env = {k: v for k, v in os.environ.items() if k != "OLLAMA_STACK_HOME"}

    where = subprocess.run(
        [*script[:2], "import ollama_stack_cli.config as c; print(c.resource_dir())"],
        capture_output=True,
        text=True,
        cwd="/",
        env=env,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(site)) and Path(where, "docker-compose.nvidia.yml").is_file()
    assert json.loads(Path(where, ".ollama-stack.json").read_text())["schema_version"] == 1

    started = subprocess.run(
        [*script, "--home", str(stack_home.path), "start", "--platform", "cpu", "--timeout", "60"],
        capture_output=True,
        text=True,
        cwd="/",
        env=env,
        timeout=180,
    )
    assert started.returncode == 0, started.stderr
    assert {c.image.tags[0] for c in stack_home.containers()} == {STUB_IMAGE}
