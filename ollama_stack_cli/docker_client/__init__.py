"""The only code that talks to Docker: the engine's API, `docker compose`, the home's lock and journal file.

Engine and compose failures are translated into `StackError`s here, in one place,
so every command reports "the engine is down" or "that port is taken" the same way.
Nothing in this package prints; progress is handed back through callbacks. One job
a module: `endpoint` (which engine and how to reach it), `engine` (its API),
`compose`, `lock`, `journal`, and `hints` (the debug log and the shared hints).
"""

from __future__ import annotations

from .compose import (
    ENGINE_VARIABLES,
    SECRET_NAME,
    Compose,
    compose_version,
    find_compose,
    translate_compose_error,
)
from .endpoint import resolve_endpoint, ssh_command
from .engine import Engine, PullProgress, _container_info, split_reference
from .hints import COMPOSE_HINT, ENGINE_HINT, log
from .journal import JOURNAL_FILE, CorruptJournal, Journal, file_digest, pause_for_tests
from .lock import describe_holder, lock_if_free, operation_lock

__all__ = [
    "COMPOSE_HINT",
    "ENGINE_HINT",
    "ENGINE_VARIABLES",
    "JOURNAL_FILE",
    "SECRET_NAME",
    "Compose",
    "CorruptJournal",
    "Engine",
    "Journal",
    "PullProgress",
    "_container_info",
    "compose_version",
    "describe_holder",
    "file_digest",
    "find_compose",
    "lock_if_free",
    "log",
    "operation_lock",
    "pause_for_tests",
    "resolve_endpoint",
    "split_reference",
    "ssh_command",
    "translate_compose_error",
]
