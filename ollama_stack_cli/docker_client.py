"""The only code that talks to Docker: the SDK, `docker compose`, and the home's lock.

Engine and compose failures are translated into `StackError`s here, in one place,
so every command reports "the engine is down" or "that port is taken" the same way.
Nothing in this module prints; progress is handed back through callbacks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import ExitCode, StackError, docker_unavailable
from .schemas import INSTALLATION_LABEL, ComposeModel, ContainerInfo, JournalEntry, JournalStep, PortBinding, PreState


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


# --- the engine -------------------------------------------------------------

DEFAULT_SOCKET = "/var/run/docker.sock"


class Engine:
    """The Docker Engine API, connected lazily on first use.

    A local engine (a unix socket: the default, DOCKER_HOST=unix://..., or a context
    pointing at one) is spoken to directly with http.client: importing the docker SDK
    (requests, urllib3) costs more than a whole `status`. Remote engines (tcp with
    TLS, ssh, Windows pipes) go through the SDK, which knows those transports.
    """

    def __init__(self) -> None:
        self._socket: str | None = None
        self._sdk: Any = None
        self._resolved = False

    def ping(self) -> None:
        """Fail now (exit 4) when the engine is unreachable."""
        self._request("GET", "/_ping", raw=True)

    def info(self) -> dict[str, Any]:
        data: dict[str, Any] = self._request("GET", "/info")
        return data

    def runtimes(self) -> list[str]:
        """Container runtimes the engine offers (`nvidia` means GPUs can be handed over)."""
        return sorted((self.info().get("Runtimes") or {}).keys())

    def version(self) -> str:
        return str(self._request("GET", "/version").get("Version", "unknown"))

    def containers(self, label: str = INSTALLATION_LABEL) -> list[ContainerInfo]:
        """Every container carrying `label` (any value), from one list call.

        One call whatever the number of services, extensions or installations: the
        list endpoint already has state, health, image and ports, so no container is
        inspected one by one.
        """
        raw = self._request("GET", "/containers/json", {"all": "1", "filters": _filters(label)})
        return [_container_info(item) for item in raw]

    def networks(self, installation: str) -> list[str]:
        raw = self._request("GET", "/networks", {"filters": _filters(f"{INSTALLATION_LABEL}={installation}")})
        return sorted(item["Name"] for item in raw)

    def volumes(self, installation: str) -> list[str]:
        raw = self._request("GET", "/volumes", {"filters": _filters(f"{INSTALLATION_LABEL}={installation}")})
        return sorted(item["Name"] for item in raw.get("Volumes") or [])

    def image_id(self, reference: str) -> str | None:
        """The local image id for a reference, or None when it is not here."""
        from urllib.parse import quote

        data = self._request("GET", f"/images/{quote(reference, safe='')}/json", missing_ok=True)
        return str(data["Id"]) if data else None

    def pull(self, reference: str, on_progress: Callable[[PullProgress], None]) -> None:
        """Pull one image, reporting bytes done/total over its layers as the engine sends them.

        A registry's refusal (unknown image, no access, no network) is a StackError
        carrying the registry's own words, so the user reads why, not just that.
        """
        progress = PullProgress(image=reference)
        failure: list[str] = []

        def on_event(event: dict[str, Any]) -> None:
            if event.get("error"):
                failure.append(str(event.get("errorDetail", {}).get("message") or event["error"]))
                return
            if progress.update(event):
                on_progress(progress)

        name, tag = split_reference(reference)
        query = {"fromImage": name, "tag": tag}
        if not self._resolved:
            self._socket = local_socket()
            self._resolved = True
        if self._socket is not None:

            def on_line(line: bytes) -> None:
                try:
                    on_event(json.loads(line))
                except ValueError:
                    pass

            status, body = _socket_request(self._socket, "POST", "/images/create", query, on_line)
            if status >= 400:
                try:
                    failure.append(str(json.loads(body).get("message", "")))
                except ValueError:
                    failure.append(body.decode("utf-8", "replace").strip())
        else:
            failure.extend(self._sdk_pull(name, tag, on_event))
        if failure:
            raise StackError(f"Could not pull {reference}: {failure[0] or 'the registry refused'}.", slug="pull_failed")
        progress.done = True
        on_progress(progress)

    def _sdk_pull(self, name: str, tag: str, on_event: Callable[[dict[str, Any]], None]) -> list[str]:
        import docker.errors
        import requests.exceptions

        if self._sdk is None:
            self._sdk = _connect()
        try:
            for event in self._sdk.api.pull(name, tag=tag, stream=True, decode=True):
                on_event(event)
        except docker.errors.APIError as exc:
            return [str(exc.explanation or exc)]
        except requests.exceptions.ConnectionError as exc:
            raise _translate(exc) from exc
        return []

    def remove_containers(self, ids: Sequence[str]) -> None:
        """Force-remove containers; their named volumes are left alone. Already gone is fine."""
        for container_id in ids:
            self._request("DELETE", f"/containers/{container_id}", {"force": "1", "v": "0"}, missing_ok=True)

    def restart_container(self, container_id: str, timeout: int = 10) -> None:
        self._request("POST", f"/containers/{container_id}/restart", {"t": str(timeout)}, raw=True)

    def remove_networks(self, names: Sequence[str]) -> None:
        for name in names:
            try:
                self._request("DELETE", f"/networks/{name}", missing_ok=True, raw=True)
            except StackError:
                log.debug("could not remove network %s", name)

    def remove_volumes(self, names: Sequence[str]) -> list[str]:
        """Remove named volumes; returns the ones that could not be removed."""
        failed = []
        for name in names:
            try:
                self._request("DELETE", f"/volumes/{name}", missing_ok=True, raw=True)
            except StackError:
                failed.append(name)
        return failed

    # -- containers and archives (backup, restore) --

    def create_volume(self, name: str, labels: dict[str, str]) -> None:
        self._request("POST", "/volumes/create", body={"Name": name, "Labels": labels})

    def image_origin(self, reference: str) -> tuple[str | None, list[str]]:
        """An image's id and its registry digests (none: built locally, no registry origin)."""
        from urllib.parse import quote

        data = self._request("GET", f"/images/{quote(reference, safe='')}/json", missing_ok=True)
        if not data:
            return None, []
        return str(data["Id"]), sorted(data.get("RepoDigests") or [])

    def tag_image(self, image_id: str, reference: str) -> None:
        """Point `reference` (repo:tag) at an image id."""
        repo, tag = split_reference(reference)
        self._request("POST", f"/images/{image_id}/tag", {"repo": repo, "tag": tag}, raw=True)

    def create_helper(
        self, image: str, mounts: dict[str, str], labels: dict[str, str], command: Sequence[str] = ()
    ) -> str:
        """A container of `image` with named volumes mounted (volume -> path), with these labels.

        Never started unless a `command` is run in it: the archive endpoints read and
        write a stopped container's volumes, so no host path is ever needed.
        """
        body: dict[str, Any] = {
            "Image": image,
            "Labels": labels,
            "HostConfig": {"Binds": [f"{volume}:{path}" for volume, path in mounts.items()]},
            "NetworkDisabled": True,
        }
        if command:
            body["Entrypoint"] = ["/bin/sh", "-c"]
            body["Cmd"] = list(command)
        data = self._request("POST", "/containers/create", body=body)
        return str(data["Id"])

    def run_in(self, container_id: str) -> tuple[int, str]:
        """Start a helper container, wait for it, return its exit code and output."""
        self._request("POST", f"/containers/{container_id}/start", raw=True)
        result = self._request("POST", f"/containers/{container_id}/wait")
        logs = self._request("GET", f"/containers/{container_id}/logs", {"stdout": "1", "stderr": "1"}, raw=True)
        return int(result.get("StatusCode", 1)), _demux(logs).decode("utf-8", "replace")

    @contextmanager
    def get_archive(self, container_id: str, path: str) -> Iterator[Any]:
        """A tar stream of `path` in a container (a readable file object), read as it comes."""
        query = {"path": path}
        url = f"/containers/{container_id}/archive"
        if self._local():
            assert self._socket is not None
            conn = _unix_connection(self._socket)
            try:
                response = _send(conn, self._socket, "GET", url, query, None)
                if response.status >= 400:
                    raise _refused(response.status, response.read())
                yield response
            finally:
                conn.close()
            return
        response = self._sdk_stream("GET", url, query, None)
        try:
            response.raw.decode_content = True
            yield response.raw
        finally:
            response.close()

    def put_archive(self, container_id: str, path: str, chunks: Iterable[bytes]) -> None:
        """Extract a tar stream (plain or gzipped) at `path` in a container, sent as it is read."""
        query = {"path": path, "copyUIDGID": "1"}
        url = f"/containers/{container_id}/archive"
        if self._local():
            assert self._socket is not None
            conn = _unix_connection(self._socket)
            try:
                response = _send(conn, self._socket, "PUT", url, query, chunks)
                body = response.read()
                if response.status >= 400:
                    raise _refused(response.status, body)
            finally:
                conn.close()
            return
        response = self._sdk_stream("PUT", url, query, chunks)
        if response.status_code >= 400:
            raise _refused(response.status_code, response.content)

    def _local(self) -> bool:
        if not self._resolved:
            self._socket = local_socket()
            self._resolved = True
        return self._socket is not None

    def _sdk_stream(self, method: str, path: str, query: dict[str, str], data: Iterable[bytes] | None) -> Any:
        import docker.errors
        import requests.exceptions

        if self._sdk is None:
            self._sdk = _connect()
        api = self._sdk.api
        try:
            return api.request(method, api._url(path), params=query, data=data, stream=method == "GET", timeout=None)
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            raise _translate(exc) from exc

    # -- transport --

    def _request(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None = None,
        *,
        missing_ok: bool = False,
        raw: bool = False,
        body: dict[str, Any] | None = None,
    ) -> Any:
        """One API call (a JSON `body` if given); a 404 is None when `missing_ok`; errors become StackErrors."""
        payload = json.dumps(body).encode() if body is not None else None
        if self._local():
            assert self._socket is not None
            status, data = _socket_request(self._socket, method, path, query, payload=payload)
        else:
            status, data = self._sdk_request(method, path, query, payload)
        if status == 404 and missing_ok:
            return None
        if status >= 400:
            raise _refused(status, data)
        if raw or not data:
            return data
        return json.loads(data)

    def _sdk_request(
        self, method: str, path: str, query: dict[str, str] | None, payload: bytes | None = None
    ) -> tuple[int, bytes]:
        import docker.errors
        import requests.exceptions

        if self._sdk is None:
            self._sdk = _connect()
        api = self._sdk.api
        try:
            headers = {"Content-Type": "application/json"} if payload is not None else None
            response = api.request(
                method, api._url(path), params=query, data=payload, headers=headers, timeout=api.timeout
            )
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            raise _translate(exc) from exc
        return response.status_code, response.content


