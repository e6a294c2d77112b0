"""The shared layer every command goes through: one context, and what can be done with it.

Commands import this package, `output`, `schemas` and `errors` only. Below it,
`config` owns the home's files and `docker_client` owns the engine and compose; no
command reaches them directly. Modules here, each with one job:

- `context`: the Context loaded once per command (home, .env, state, extensions, engine)
- `preflight`: platform choice and port checks before anything changes
- `status`: the status document from one container listing
- `reach`: where the engine publishes the ports and how this machine reaches them
- `health`: waiting for the services to answer
- `operation`: the journaled `operation(...)`, rollback and recovery (SPEC 7)
- `extension_runtime`: extensions' compose projects, the proxy config, their states
- `tool_servers`: Open WebUI's tool servers kept equal to the extensions (SPEC 11)
- `images`: pulling with progress, update targets, recreating what changed
- `logs`, `removal`, `checks`: what `logs`, `uninstall` and `check` do
- `models`: Ollama's models over its HTTP API, with the free-space guard (SPEC 12)
- `archive`: the backup archive's format and its verification
- `backup`, `restore`: writing an archive; putting one back under the journal
- `update_undo`: what `update` keeps before recreating, and putting it back
- `volumes`: volumes' contents through helper containers (read, stash, put back)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..docker_client import PullProgress
from ..openwebui import awaiting_first_account
from ..schemas import UpdateRecord
from .archive import archive_manifest, verify_archive
from .backup import backup
from .backup import default_output as default_backup_path
from .checks import run_checks
from .context import Context, expected_services, load, pause_point
from .extension_runtime import (
    extension_containers,
    extension_info,
    extension_statuses,
    ready_extensions,
    require_ready,
    restart_proxy,
    start_enabled_extensions,
    start_extension,
    statuses_without_engine,
    stop_all_extensions,
    stop_extension,
    sync_proxy_config,
)
from .health import native_ollama_reachable, wait_healthy
from .images import image_changes, missing_images, pull_images, pull_updates, recreate, update_targets
from .logs import stream_logs
from .operation import operation, recover, repair_if_idle
from .preflight import decide_platform, require_free_ports, require_valid_platform
from .reach import url_host
from .removal import remove_installation, remove_volumes
from .restore import image_for_helpers, restore
from .status import build_status, containers, networks, ours, service_running, status_prepared_meanwhile, volumes
from .tool_servers import sync_tool_servers, tool_servers_involved, tool_servers_lag
from .update_undo import keep_previous, last_update, remove_keep_tags, update_backups, without_origin
from .update_undo import roll_back as roll_back_update

__all__ = [
    "Context",
    "UpdateRecord",
    "keep_previous",
    "last_update",
    "remove_keep_tags",
    "roll_back_update",
    "update_backups",
    "without_origin",
    "backup",
    "default_backup_path",
    "restore",
    "image_for_helpers",
    "archive_manifest",
    "verify_archive",
    "PullProgress",
    "build_status",
    "containers",
    "decide_platform",
    "expected_services",
    "extension_containers",
    "extension_info",
    "extension_statuses",
    "image_changes",
    "load",
    "missing_images",
    "models",
    "native_ollama_reachable",
    "networks",
    "operation",
    "pause_point",
    "ours",
    "pull_images",
    "pull_updates",
    "ready_extensions",
    "recover",
    "recreate",
    "remove_installation",
    "remove_volumes",
    "repair_if_idle",
    "require_free_ports",
    "require_ready",
    "require_valid_platform",
    "restart_proxy",
    "run_checks",
    "service_running",
    "status_prepared_meanwhile",
    "start_enabled_extensions",
    "start_extension",
    "statuses_without_engine",
    "stop_all_extensions",
    "stop_extension",
    "stream_logs",
    "sync_proxy_config",
    "sync_tool_servers",
    "awaiting_first_account",
    "tool_servers_involved",
    "tool_servers_lag",
    "update_targets",
    "url_host",
    "volumes",
    "wait_healthy",
]

if TYPE_CHECKING:
    from . import models


def __getattr__(name: str) -> object:
    """`stack.models` on first use: only the models commands (and start's next steps) need
    Ollama's HTTP client, and `status`/`start` should not pay for importing it."""
    if name == "models":
        import importlib

        return importlib.import_module(f"{__name__}.models")  # `from . import` would call back here
    raise AttributeError(name)
