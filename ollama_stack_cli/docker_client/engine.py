"""The Docker Engine API: one endpoint per command, containers, images, volumes, exec and pulls."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import StackError
from ..schemas import (
    INSTALLATION_LABEL,
    ContainerInfo,
    EngineEndpoint,
    PortBinding,
)
from .archives import Archives
from .endpoint import (
    _connect,
    _connection,
    _http_request,
    _refused,
    _SshConnection,
    _translate,
    resolve_endpoint,
)
from .hints import log

# --- the engine -------------------------------------------------------------


class Engine(Archives):
    """The Docker Engine API of one endpoint, chosen once (like the docker CLI) and connected on first use.

    Every transport the docker CLI speaks on Linux and macOS is spoken here with
    http.client: a unix socket, tcp, tcp with TLS, and ssh through the `ssh` binary
    running `docker system dial-stdio` on the far side (as the docker CLI and compose
    do, so the user's ssh config, keys and agent apply, and no paramiko is needed).
    Importing the docker SDK (requests, urllib3) costs more than a whole `status`; it
    is used only for Windows named pipes.
    """

    def __init__(self, endpoint: EngineEndpoint | None = None) -> None:
        self._endpoint = endpoint
        self._sdk: Any = None
        self._ssh: _SshConnection | None = None

    @property
    def endpoint(self) -> EngineEndpoint:
        """Which engine: DOCKER_HOST, else DOCKER_CONTEXT, else the current context, else the default."""
        if self._endpoint is None:
            self._endpoint = resolve_endpoint()
        return self._endpoint

    def all_published_ports(self) -> list[PortBinding]:
        """Host ports any container of this engine publishes (one list call, every container)."""
        raw = self._request("GET", "/containers/json")
        return [port for item in raw for port in _container_info(item).ports]

    def healthcheck_passes(self, container_id: str) -> bool:
        """Run the container's own healthcheck command inside it, now, through the engine.

        How health is read when the published ports are not on this machine: the
        probe runs where the service runs. False when it fails or cannot run.
        """
        inspected = self._request("GET", f"/containers/{container_id}/json", missing_ok=True) or {}
        test = ((inspected.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
        if not test or test[0] not in ("CMD", "CMD-SHELL"):
            return False
        argv = list(test[1:]) if test[0] == "CMD" else ["/bin/sh", "-c", " ".join(test[1:])]
        created = self._post_json(
            f"/containers/{container_id}/exec", {"Cmd": argv, "AttachStdout": False, "AttachStderr": False}
        )
        self._post_json(f"/exec/{created['Id']}/start", {"Detach": True})
        for _ in range(100):  # a healthcheck is short; its own timeout is seconds
            state = self._request("GET", f"/exec/{created['Id']}/json")
            if not state.get("Running"):
                return state.get("ExitCode") == 0
            time.sleep(0.05)
        return False

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
        if self.endpoint.scheme != "npipe":

            def on_line(line: bytes) -> None:
                try:
                    on_event(json.loads(line))
                except ValueError:
                    pass

            status, body = self._send("POST", "/images/create", query, on_line=on_line)
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
            self._sdk = _connect(self.endpoint)
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

    def exec_output(self, container_id: str, argv: Sequence[str]) -> tuple[int, str]:
        """Run a program in a running container through the engine's API: (exit code, output).

        Through the engine, not on the host, so it sees what the container sees (its
        filesystems) on a remote engine too. A terminal is allocated so the output comes
        back as one plain stream.
        """
        spec = {"Cmd": list(argv), "AttachStdout": True, "AttachStderr": True, "Tty": True}
        if self.endpoint.scheme == "npipe":
            return self._sdk_exec(container_id, argv)
        created = self._post_json(f"/containers/{container_id}/exec", spec)
        exec_id = str(created["Id"])
        start = json.dumps({"Detach": False, "Tty": True}).encode()
        status, output = self._send("POST", f"/exec/{exec_id}/start", None, body=start)
        if status >= 400:
            raise _refused(status, output)
        inspected = self._request("GET", f"/exec/{exec_id}/json")
        return int(inspected.get("ExitCode") or 0), output.decode("utf-8", "replace")

    def _sdk_exec(self, container_id: str, argv: Sequence[str]) -> tuple[int, str]:
        import docker.errors
        import requests.exceptions

        if self._sdk is None:
            self._sdk = _connect(self.endpoint)
        api = self._sdk.api
        try:
            exec_id = api.exec_create(container_id, list(argv), tty=True)["Id"]
            output = api.exec_start(exec_id, tty=True)
            code = api.exec_inspect(exec_id).get("ExitCode") or 0
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            raise _translate(exc) from exc
        return int(code), output.decode("utf-8", "replace")

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
        if self.endpoint.scheme == "npipe":
            status, data = self._sdk_request(method, path, query, payload)
        else:
            status, data = self._send(method, path, query, body=payload)
        body_bytes = data
        if status == 404 and missing_ok:
            return None
        if status >= 400:
            raise _refused(status, body_bytes)
        if raw or not body_bytes:
            return body_bytes
        return json.loads(body_bytes)

    def _post_json(self, path: str, payload: dict[str, Any]) -> Any:
        status, body = self._send("POST", path, None, body=json.dumps(payload).encode())
        if status >= 400:
            raise StackError(f"The Docker engine refused the request: {body.decode('utf-8', 'replace')[:200]}.")
        return json.loads(body) if body else {}

    def _send(
        self,
        method: str,
        path: str,
        query: dict[str, str] | None,
        *,
        body: bytes | None = None,
        on_line: Callable[[bytes], None] | None = None,
    ) -> tuple[int, bytes]:
        """One request over this endpoint's transport; ssh keeps its one connection for the command."""
        endpoint = self.endpoint
        if endpoint.scheme == "ssh":
            if self._ssh is None:
                self._ssh = _SshConnection(endpoint)
            return _http_request(self._ssh, endpoint, method, path, query, body, on_line, keep=True)
        return _http_request(_connection(endpoint), endpoint, method, path, query, body, on_line)

    def _sdk_request(
        self, method: str, path: str, query: dict[str, str] | None, payload: bytes | None = None
    ) -> tuple[int, bytes]:
        import docker.errors
        import requests.exceptions

        if self._sdk is None:
            self._sdk = _connect(self.endpoint)
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


# How the docker CLI picks an engine. Compose is handed the engine this command
# resolved (EngineEndpoint.compose_env), so none of the caller's own may disagree.