def split_reference(reference: str) -> tuple[str, str]:
    """`registry:5000/name:tag` -> (`registry:5000/name`, `tag`); a digest stays whole; no tag is latest."""
    if "@" in reference:
        name, digest = reference.split("@", 1)
        return name, digest
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = reference.rsplit(":", 1)
        return name, tag
    return reference, "latest"


class PullProgress:
    """Bytes done and to do over an image's layers, from the engine's pull events."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.layers: dict[str, tuple[int, int]] = {}
        self.done = False
        self.status = "waiting"

    @property
    def completed(self) -> int:
        return sum(done for done, _ in self.layers.values())

    @property
    def total(self) -> int:
        return sum(total for _, total in self.layers.values())

    def update(self, event: dict[str, Any]) -> bool:
        """Take one event; True when the numbers or the status changed."""
        layer = event.get("id")
        status = str(event.get("status") or "")
        detail = event.get("progressDetail") or {}
        if not layer or not status or status.startswith(("Pulling from", "Digest:", "Status:")):
            return False
        done, total = self.layers.get(layer, (0, 0))
        if status == "Downloading" and detail.get("total"):
            done, total = int(detail.get("current") or 0), int(detail["total"])
        elif status in ("Download complete", "Pull complete", "Already exists", "Extracting", "Verifying Checksum"):
            done = total
        self.status = status
        changed = self.layers.get(layer) != (done, total)
        self.layers[layer] = (done, total)
        return changed


def _filters(label: str) -> str:
    return json.dumps({"label": [label]})


def local_socket() -> str | None:
    """The unix socket of a local engine, or None when the SDK must connect.

    Follows the docker CLI: DOCKER_HOST, else DOCKER_CONTEXT, else the config's
    currentContext, else the default socket.
    """
    host = os.environ.get("DOCKER_HOST")
    if host:
        return host[len("unix://") :] if host.startswith("unix://") else None
    if os.name == "nt":
        return None
    name = os.environ.get("DOCKER_CONTEXT") or _current_context()
    if name in (None, "", "default"):
        return DEFAULT_SOCKET
    return _context_socket(name)


def _docker_config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _current_context() -> str | None:
    try:
        data = json.loads((_docker_config_dir() / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("currentContext") if isinstance(data, dict) else None


def _context_socket(name: str) -> str | None:
    import hashlib

    meta = _docker_config_dir() / "contexts" / "meta" / hashlib.sha256(name.encode()).hexdigest() / "meta.json"
    try:
        host = json.loads(meta.read_text(encoding="utf-8"))["Endpoints"]["docker"]["Host"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return host[len("unix://") :] if isinstance(host, str) and host.startswith("unix://") else None


def _unix_connection(socket_path: str) -> Any:
    import http.client
    import socket

    class _UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(socket_path)
            except BaseException:
                sock.close()
                raise
            self.sock = sock

    return _UnixConnection("localhost", timeout=float(os.environ.get("DOCKER_CLIENT_TIMEOUT", "60")))


def _socket_request(
    socket_path: str,
    method: str,
    path: str,
    query: dict[str, str] | None,
    on_line: Callable[[bytes], None] | None = None,
    payload: bytes | None = None,
) -> tuple[int, bytes]:
    """One request over the engine's unix socket; with `on_line`, a streamed body is fed line by line."""
    conn = _unix_connection(socket_path)
    try:
        response = _send(conn, socket_path, method, path, query, payload)
        if on_line is None or response.status >= 400:
            return response.status, _read(response, socket_path)
        try:
            for line in response:
                on_line(line)
        except OSError as exc:
            raise docker_unavailable(
                f"Lost the Docker engine at unix://{socket_path}: {_short(exc)}.", ENGINE_HINT
            ) from exc
        return response.status, b""
    finally:
        conn.close()


