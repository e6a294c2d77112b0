"""Real-services fixtures: the real CLI on the real engine with real Open WebUI and mcpo.

The images are built by `bash tests/images/real/build.sh` (cached on the machine):
real Open WebUI 0.12.4 and mcpo 0.0.20 from PyPI, and the project's Ollama API
stand-in. Where Docker is required (CI=true or OLLAMA_STACK_REQUIRE_DOCKER=1) a
missing engine or image fails the tier; elsewhere it skips.

Every stack gets a unique PROJECT_NAME and free ports, and is removed by its
installation label (containers, networks, volumes) even when a test fails.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tiers_required
from tests.integration.conftest import StackHome, make_home

from . import owui

WEBUI_IMAGE = "ollama-stack-test/open-webui:current"
MCP_PROXY_IMAGE = "ollama-stack-test/mcpo:current"
OLLAMA_IMAGE = "ollama-stack-test/ollama-api:current"
REAL_IMAGES = (WEBUI_IMAGE, MCP_PROXY_IMAGE, OLLAMA_IMAGE)
BUILD_HINT = "bash tests/images/real/build.sh"
MODEL = "stand-in:latest"
START_TIMEOUT = "300"
# The all-users read grant SPEC 11 puts on each extension's tool server.
ALL_USERS_READ = owui.ALL_USERS_READ
ADMIN_PASSWORD = "admin-pass-e2e"
USER_PASSWORD = "user-pass-e2e"


@pytest.fixture(scope="session")
def real_engine() -> Any:
    """The engine and the real images: missing means fail where required, else skip."""
    try:
        import docker

        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
        message = f"Docker engine not reachable: {exc}"
        if tiers_required():
            pytest.fail(message + " (the real-services tier is required here)")
        pytest.skip(message)
    missing = []
    for image in REAL_IMAGES:
        try:
            client.images.get(image)
        except Exception:  # noqa: BLE001 - not found or unreadable: both mean "build it"
            missing.append(image)
    if missing:
        message = f"real-service images missing: {', '.join(missing)}; build them with `{BUILD_HINT}`"
        if tiers_required():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return client


@dataclass
class RealStack:
    """A home on the real images, and (once signed up) the accounts a person would use."""

    home: StackHome
    start: Any = None
    admin: owui.Session | None = None
    user: owui.Session | None = None

    @property
    def webui(self) -> str:
        return f"http://127.0.0.1:{self.home.ports['webui']}"

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.home.ports['mcp_proxy']}"

    def env_value(self, key: str) -> str:
        for line in self.home.env_text().splitlines():
            name, sep, value = line.partition("=")
            if sep and name.strip() == key:
                return value.strip().strip("'\"")
        raise KeyError(key)

    def set_env(self, key: str, value: str) -> None:
        """Add or replace one .env key, keeping the rest (the way a person edits the file)."""
        path = self.home.path / ".env"
        lines = [line for line in path.read_text().splitlines() if line.partition("=")[0].strip() != key]
        path.write_text("\n".join([*lines, f"{key}={value}"]) + "\n")

    def container(self, service: str) -> Any:
        for container in self.home.containers():
            if container.labels.get("com.docker.compose.service") == service:
                return container
        raise AssertionError(f"no {service} container in {self.home.project}")

    def logs(self, service: str) -> str:
        return str(self.container(service).logs(tail=2000).decode(errors="replace"))


def make_real_home(root: Path, client: Any, extra: str = "") -> StackHome:
    return make_home(root, client, extra, images=(OLLAMA_IMAGE, WEBUI_IMAGE, MCP_PROXY_IMAGE), prefix="ose2e")


@pytest.fixture(scope="module")
def real_home(tmp_path_factory: pytest.TempPathFactory, real_engine: Any) -> Iterator[StackHome]:
    """A fresh home on the real images; whatever it ran is removed by label afterwards."""
    home = make_real_home(tmp_path_factory.mktemp("e2e"), real_engine)
    try:
        yield home
    finally:
        home.cli("stop", timeout=120)
        home.cleanup()


def boot(home: StackHome, *enable: str) -> RealStack:
    """Enable extensions on the stopped stack, then `start --json` until healthy."""
    for name in enable:
        result = home.cli("extensions", "enable", name)
        assert result.code == 0, result.stderr
    result = home.cli("start", "--platform", "cpu", "--timeout", START_TIMEOUT, "--json", timeout=600)
    if result.code != 0:
        logs = subprocess.run(
            ["docker", "logs", "--tail", "40", f"{home.project}-webui-1"], capture_output=True, text=True
        )
        raise AssertionError(f"start failed ({result.code}): {result.stderr[-3000:]}\nwebui: {logs.stderr[-2000:]}")
    return RealStack(home=home, start=result.json())


def accounts(stack: RealStack) -> RealStack:
    """The first sign-up (the admin), a plain user the admin adds, and the model shared with users."""
    admin = owui.signup(stack.webui, "Admin", "admin@example.com", ADMIN_PASSWORD)
    admin.add_user("Plain User", "user@example.com", USER_PASSWORD, role="user")
    user = owui.signin(stack.webui, "user@example.com", USER_PASSWORD)
    admin.share_model(MODEL)
    stack.admin, stack.user = admin, user
    return stack


def public(connection: dict[str, Any]) -> dict[str, Any]:
    """A tool-server entry without its bearer key, safe to print in an assertion."""
    return {key: value for key, value in connection.items() if key != "key"}


def by_id(connections: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str((c.get("info") or {}).get("id")): c for c in connections}
