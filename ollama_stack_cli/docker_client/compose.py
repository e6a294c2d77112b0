"""`docker compose` for one project: found once, given the engine and values, its errors translated."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import StackError, docker_unavailable
from ..schemas import (
    ComposeModel,
)
from .endpoint import _docker_config_dir
from .hints import COMPOSE_HINT, ENGINE_HINT, log

ENGINE_VARIABLES = ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")

SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)

PLUGIN_DIRS = (
    "/usr/local/lib/docker/cli-plugins",
    "/usr/local/libexec/docker/cli-plugins",
    "/usr/lib/docker/cli-plugins",
    "/usr/libexec/docker/cli-plugins",
)


def find_compose() -> list[str]:
    """`docker compose` (v2 plugin), else a standalone `docker-compose` that is v2.

    A compose CLI plugin is always v2, so finding its file where the docker CLI looks
    is enough; asking `docker compose version` costs a process start (~100 ms) and is
    only done when no plugin file is found (e.g. Docker Desktop's extra plugin dirs).
    """
    plugin = _compose_plugin()
    if plugin is not None:
        # Run the plugin binary itself: `docker compose` would start the docker CLI
        # first only to exec it (~40 ms per call). Compose v2 works the same standalone.
        return [str(plugin)]
    docker_cli = shutil.which("docker")
    if docker_cli:
        version = compose_version([docker_cli, "compose"])
        if version and not version.startswith("1."):
            return [docker_cli, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        version = compose_version([standalone])
        if version and version.startswith("1."):
            raise docker_unavailable(
                f"docker-compose {version} is Compose v1, which ollama-stack does not support.", COMPOSE_HINT
            )
        if version:
            return [standalone]
    if not docker_cli and not standalone:
        raise docker_unavailable("Neither `docker` nor `docker-compose` is on PATH.", COMPOSE_HINT)
    raise docker_unavailable("Docker Compose v2 was not found.", COMPOSE_HINT)


def _compose_plugin() -> Path | None:
    for directory in (_docker_config_dir() / "cli-plugins", *map(Path, PLUGIN_DIRS)):
        candidate = directory / "docker-compose"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def compose_version(command: list[str]) -> str | None:
    try:
        result = subprocess.run(
            [*command, "version", "--short"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip().lstrip("v") or None


class Compose:
    """`docker compose` for one project: fixed files, env and project directory."""

    def __init__(
        self,
        command: list[str],
        project: str,
        files: Sequence[Path],
        env: dict[str, str],
        project_dir: Path,
    ) -> None:
        self.command = command
        self.project = project
        self.files = list(files)
        self.env = env
        self.project_dir = project_dir

    def base_args(self) -> list[str]:
        args = [*self.command, "--project-name", self.project, "--project-directory", str(self.project_dir)]
        # Every value reaches compose through the process environment (validated by us).
        # The file itself is never handed over: compose would read a stray .env from the
        # project directory, and its parser echoes a line it rejects, secrets included.
        args += ["--env-file", os.devnull]
        for file in self.files:
            args += ["--file", str(file)]
        return args

    def process_env(self) -> dict[str, str]:
        """The caller's environment (DOCKER_HOST, PATH...) with our values on top.

        COMPOSE_* variables are dropped: a COMPOSE_FILE or COMPOSE_PROFILES left in
        the user's shell would silently change which services run.
        """
        base = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k not in ENGINE_VARIABLES}
        return {**base, **self.env}

    def run(
        self, *args: str, timeout: float | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run compose with captured, scrubbed output; `stdin` is fed to the process (never argv)."""
        full = [*self.base_args(), *args]
        log.debug("running %s", " ".join(full[:2] + list(args[:3])))
        try:
            result = subprocess.run(
                full,
                capture_output=True,
                text=True,
                env=self.process_env(),
                timeout=timeout,
                check=False,
                input=stdin,
                stdin=None if stdin is not None else subprocess.DEVNULL,
            )
        except FileNotFoundError as exc:
            raise docker_unavailable(f"Cannot run {full[0]}.", COMPOSE_HINT) from exc
        except subprocess.TimeoutExpired as exc:
            raise StackError(f"`docker compose {args[0]}` did not finish in {timeout:.0f} s.") from exc
        result = subprocess.CompletedProcess(
            result.args, result.returncode, self.scrub(result.stdout), self.scrub(result.stderr)
        )
        log.debug("compose exited %s; stderr tail: %s", result.returncode, result.stderr[-2000:])
        return result

    def scrub(self, text: str) -> str:
        """Mask secret values (the generated keys, tokens an extension needs) in compose's output."""
        for key, value in self.env.items():
            if value and len(value) >= 6 and SECRET_NAME.search(key):
                text = text.replace(value, "***")
        return text

    def stream(self, *args: str, scrub: bool = True) -> int:
        """Run with output passed on as it comes (`logs -f`), secrets masked line by line.

        `scrub=False` hands compose the terminal itself, for its pull progress display
        (which shows image names and sizes, never the environment).
        """
        full = [*self.base_args(), *args]
        log.debug("streaming %s", " ".join(args))
        try:
            if not scrub:
                return subprocess.run(full, env=self.process_env(), check=False).returncode
            proc = subprocess.Popen(
                full, env=self.process_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except FileNotFoundError as exc:
            raise docker_unavailable(f"Cannot run {full[0]}.", COMPOSE_HINT) from exc
        import threading

        closed = threading.Event()

        def pump(source: Any, fd: int) -> None:
            for line in iter(source.readline, b""):
                if closed.is_set():
                    continue  # drain, so compose never blocks on a full pipe
                data = self.scrub(line.decode("utf-8", "replace")).encode("utf-8")
                try:
                    while data:
                        data = data[os.write(fd, data) :]
                except BrokenPipeError:  # `logs | head`: the reader is done
                    closed.set()
                    proc.terminate()

        pumps = [
            threading.Thread(target=pump, args=(proc.stdout, 1), daemon=True),
            threading.Thread(target=pump, args=(proc.stderr, 2), daemon=True),
        ]
        for thread in pumps:
            thread.start()
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.terminate()  # a SIGINT sent to us alone (not the terminal's group) must end compose too
            proc.wait()
            return 130
        for thread in pumps:
            thread.join()
        return 0 if closed.is_set() else code

    def up(self, services: Sequence[str] = ()) -> None:
        result = self.run("up", "--detach", "--remove-orphans", *services)
        if result.returncode != 0:
            raise translate_compose_error("up", result.stderr)

    def down(self) -> None:
        """Remove containers and networks; volumes are never removed here."""
        result = self.run("down", "--remove-orphans", "--timeout", "10")
        if result.returncode != 0:
            raise translate_compose_error("down", result.stderr)

    def exec(
        self, service: str, argv: Sequence[str], *, stdin: str, workdir: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run a program inside a running service's container, data on its stdin.

        Secrets travel on stdin: an argument list would show them in `ps` and in
        `docker inspect` of the exec.
        """
        args = ["exec", "-T"]
        if workdir:
            args += ["--workdir", workdir]
        return self.run(*args, service, *argv, timeout=timeout, stdin=stdin)

    def logs(self, service: str | None = None, tail: int = 20) -> str:
        args = ["logs", "--no-color", "--tail", str(tail)]
        if service:
            args.append(service)
        result = self.run(*args, timeout=30)
        return result.stdout

    def config(self) -> ComposeModel:
        """The merged project as compose resolves it (images, own volumes and networks)."""
        result = self.run("config", "--format", "json")
        if result.returncode != 0:
            raise translate_compose_error("config", result.stderr)
        return ComposeModel.model_validate_json(result.stdout)


# What compose says (lowercased substrings) -> what the user reads, the fix, the JSON code.
KNOWN_COMPOSE_ERRORS: tuple[tuple[tuple[str, ...], str, str, str], ...] = (
    (
        ('could not select device driver "nvidia"', "nvidia-container-cli"),
        "Docker cannot hand the NVIDIA GPU to Ollama (no NVIDIA runtime in the engine).",
        "Install the NVIDIA Container Toolkit and restart Docker, or use --platform cpu.",
        "gpu_unavailable",
    ),
    (
        ('adding custom device "/dev/kfd"', 'adding custom device "/dev/dri"', "/dev/kfd: no such file"),
        "The Docker engine's host has no AMD GPU devices (/dev/kfd, /dev/dri) to hand to Ollama.",
        "Install the ROCm (amdgpu) kernel driver on the engine's host, or use --platform cpu.",
        "gpu_unavailable",
    ),
    (
        ("port is already allocated", "address already in use"),
        "A port the stack publishes is already in use.",
        "Free it or change OLLAMA_PORT / WEBUI_PORT / MCP_PROXY_PORT in the home's .env.",
        "port_in_use",
    ),
    (
        ("pull access denied", "manifest unknown", "not found: manifest", "no such host"),
        "An image could not be pulled.",
        "Check your network, or set OLLAMA_IMAGE / WEBUI_IMAGE / MCP_PROXY_IMAGE in the home's .env.",
        "image_unavailable",
    ),
)


def translate_compose_error(action: str, stderr: str) -> StackError:
    """Turn compose's output into one line the user can act on."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    text = "\n".join(lines)
    lowered = text.lower()
    tail = lines[-8:]
    for markers, message, hint, slug in KNOWN_COMPOSE_ERRORS:
        if any(marker in lowered for marker in markers):
            return StackError(message, hint, slug=slug, details=tail)
    if "cannot connect to the docker daemon" in lowered or "is the docker daemon running" in lowered:
        return docker_unavailable("Cannot connect to the Docker engine: is it running?", ENGINE_HINT)
    last = next((line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else "")
    return StackError(
        f"docker compose {action} failed: {last[:300]}",
        "Run with --verbose for compose's full output.",
        slug="compose_failed",
        details=tail,
    )


# --- the home's lock --------------------------------------------------------