def _send(conn: Any, socket_path: str, method: str, path: str, query: dict[str, str] | None, body: Any) -> Any:
    """Send one request and return the response, unread. An iterable body goes out chunked, as read."""
    import http.client
    from urllib.parse import urlencode

    url = path + ("?" + urlencode(query) if query else "")
    headers = {"Host": "docker", "User-Agent": "ollama-stack"}
    chunked = body is not None and not isinstance(body, bytes)
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
    elif chunked:
        headers["Content-Type"] = "application/x-tar"
    try:
        conn.request(method, url, body=body, headers=headers, encode_chunked=chunked)
        return conn.getresponse()
    except OSError as exc:
        raise docker_unavailable(
            f"Cannot connect to the Docker engine at unix://{socket_path}: is it running? ({_short(exc)})",
            ENGINE_HINT,
        ) from exc
    except http.client.HTTPException as exc:
        raise docker_unavailable(
            f"The Docker engine at unix://{socket_path} answered badly: {exc}.", ENGINE_HINT
        ) from exc


def _read(response: Any, socket_path: str) -> bytes:
    import http.client

    try:
        return bytes(response.read())
    except (OSError, http.client.HTTPException) as exc:
        raise docker_unavailable(
            f"The Docker engine at unix://{socket_path} answered badly: {exc}.", ENGINE_HINT
        ) from exc


