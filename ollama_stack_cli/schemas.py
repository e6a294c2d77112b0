"""The shapes passed between modules and printed with --json.

Only pydantic models cross module boundaries, so a field renamed here is caught by
the type checker everywhere it is used, and the JSON documents scripts read are
defined in one place.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Literal

from pydantic import BaseModel as _PydanticModel
from pydantic import ConfigDict, Field, field_validator


class BaseModel(_PydanticModel):
    """Build each model's validator on first use: commands use a few of these shapes each."""

    model_config = ConfigDict(defer_build=True)


Platform = Literal["cpu", "nvidia", "rocm", "apple"]
WaitState = Literal["waiting", "healthy", "exited"]
Visibility = Literal["all", "admins"]
Health = Literal["healthy", "unhealthy", "starting", "none"]
PLATFORMS: tuple[Platform, ...] = ("cpu", "nvidia", "rocm", "apple")

STATE_SCHEMA_VERSION = 1
PROJECT_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
INSTALLATION_LABEL = "ollama-stack.installation"
COMPOSE_PROJECT_LABEL = "com.docker.compose.project"
COMPOSE_SERVICE_LABEL = "com.docker.compose.service"


class ServiceSpec(BaseModel):
    """A core service as the compose file defines it."""

    model_config = ConfigDict(frozen=True)

    name: str
    port_key: str
    image_key: str
    container_port: int
    health_path: str


CORE_SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        name="ollama",
        port_key="OLLAMA_PORT",
        image_key="OLLAMA_IMAGE",
        container_port=11434,
        health_path="/api/version",
    ),
    ServiceSpec(
        name="webui",
        port_key="WEBUI_PORT",
        image_key="WEBUI_IMAGE",
        container_port=8080,
        health_path="/health",
    ),
    ServiceSpec(
        name="mcp_proxy",
        port_key="MCP_PROXY_PORT",
        image_key="MCP_PROXY_IMAGE",
        container_port=8000,
        health_path="/openapi.json",
    ),
)


class StackState(BaseModel):
    """`.ollama-stack.json`: what the CLI remembers between runs.

    Unknown keys are kept (extra="allow") so an older CLI never drops what a newer
    one wrote.
    """

    model_config = ConfigDict(extra="allow")

    schema_version: Literal[1] = 1
    platform: Platform | None = None
    enabled_extensions: list[str] = Field(default_factory=list)
    # Extensions the CLI last made Open WebUI's tool servers (None: never synced).
    # A start compares it with `enabled_extensions` to know whether Open WebUI lags.
    openwebui_tool_servers: list[str] | None = None


