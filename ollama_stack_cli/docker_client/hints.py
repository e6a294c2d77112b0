"""Diagnostics shared by the Docker modules: the debug log and the hints for a missing engine or compose."""

from __future__ import annotations


class _DebugLog:
    """`--verbose` output without importing logging on every run (it costs ~15 ms)."""

    enabled = False

    def debug(self, message: str, *args: object) -> None:
        if self.enabled:
            import logging

            logging.getLogger(__name__).debug(message, *args)


log = _DebugLog()

ENGINE_HINT = (
    "Start the Docker engine (e.g. `sudo systemctl start docker`, or open Docker Desktop), "
    "or point DOCKER_HOST / `docker context use` at a running one."
)
COMPOSE_HINT = (
    "Install Docker Compose v2: the `docker-compose-plugin` package, Docker Desktop, "
    "or a v2 `docker-compose` binary on PATH."
)