def _refused(status: int, body: bytes) -> StackError:
    try:
        message = json.loads(body).get("message", "")
    except ValueError:
        message = body.decode("utf-8", "replace").strip()
    return StackError(f"The Docker engine refused the request: {message or status}.", slug="engine_error")


def _demux(stream: bytes) -> bytes:
    """A non-TTY container's log stream without its 8-byte frame headers."""
    out, at = [], 0
    while at + 8 <= len(stream):
        size = int.from_bytes(stream[at + 4 : at + 8], "big")
        out.append(stream[at + 8 : at + 8 + size])
        at += 8 + size
    return b"".join(out) if out else stream


def _connect() -> Any:
    try:
        import docker
        import docker.errors
    except ImportError as exc:  # pragma: no cover - a broken install
        raise docker_unavailable("The docker Python package is not installed.", "Reinstall ollama-stack.") from exc
    host = os.environ.get("DOCKER_HOST") or "the current docker context"
    try:
        client = docker.from_env(timeout=int(os.environ.get("DOCKER_CLIENT_TIMEOUT", "60")))
    except docker.errors.DockerException as exc:
        log.debug("docker connection failed: %r", exc)
        raise docker_unavailable(
            f"Cannot connect to the Docker engine at {host}: is it running? ({_short(exc)})", ENGINE_HINT
        ) from exc
    return client