class StackEnv(BaseModel):
    """The `.env` keys the compose files use, validated, with their defaults.

    Values reach `docker compose` as environment variables, so anything that could
    change the meaning of the file (newlines, spaces in names) is refused here.
    """

    model_config = ConfigDict(frozen=True)

    PROJECT_NAME: str = "ollama-stack"
    OLLAMA_IMAGE: str = "ollama/ollama:latest"
    OLLAMA_ROCM_IMAGE: str = "ollama/ollama:rocm"  # Ollama's image on the rocm platform (AMD)
    WEBUI_IMAGE: str = "ghcr.io/open-webui/open-webui:main"
    MCP_PROXY_IMAGE: str = "ghcr.io/open-webui/mcpo:main"
    OLLAMA_PORT: int = 11434
    WEBUI_PORT: int = 8080
    MCP_PROXY_PORT: int = 8200
    BIND_ADDRESS: str = "127.0.0.1"
    WEBUI_SECRET_KEY: str = ""
    MCP_PROXY_API_KEY: str = ""
    EXTENSIONS_VISIBLE_TO: Visibility = "all"

    @field_validator("PROJECT_NAME")
    @classmethod
    def _project_name(cls, value: str) -> str:
        if not PROJECT_NAME_PATTERN.match(value):
            raise ValueError(
                "must be lowercase letters, digits, '-' or '_', start with a letter or digit, at most 63 characters"
            )
        return value

    @field_validator("OLLAMA_IMAGE", "OLLAMA_ROCM_IMAGE", "WEBUI_IMAGE", "MCP_PROXY_IMAGE")
    @classmethod
    def _image(cls, value: str) -> str:
        if not value or any(ch.isspace() for ch in value) or value.startswith("-"):
            raise ValueError("must be an image reference without spaces, such as ollama/ollama:latest")
        return value

    @field_validator("OLLAMA_PORT", "WEBUI_PORT", "MCP_PROXY_PORT")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 1 <= value <= 65535:
            raise ValueError("must be a port number from 1 to 65535")
        return value

    @field_validator("BIND_ADDRESS")
    @classmethod
    def _bind_address(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IP address such as 127.0.0.1") from None
        return value

    @field_validator("WEBUI_SECRET_KEY", "MCP_PROXY_API_KEY")
    @classmethod
    def _secret(cls, value: str) -> str:
        if any(ch.isspace() for ch in value) or any(ch in value for ch in "\"'$`\\#"):
            raise ValueError("must not contain spaces, quotes, '$', '`', '\\' or '#'")
        return value

    def port_of(self, service: ServiceSpec) -> int:
        port: int = getattr(self, service.port_key)
        return port

    def image_key_of(self, service: ServiceSpec, platform: str | None = None) -> str:
        """The `.env` key naming a service's image: Ollama has its own on rocm."""
        return "OLLAMA_ROCM_IMAGE" if platform == "rocm" and service.image_key == "OLLAMA_IMAGE" else service.image_key

    def image_of(self, service: ServiceSpec, platform: str | None = None) -> str:
        image: str = getattr(self, self.image_key_of(service, platform))
        return image

    @property
    def is_loopback(self) -> bool:
        return ipaddress.ip_address(self.BIND_ADDRESS).is_loopback

    @property
    def url_host(self) -> str:
        """Where the host reaches the published ports: loopback for a wildcard bind."""
        address = ipaddress.ip_address(self.BIND_ADDRESS)
        if address.is_unspecified:
            return "127.0.0.1" if address.version == 4 else "[::1]"
        return f"[{address}]" if address.version == 6 else str(address)


SECRET_KEYS = ("WEBUI_SECRET_KEY", "MCP_PROXY_API_KEY")


class EngineEndpoint(BaseModel):
    """The one Docker engine a command uses, and where that choice came from (SPEC 14)."""

    model_config = ConfigDict(frozen=True)

    host: str
    source: str  # "DOCKER_HOST", "context NAME" or "default"
    tls: bool = Field(default=False, exclude=True)
    tls_verify: bool = Field(default=False, exclude=True)
    cert_dir: str | None = Field(default=None, exclude=True)

    @property
    def scheme(self) -> str:
        return self.host.split("://", 1)[0] if "://" in self.host else "unix"

    @property
    def _parts(self) -> tuple[str | None, str | None, int | None]:
        from urllib.parse import urlsplit

        parts = urlsplit(self.host)
        return parts.username, parts.hostname, parts.port

    @property
    def user(self) -> str | None:
        return self._parts[0]

    @property
    def hostname(self) -> str | None:
        return self._parts[1]

    @property
    def port(self) -> int | None:
        return self._parts[2]

    @property
    def local(self) -> bool:
        """Does the engine publish its ports on this machine? A socket or a loopback address does."""
        if self.scheme in ("unix", "npipe"):
            return True
        name = self.hostname or ""
        if name == "localhost":
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False

    def info(self) -> EngineInfo:
        return EngineInfo(host=self.host, source=self.source, local=self.local)

    def compose_env(self) -> dict[str, str]:
        """The variables that send `docker compose` to this same engine."""
        env = {"DOCKER_HOST": self.host}
        if self.tls:
            env["DOCKER_TLS_VERIFY" if self.tls_verify else "DOCKER_TLS"] = "1"
            if self.cert_dir:
                env["DOCKER_CERT_PATH"] = self.cert_dir
        return env


class EngineInfo(BaseModel):
    """The engine as `status --json` names it."""

    host: str
    source: str
    local: bool


class PlatformDecision(BaseModel):
    """Which overlay is used and the evidence behind it, for `status` and `check`."""

    platform: Platform
    source: Literal["flag", "detected"]
    evidence: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


class PortBinding(BaseModel):
    host_ip: str
    host_port: int
    container_port: int


class ServiceStatus(BaseModel):
    name: str
    state: str
    health: Health
    image: str | None = None
    container_id: str | None = None
    url: str | None = None
    uptime: str | None = None
    ports: list[PortBinding] = Field(default_factory=list)


EXTENSION_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
ENV_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class McpSpec(BaseModel):
    """How the proxy reaches an extension's MCP server."""

    model_config = ConfigDict(extra="forbid")

    transport: Literal["streamable-http", "sse", "stdio"]
    url: str | None = None
    command: str | None = None
    args: list[str] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    def model_post_init(self, __context: object) -> None:
        if self.transport == "stdio":
            if not self.command:
                raise ValueError("a stdio server needs 'command'")
        elif not self.url:
            raise ValueError(f"a {self.transport} server needs 'url'")


class ExtensionManifest(BaseModel):
    """`extensions/<name>/mcp-config.json`: the public contract for extension authors."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    version: str = "0.0.0"
    platforms: list[Platform] = Field(default_factory=lambda: list(PLATFORMS))
    mcp: McpSpec
    env: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not EXTENSION_NAME_PATTERN.match(value):
            raise ValueError("must match [a-z0-9][a-z0-9_-]{0,63}")
        return value

    @field_validator("env")
    @classmethod
    def _env(cls, value: list[str]) -> list[str]:
        for key in value:
            if not ENV_KEY_PATTERN.match(key):
                raise ValueError(f"{key!r} is not a valid .env key")
        return value


class Extension(BaseModel):
    """A discovered extension: valid (with its manifest) or invalid (with the reason)."""

    name: str
    source: Literal["bundled", "user"]
    path: str
    manifest: ExtensionManifest | None = None
    error: str | None = None
    has_compose: bool = False

    @property
    def valid(self) -> bool:
        return self.manifest is not None


class ExtensionStatus(BaseModel):
    name: str
    enabled: bool
    state: str
    description: str = ""
    version: str | None = None
    source: str | None = None
    error: str | None = None


class ExtensionList(BaseModel):
    extensions: list[ExtensionStatus]


class StackStatus(BaseModel):
    """The `status --json` document; `start` and `stop` print it too."""

    project: str
    home: str
    platform: Platform | None
    running: bool
    healthy: bool
    services: list[ServiceStatus]
    extensions: list[ExtensionStatus] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    engine: EngineInfo | None = None
    # On a remote engine whose ports are bound to its loopback: the `ssh -L` line
    # after which the services' URLs work from this machine.
    tunnel: str | None = None


class ContainerInfo(BaseModel):
    """One container as the engine's list call reports it (no per-container calls)."""

    id: str
    name: str
    image: str
    image_id: str = ""
    state: str
    status: str
    labels: dict[str, str]
    ports: list[PortBinding] = Field(default_factory=list)

    @property
    def project(self) -> str | None:
        return self.labels.get(COMPOSE_PROJECT_LABEL)

    @property
    def service(self) -> str | None:
        return self.labels.get(COMPOSE_SERVICE_LABEL)

    @property
    def installation(self) -> str | None:
        return self.labels.get(INSTALLATION_LABEL)

    @property
    def docker_health(self) -> Health:
        if "(healthy)" in self.status:
            return "healthy"
        if "(unhealthy)" in self.status:
            return "unhealthy"
        if "(health: starting)" in self.status:
            return "starting"
        return "none"

    @property
    def uptime(self) -> str | None:
        if self.state != "running" or not self.status.startswith("Up "):
            return None
        return self.status[3:].split(" (")[0]


class ErrorBody(BaseModel):
    code: str
    exit_code: int
    message: str
    hint: str | None = None


class ErrorDocument(BaseModel):
    error: ErrorBody


class PreState(BaseModel):
    """What existed before an operation: enough to undo exactly its own changes."""

    container_ids: list[str] = Field(default_factory=list)
    # "<compose project>/<service>" of every container that existed, so a rollback can
    # tell a container compose *recreated* (keep: its service was there) from a new one.
    services: list[str] = Field(default_factory=list)
    running_services: list[str] = Field(default_factory=list)
    networks: list[str] = Field(default_factory=list)
    # This installation's volumes before the operation; None in journals from before this
    # field existed, where no volume may be taken for one the operation created.
    volumes: list[str] | None = None
    # Home-relative path -> previous text (None: the file did not exist).
    files: dict[str, str | None] = Field(default_factory=dict)
    # A restore: the volumes whose old contents it stashes inside themselves until it
    # commits, and the image its helper containers run (rollback needs both).
    stashed_volumes: list[str] = Field(default_factory=list)
    helper_image: str | None = None


class JournalStep(BaseModel):
    name: str
    status: Literal["planned", "running", "done"] = "planned"


class JournalEntry(BaseModel):
    """One open operation. The file exists only while the operation runs."""

    id: str
    operation: str
    project: str
    platform: Platform | None = None
    pid: int
    started: str
    steps: list[JournalStep]
    pre_state: PreState
    # Home files the operation may change, and their sha256 after its last completed
    # step (None: absent). A rollback restores only files still exactly as written,
    # so edits a user made after a crash are never overwritten.
    tracked: list[str] = Field(default_factory=list)
    written: dict[str, str | None] = Field(default_factory=dict)

    def step(self, name: str) -> JournalStep:
        return next(s for s in self.steps if s.name == name)


class CheckResult(BaseModel):
    name: str
    status: Literal["pass", "warn", "fail"]
    detail: str
    fix: str | None = None


class CheckReport(BaseModel):
    """The `check --json` document."""

    ok: bool
    platform: Platform | None
    checks: list[CheckResult]
    engine: EngineInfo | None = None
    # The engine or Compose cannot be used: `check` exits 4 then, like every command.
    docker_unavailable: bool = Field(default=False, exclude=True)


class ImageChange(BaseModel):
    service: str
    image: str
    old_id: str | None
    new_id: str | None
    recreated: bool = False


class UpdateReport(BaseModel):
    """The `update --json` document."""

    project: str
    changes: list[ImageChange]
    recreated: list[str]
    backup: str | None = None
    skipped: list[str] = Field(default_factory=list)
    rolled_back: bool = False


class UninstallReport(BaseModel):
    project: str
    removed_containers: list[str]
    removed_networks: list[str]
    removed_volumes: list[str]
    kept_volumes: list[str]
    removed_keep_tags: list[str] = Field(default_factory=list)  # `update`'s tags on previous images
    kept_backups: list[str] = Field(default_factory=list)  # `update`'s data backups, left in the home


ToolServerOutcome = Literal["synced", "unchanged", "pending", "failed"]


class ToolServerSync(BaseModel):
    """What syncing (or checking) Open WebUI's tool servers found and did.

    `held` is what Open WebUI held of ours before; `added`/`removed`/`updated` are the
    changes made (or, when checking, the changes a sync would make).
    """

    outcome: ToolServerOutcome
    held: list[str] = Field(default_factory=list)
    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    detail: str = ""

    @property
    def drift(self) -> bool:
        return bool(self.added or self.removed or self.updated)


class Evidence(BaseModel):
    """What the machine shows about GPUs and the engine's ability to use them (SPEC 4)."""

    system: str
    machine: str
    gpus: list[str] = Field(default_factory=list)
    gpu_details: list[str] = Field(default_factory=list)
    # None: the engine could not be asked (unreachable), which is not "it cannot".
    engine_runtimes: list[str] | None = Field(default_factory=list)
    engine_local: bool = True
    amd_devices: list[str] = Field(default_factory=list)
    cdi_specs: list[str] = Field(default_factory=list)
    toolkit: list[str] = Field(default_factory=list)


class ComposeService(BaseModel):
    model_config = ConfigDict(extra="ignore")

    image: str | None = None


class ComposeResource(BaseModel):
    model_config = ConfigDict(extra="ignore")

    external: bool = False


class ComposeModel(BaseModel):
    """What the CLI reads of `docker compose config`: services' images, own volumes and networks."""

    model_config = ConfigDict(extra="ignore")

    services: dict[str, ComposeService] = Field(default_factory=dict)
    volumes: dict[str, ComposeResource] = Field(default_factory=dict)
    networks: dict[str, ComposeResource] = Field(default_factory=dict)


class ImageTarget(BaseModel):
    """One service image `update` pulls, with the image id it ran (or had) before."""

    project: str
    service: str
    label: str
    image: str
    before_id: str | None = None
    running: bool = False


class ExtensionInfo(BaseModel):
    """`extensions info --json`: the manifest's fields (when valid) and the extension's state."""

    name: str
    description: str | None = None
    version: str | None = None
    platforms: list[Platform] | None = None
    mcp: McpSpec | None = None
    env: list[str] | None = None
    enabled: bool
    state: str
    source: str
    path: str
    has_compose: bool
    valid: bool
    error: str | None = None


# --- models (SPEC 12) -----------------------------------------------------------


class ModelInfo(BaseModel):
    """One installed model as `models list` shows it (`digest` short, `full_digest` whole)."""

    name: str
    size: int
    digest: str
    full_digest: str = ""
    modified_at: str = ""


class ModelList(BaseModel):
    """The `models list --json` document."""

    models: list[ModelInfo]


class LoadedModel(BaseModel):
    """One model in memory (`/api/ps`): bytes held, of them in VRAM, and when it unloads."""

    name: str
    size: int = 0
    size_vram: int = 0
    expires_at: str = ""
    digest: str = ""


class LoadedModelList(BaseModel):
    """The `models ps --json` document."""

    models: list[LoadedModel]


class ModelStore(BaseModel):
    """Where the models live and how much room is left there (checked before a pull)."""

    where: str  # e.g. "/root/.ollama/models in container ollama-stack-ollama-1"
    available: int  # bytes


class ModelTransfer(BaseModel):
    """A pull in progress: bytes done and to do over the layers seen so far."""

    name: str
    completed: int = 0
    total: int = 0
    status: str = ""
    done: bool = False


class ModelPull(BaseModel):
    """One model's pull: its digest before and after (None: not installed), bytes fetched."""

    name: str
    before: str | None = None
    after: str | None = None
    downloaded: int = 0
    error: str | None = None

    @property
    def changed(self) -> bool:
        return self.error is None and self.before != self.after


class ModelPullReport(BaseModel):
    """The `models pull --json` and `models update --json` documents."""

    models: list[ModelPull]
    changed: list[str] = Field(default_factory=list)
    current: list[str] = Field(default_factory=list)
    failed: list[str] = Field(default_factory=list)


class ModelRemoval(BaseModel):
    """The `models rm --json` document."""

    removed: list[str]


class BackupMember(BaseModel):
    """One member of a backup archive, as the manifest records it."""

    name: str
    type: Literal["file", "dir", "symlink", "hardlink"]
    size: int = 0
    sha256: str | None = None
    link: str | None = None


class BackupImage(BaseModel):
    service: str
    image: str
    id: str | None
    digests: list[str] = Field(default_factory=list)


class BackupManifest(BaseModel):
    """`ollama-stack-backup.json`, the first member of every backup archive."""

    format: int
    cli_version: str
    project: str
    created: str
    volumes: list[str]
    images: list[BackupImage] = Field(default_factory=list)
    database: str | None = None
    members: list[BackupMember]


class BackupReport(BaseModel):
    """The `backup --json` document."""

    path: str
    project: str
    size: int
    members: int
    volumes: list[str]
    database: str | None
    consistent_copy: str
    verified: bool


class RestoreReport(BaseModel):
    """The `restore --json` document."""

    path: str
    project: str
    from_project: str
    created: str
    volumes: list[str]
    files: list[str]
    was_running: bool
    started: bool = False


class PreviousImage(BaseModel):
    """A service's image before an update: the id its reference is put back to on rollback."""

    label: str
    image: str
    old_id: str
    new_id: str | None = None


class UpdateRecord(BaseModel):
    """`backups/last-update.json` in the home: what `update --rollback` returns to."""

    created: str
    backup: str | None
    images: list[PreviousImage]
