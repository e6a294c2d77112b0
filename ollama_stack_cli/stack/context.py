"""One context per command: the home, its files and the engine, loaded once and passed down.

Every layer below a command reads what it needs from here instead of going back to
the files: `.env`, the state file and the extension folders are read once per
invocation, and the engine and compose are found once (STYLE 14, load once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import config, extensions
from ..docker_client import Compose, Engine, find_compose, pause_for_tests
from ..schemas import CORE_SERVICES, SECRET_KEYS, Extension, Platform, ServiceSpec, StackEnv, StackState


@dataclass
class Context:
    """The home's settings and state, the extensions found, and the engine to use."""

    home: Path
    env: StackEnv
    state: StackState
    env_values: dict[str, str]
    _extensions: dict[str, Extension] | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)
    _compose_command: list[str] | None = field(default=None, repr=False)

    @property
    def project(self) -> str:
        return self.env.PROJECT_NAME

    @property
    def platform(self) -> Platform:
        """The platform of the last start; cpu before the first."""
        return self.state.platform or "cpu"

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine()
        return self._engine

    @property
    def compose_command(self) -> list[str]:
        """`docker compose` (or a v2 `docker-compose`), found on first use; exit 4 when missing."""
        if self._compose_command is None:
            self._compose_command = find_compose()
        return self._compose_command

    @property
    def extensions(self) -> dict[str, Extension]:
        """Bundled and user extensions by name, discovered once."""
        if self._extensions is None:
            self._extensions = extensions.discover(self.home)
        return self._extensions

    @property
    def core_network(self) -> str:
        """The core compose project's default network, which extensions join as external."""
        return f"{self.project}_default"

    def ext_project(self, name: str) -> str:
        """An extension's own compose project name."""
        return f"{self.project}-ext-{name}"

    def extension_of(self, project: str | None) -> str | None:
        """The extension a compose project belongs to, or None for the core and strangers."""
        prefix = f"{self.project}-ext-"
        return project[len(prefix) :] if project and project.startswith(prefix) else None

    def extension(self, name: str) -> Extension:
        """One extension by name, or a usage error listing the known ones."""
        return extensions.get(self.extensions, name)

    def ensure_env(self) -> None:
        """Create `.env` with generated secrets (first run), then read it again."""
        self.env = config.ensure_env(self.home)
        self.env_values = config.read_env_values(self.home)

    def reload(self) -> None:
        """Read `.env` and the state file again (after a rollback or a repair put files back)."""
        self.env_values = config.read_env_values(self.home)
        self.env = config.validate_env(self.env_values, self.home)
        self.state = config.read_state(self.home)

    def record_platform(self, platform: Platform) -> None:
        """Remember the platform started with, so stop and status use the same files."""
        self.state = config.set_platform(self.home, platform)

    def set_enabled(self, names: list[str]) -> None:
        self.state = config.set_enabled_extensions(self.home, names)

    def compose(self, platform: Platform | None = None) -> Compose:
        """`docker compose` for the core stack with this home's files and values."""
        return Compose(
            command=self.compose_command,
            project=self.project,
            files=config.compose_files(self.home, platform or self.platform),
            env=compose_env(self),
            project_dir=self.home,
        )


def pause_point(ctx: Context, point: str) -> None:
    """Where a fault test may stop this process (OLLAMA_STACK_TEST_PAUSE_AT); a no-op otherwise."""
    pause_for_tests(ctx.home, point)


def load(home: Path, engine: Engine | None = None) -> Context:
    """Read the home's state and settings without creating anything (and use `engine` if given)."""
    values = config.read_env_values(home)
    env = config.validate_env(values, home)
    return Context(home=home, env=env, state=config.read_state(home), env_values=values, _engine=engine)


def expected_services(platform: Platform | None) -> list[ServiceSpec]:
    """Services that run as containers on this platform (apple uses the host's Ollama)."""
    if platform == "apple":
        return [s for s in CORE_SERVICES if s.name != "ollama"]
    return list(CORE_SERVICES)


def compose_env(ctx: Context) -> dict[str, str]:
    """Values handed to compose: every `.env` key (the user's too), validated ones on top."""
    values = dict(ctx.env_values)
    values.update({key: str(value) for key, value in ctx.env.model_dump().items()})
    values["MCP_PROXY_CONFIG_DIR"] = str(config.proxy_config_dir(ctx.home))
    for key in SECRET_KEYS:
        # `down` and `logs` must parse the file before the secrets exist; `start`
        # generates them before `up`, so this placeholder never reaches a container.
        values[key] = values.get(key) or "not-generated"
    values["STACK_NETWORK"] = ctx.core_network
    values.update(ctx.engine.endpoint.compose_env())  # compose goes to the engine the SDK calls go to
    return values