def _translate(exc: Exception) -> StackError:
    """An SDK failure as the user should read it: refused by the engine, or engine gone."""
    import docker.errors

    if isinstance(exc, docker.errors.APIError) and exc.response is not None:
        return StackError(f"The Docker engine refused the request: {exc.explanation}.")
    return docker_unavailable(f"Lost the connection to the Docker engine: {_short(exc)}.", ENGINE_HINT)


def _short(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no socket"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, PermissionError):
        return "permission denied on the socket"
    text = str(exc)
    for marker in ("FileNotFoundError", "ConnectionRefusedError", "PermissionError", "Connection refused"):
        if marker in text:
            return {
                "FileNotFoundError": "no socket",
                "ConnectionRefusedError": "connection refused",
                "Connection refused": "connection refused",
                "PermissionError": "permission denied on the socket",
            }[marker]
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _container_info(item: dict[str, Any]) -> ContainerInfo:
    names = item.get("Names") or ["?"]
    ports = [
        PortBinding(host_ip=port.get("IP", ""), host_port=port["PublicPort"], container_port=port["PrivatePort"])
        for port in item.get("Ports") or []
        if port.get("PublicPort")
    ]
    # The engine lists a wildcard publish twice, on 0.0.0.0 and on "::"; keep one of each port.
    wildcard_v4 = {(p.host_port, p.container_port) for p in ports if p.host_ip == "0.0.0.0"}
    ports = [p for p in ports if not (p.host_ip == "::" and (p.host_port, p.container_port) in wildcard_v4)]
    unique = {(p.host_ip, p.host_port, p.container_port): p for p in ports}
    return ContainerInfo(
        id=item["Id"][:12],
        name=names[0].lstrip("/"),
        image=item.get("Image", ""),
        image_id=item.get("ImageID", ""),
        state=item.get("State", "unknown"),
        status=item.get("Status", ""),
        labels=item.get("Labels") or {},
        ports=sorted(unique.values(), key=lambda p: (p.container_port, p.host_ip)),
    )


# --- docker compose ---------------------------------------------------------


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
        base = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
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

LOCK_FILE = ".lock"
LOCK_INFO_FILE = ".lock.json"


class _HomeLock:
    """An exclusive OS lock on `<home>/.lock`, released by the kernel if we die.

    POSIX uses flock directly (what filelock does there, minus a ~40 ms import);
    other systems use filelock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._portable: Any = None

    def try_acquire(self) -> bool:
        if os.name == "posix":
            import fcntl

            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as exc:
                raise StackError(
                    f"Cannot open the lock file {self.path}: {exc.strerror}.",
                    "Check who owns the home (a command once run with sudo?), or use another --home.",
                ) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        from filelock import FileLock, Timeout

        self._portable = self._portable or FileLock(str(self.path))
        try:
            self._portable.acquire(timeout=0)
        except Timeout:
            return False
        return True

    def acquire(self, timeout: float, poll: float = 0.05) -> bool:
        deadline = time.monotonic() + timeout
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        elif self._portable is not None:
            self._portable.release()


@contextmanager
def operation_lock(
    home: Path,
    command: str,
    timeout: float,
    on_wait: Callable[[str], None],
) -> Iterator[None]:
    """Hold the home's lock for a changing command.

    An OS file lock is released by the kernel when its holder dies, so a `kill -9`'d
    command never blocks the next one. Who holds it is written beside it so a waiter
    can say who it is waiting for.
    """
    lock = _HomeLock(home / LOCK_FILE)
    info_path = home / LOCK_INFO_FILE
    if not lock.try_acquire():
        holder = describe_holder(home)
        on_wait(f"Waiting for {holder} to finish (up to {timeout:.0f} s)...")
        if not lock.acquire(timeout):
            raise StackError(
                f"Another ollama-stack operation holds the lock on {home}: {describe_holder(home)}.",
                "Wait for it to finish, or pass --lock-timeout with a longer wait.",
                code=ExitCode.LOCKED,
                slug="locked",
            )
    try:
        info = {"pid": os.getpid(), "command": command, "since": datetime.now(timezone.utc).isoformat()}
        info_path.write_text(json.dumps(info), encoding="utf-8")
        yield
    finally:
        info_path.unlink(missing_ok=True)
        lock.release()


@contextmanager
def lock_if_free(home: Path, command: str) -> Iterator[bool]:
    """Take the lock only if nobody holds it; never wait (for read-only commands)."""
    if not home.is_dir():
        yield False
        return
    lock = _HomeLock(home / LOCK_FILE)
    try:
        free = lock.try_acquire()
    except OSError:
        free = False
    if not free:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def describe_holder(home: Path) -> str:
    info_path = home / LOCK_INFO_FILE
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        since = datetime.fromisoformat(info["since"])
        age = int(time.time() - since.timestamp())
        return f"pid {info['pid']} (`{info['command']}`, for {age} s)"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


# --- the operation journal --------------------------------------------------

JOURNAL_FILE = "journal.json"
TEST_PAUSE_ENV = "OLLAMA_STACK_TEST_PAUSE_AT"


class CorruptJournal(Exception):
    """The journal file exists but cannot be read; it has been moved aside."""

    def __init__(self, moved_to: Path, reason: str) -> None:
        super().__init__(reason)
        self.moved_to = moved_to
        self.reason = reason


class Journal:
    """Write-ahead record of one changing operation.

    Written before the first change with the pre-state needed to undo it; each step
    is marked running, then done; the file is removed when the operation closes. A
    journal found at the start of a command (under the lock) belongs to a process
    that died mid-operation.
    """

    def __init__(self, home: Path, entry: JournalEntry) -> None:
        self.home = home
        self.entry = entry

    @classmethod
    def begin(
        cls,
        home: Path,
        operation: str,
        project: str,
        steps: list[str],
        pre_state: PreState,
        platform: str | None,
        tracked: Sequence[str] = (),
    ) -> Journal:
        import uuid

        entry = JournalEntry(
            id=uuid.uuid4().hex[:12],
            operation=operation,
            project=project,
            platform=platform,  # type: ignore[arg-type]
            pid=os.getpid(),
            started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            steps=[JournalStep(name=name) for name in steps],
            pre_state=pre_state,
            tracked=list(tracked),
        )
        journal = cls(home, entry)
        journal._write()
        return journal

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Mark a step running for its duration, then done.

        A step's "done" is written together with the next step's "running" (each write
        is fsynced, and a start has three steps): rollback undoes running and done steps
        alike, so nothing is lost. The last step's "done" is written at once, so a
        journal whose steps all finished says so.
        """
        self.entry.step(name).status = "running"
        self._write()
        pause_for_tests(self.home, f"{self.entry.operation}:{name}")
        yield
        pause_for_tests(self.home, f"{self.entry.operation}:{name}:end")
        self.entry.step(name).status = "done"
        self.entry.written = {path: file_digest(self.home / path) for path in self.entry.tracked}
        if name == self.entry.steps[-1].name:
            self._write()

    def expect_files(self, files: dict[str, str]) -> None:
        """Record the sha256 of home files the next step is about to write (written with its start).

        A rollback restores a tracked file only if it is exactly as the operation wrote
        it; a step that writes files it did not write before says so up front.
        """
        import hashlib

        for name, text in files.items():
            self.entry.written[name] = hashlib.sha256(text.encode("utf-8")).hexdigest()

    def close(self) -> None:
        (self.home / JOURNAL_FILE).unlink(missing_ok=True)

    def _write(self) -> None:
        from .config import atomic_write

        atomic_write(self.home / JOURNAL_FILE, self.entry.model_dump_json(indent=2), mode=0o600)

    @staticmethod
    def has_open(home: Path) -> bool:
        return (home / JOURNAL_FILE).exists()

    @staticmethod
    def find_open(home: Path) -> JournalEntry | None:
        """The journal left by an operation, or None. A corrupt one is set aside."""
        from pydantic import ValidationError

        path = home / JOURNAL_FILE
        try:
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return JournalEntry.model_validate_json(raw)
        except ValidationError as exc:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
            moved = path.with_name(f"{JOURNAL_FILE}.corrupt-{stamp}")
            os.replace(path, moved)
            raise CorruptJournal(moved, str(exc.errors()[0]["msg"])) from None


def file_digest(path: Path) -> str | None:
    import hashlib

    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def pause_for_tests(home: Path, point: str) -> None:
    """Test-only hook: stop at a named step so a test can kill -9 or interrupt us there.

    Set OLLAMA_STACK_TEST_PAUSE_AT to e.g. `start:compose_up`; the process writes
    `<home>/.paused` with the point's name, then sleeps until it is killed.
    """
    if os.environ.get(TEST_PAUSE_ENV) != point:
        return
    (home / ".paused").write_text(point, encoding="utf-8")
    while True:
        time.sleep(0.1)
