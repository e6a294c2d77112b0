"""Integration fixtures: the real CLI, the real engine, the stub images, cleanup by label.

Each test gets a unique PROJECT_NAME and free ports, and removes exactly what carries
its own installation label, so tests never touch anything they did not create.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tiers_required

REPO = Path(__file__).resolve().parents[2]
STUB_IMAGE = "ollama-stack-test/stub:latest"
LABEL = "ollama-stack.installation"
_SCRIPT = Path(sys.executable).parent / "ollama-stack"
# The console script the package installs, as a user runs it.
ENTRY_POINT = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "ollama_stack_cli.main"]


@pytest.fixture(scope="session")
def docker_client() -> Any:
    """The engine, required in CI: missing means fail, never skip."""
    required = tiers_required()
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        message = f"Docker engine not reachable: {exc}"
        if required:
            pytest.fail(message + " (integration tests are required here)")
        pytest.skip(message)
    try:
        client.images.get(STUB_IMAGE)
    except Exception:  # noqa: BLE001
        subprocess.run(["bash", str(REPO / "tests/images/build.sh")], check=True)
    return client


def free_ports(count: int) -> list[int]:
    """Ports nothing listens on right now (held open together so they are distinct)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class StackHome:
    """A home pointed at the stub images, with the CLI bound to it."""

    path: Path
    project: str
    ports: dict[str, int]
    client: Any
    extra_env: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> Result:
        """Run the installed entry point as a user would, in a subprocess."""
        full_env = {**os.environ, **self.extra_env, **(env or {})}
        full_env.pop("OLLAMA_STACK_HOME", None)
        proc = subprocess.run(
            [*ENTRY_POINT, "--home", str(self.path), *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=timeout,
            cwd=str(self.path.parent),
            stdin=subprocess.DEVNULL,  # like a script: nothing may prompt
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def containers(self) -> list[Any]:
        return self.client.containers.list(all=True, filters={"label": f"{LABEL}={self.project}"})

    def networks(self) -> list[Any]:
        return self.client.networks.list(filters={"label": f"{LABEL}={self.project}"})

    def volumes(self) -> list[Any]:
        return self.client.volumes.list(filters={"label": f"{LABEL}={self.project}"})

    def env_text(self) -> str:
        return (self.path / ".env").read_text()

    def cleanup(self) -> None:
        for container in self.containers():
            container.remove(force=True)
        for image in self.client.images.list(name=f"ollama-stack-previous/{self.project}-*"):
            for tag in image.tags:
                if tag.startswith(f"ollama-stack-previous/{self.project}-"):
                    self.client.images.remove(tag)  # the update's keep-tags (untag only)
        for network in self.networks():
            network.remove()
        for volume in self.volumes():
            volume.remove(force=True)


def make_home(
    root: Path,
    client: Any,
    extra: str = "",
    images: tuple[str, str, str] = (STUB_IMAGE, STUB_IMAGE, STUB_IMAGE),
    prefix: str = "ostest",
) -> StackHome:
    """A home with a unique project, free ports and the given ollama, webui and proxy images."""
    project = f"{prefix}-{uuid.uuid4().hex[:10]}"
    ollama, webui, proxy = free_ports(3)
    home = root / project
    home.mkdir(parents=True)
    (home / ".env").write_text(
        f"PROJECT_NAME={project}\n"
        f"OLLAMA_IMAGE={images[0]}\nWEBUI_IMAGE={images[1]}\nMCP_PROXY_IMAGE={images[2]}\n"
        f"OLLAMA_PORT={ollama}\nWEBUI_PORT={webui}\nMCP_PROXY_PORT={proxy}\n" + extra
    )
    return StackHome(
        path=home,
        project=project,
        ports={"ollama": ollama, "webui": webui, "mcp_proxy": proxy},
        client=client,
    )


@pytest.fixture
def stack_home(tmp_path: Path, docker_client: Any) -> Iterator[StackHome]:
    home = make_home(tmp_path, docker_client)
    yield home
    home.cleanup()


@pytest.fixture
def stack_running(stack_home: StackHome) -> StackHome:
    result = stack_home.cli("start", "--platform", "cpu", "--timeout", "60")
    assert result.code == 0, result.stderr
    return stack_home


# --- a local registry (update tests) ------------------------------------------


@contextmanager
def serve_registry(storage: Path, docker_client: Any) -> Iterator[str]:
    """Debian's docker-registry on a free loopback port, keeping its blobs in `storage`.

    The engine pushes there without TLS (loopback). Afterwards the engine's tags for
    that port are removed, and the untagged builds only our tests label.
    """
    binary = shutil.which("docker-registry")
    if binary is None:
        pytest.fail("docker-registry is not installed (apt-get install docker-registry); .ci/run installs it")
    root = Path(tempfile.mkdtemp(prefix="ostest-registry-"))
    (port,) = free_ports(1)
    config = root / "config.yml"
    config.write_text(
        f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {storage}\nhttp:\n  addr: 127.0.0.1:{port}\n"
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


@pytest.fixture(scope="session")
def registry(docker_client: Any) -> Iterator[str]:
    """A local registry for this session only (its storage is removed afterwards)."""
    storage = Path(tempfile.mkdtemp(prefix="ostest-registry-data-"))
    try:
        with serve_registry(storage, docker_client) as address:
            yield address
    finally:
        shutil.rmtree(storage, ignore_errors=True)


def publish(client: Any, registry: str, name: str, version: str, extra: str = "") -> str:
    """Push a distinct image (stub, a label, `extra` Dockerfile lines) as registry/name:test; drop it locally."""
    reference = f"{registry}/{name}:test"
    context = Path(tempfile.mkdtemp(prefix="ostest-image-"))
    (context / "Dockerfile").write_text(f"FROM {STUB_IMAGE}\nLABEL ostest.version={version}\n{extra}")
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
