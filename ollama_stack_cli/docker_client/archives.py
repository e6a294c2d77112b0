"""Volumes' contents through the engine's archive endpoints: helper containers, tar streams in and out.

No host path under the engine's data root is ever read, so backup and restore work
for a user without root and on a remote engine; bodies stream, memory stays flat.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..schemas import EngineEndpoint
from .endpoint import _connect, _connection, _refused, _SshConnection, _translate, send_request

_DRAIN = 1 << 16


class Archives:
    """The Engine's archive and helper-container calls (a part of `Engine`, kept in its own module)."""

    _ssh: Any
    _sdk: Any

    @property
    def endpoint(self) -> EngineEndpoint:
        raise NotImplementedError  # Engine's

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
        raise NotImplementedError  # Engine's

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
        from .engine import split_reference  # the engine's own reference rule

        repo, tag = split_reference(reference)
        self._request("POST", f"/images/{image_id}/tag", {"repo": repo, "tag": tag}, raw=True)

    def image_tags(self, pattern: str) -> list[str]:
        """The tags on this engine whose repository:tag matches `pattern` (the engine's `reference` filter)."""
        import json

        raw = self._request("GET", "/images/json", {"filters": json.dumps({"reference": [pattern]})})
        return sorted({tag for item in raw or [] for tag in item.get("RepoTags") or [] if tag != "<none>:<none>"})

    def untag(self, reference: str) -> None:
        """Remove one tag. The engine deletes the image only if no other tag and no container holds it."""
        from urllib.parse import quote

        self._request("DELETE", f"/images/{quote(reference, safe='')}", {"noprune": "1"}, missing_ok=True, raw=True)

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
        with self._stream("GET", f"/containers/{container_id}/archive", {"path": path}, None) as response:
            yield response

    def put_archive(self, container_id: str, path: str, chunks: Iterable[bytes]) -> None:
        """Extract a tar stream (plain or gzipped) at `path` in a container, sent as it is read."""
        query = {"path": path, "copyUIDGID": "1"}
        body = _read_ahead(chunks)
        try:
            with self._stream("PUT", f"/containers/{container_id}/archive", query, body):
                pass
        finally:
            body.close()  # stops the reader at once when the upload failed

    @contextmanager
    def _stream(self, method: str, path: str, query: dict[str, str], body: Iterable[bytes] | None) -> Iterator[Any]:
        """A request whose body or answer streams (flat memory); a refusal becomes a StackError."""
        if self.endpoint.scheme == "npipe":
            with self._sdk_stream(method, path, query, body) as response:
                yield response
            return
        keep = self.endpoint.scheme == "ssh"
        if keep:
            if self._ssh is None:
                self._ssh = _SshConnection(self.endpoint)
            conn: Any = self._ssh
        else:
            conn = _connection(self.endpoint)
        response = send_request(conn, self.endpoint, method, path, query, body, keep)
        finished = False
        try:
            if response.status >= 400:
                raise _refused(response.status, response.read())
            yield response
            # A tar reader stops at the end-of-archive block and can leave the answer's
            # end unread; over ssh the one connection serves the next request, so read it.
            while (keep or method != "GET") and response.read(_DRAIN):
                pass
            finished = True
        finally:
            if not keep:
                conn.close()
            elif not finished:
                conn.http.close()  # left mid-answer: the next request opens a fresh ssh connection

    @contextmanager
    def _sdk_stream(self, method: str, path: str, query: dict[str, str], data: Iterable[bytes] | None) -> Iterator[Any]:
        import docker.errors
        import requests.exceptions

        if self._sdk is None:
            self._sdk = _connect(self.endpoint)
        api = self._sdk.api
        try:
            response = api.request(
                method, api._url(path), params=query, data=data, stream=method == "GET", timeout=None
            )
        except (requests.exceptions.ConnectionError, docker.errors.DockerException) as exc:
            raise _translate(exc) from exc
        try:
            if response.status_code >= 400:
                raise _refused(response.status_code, response.content)
            response.raw.decode_content = True
            yield response.raw
        finally:
            response.close()


def _read_ahead(chunks: Iterable[bytes], depth: int = 8) -> Generator[bytes, None, None]:
    """The chunks, produced by a thread while the engine takes the previous ones.

    Reading, checking and hashing an archive then overlap the engine's unpacking
    instead of taking turns with it. At most `depth` chunks wait (memory stays flat);
    the producer's error is raised here, in its place in the stream. Closing this
    generator stops the producer and closes its iterator (its files, its scratch).
    """
    import queue
    import threading

    waiting: queue.Queue[Any] = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def hand_over(item: Any) -> bool:
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        source = iter(chunks)
        last: Any = end
        try:
            for chunk in source:
                if not hand_over(chunk):
                    return
        except BaseException as exc:  # raised again on the consumer's side
            last = exc
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()
        hand_over(last)

    producer = threading.Thread(target=produce, name="ollama-stack-read-ahead", daemon=True)
    producer.start()
    try:
        while (item := waiting.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join(timeout=30)


def _demux(stream: bytes) -> bytes:
    """A non-TTY container's log stream without its 8-byte frame headers."""
    out, at = [], 0
    while at + 8 <= len(stream):
        size = int.from_bytes(stream[at + 4 : at + 8], "big")
        out.append(stream[at + 8 : at + 8 + size])
        at += 8 + size
    return b"".join(out) if out else stream
