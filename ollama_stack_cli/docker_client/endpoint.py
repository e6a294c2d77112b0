"""Which engine, and how to reach it: DOCKER_HOST, contexts, TLS, ssh, spoken to with http.client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import StackError, docker_unavailable
from ..schemas import (
    EngineEndpoint,
)
from .hints import ENGINE_HINT, log

DEFAULT_SOCKET = "/var/run/docker.sock"


def resolve_endpoint(environ: Mapping[str, str] | None = None) -> EngineEndpoint:
    """The engine the docker CLI would use: DOCKER_HOST, else DOCKER_CONTEXT, else the current context.

    Contexts are read from the docker CLI's config directory (DOCKER_CONFIG, else
    ~/.docker): `contexts/meta/<sha256 of the name>/meta.json` holds the host, and
    `contexts/tls/<sha256>/docker/` the TLS files when the context has them.
    """
    env = os.environ if environ is None else environ
    host = env.get("DOCKER_HOST")
    if host:
        verify = bool(env.get("DOCKER_TLS_VERIFY"))
        tls = verify or bool(env.get("DOCKER_TLS"))
        cert_dir = (env.get("DOCKER_CERT_PATH") or str(_docker_config_dir(env))) if tls else None
        return EngineEndpoint(host=host, source="DOCKER_HOST", tls=tls, tls_verify=verify, cert_dir=cert_dir)
    name = env.get("DOCKER_CONTEXT") or _current_context(env)
    if name in (None, "", "default"):
        default = "npipe:////./pipe/docker_engine" if os.name == "nt" else f"unix://{DEFAULT_SOCKET}"
        return EngineEndpoint(host=default, source="default")
    return _context_endpoint(name, env)


def _docker_config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    return Path(env.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _current_context(env: Mapping[str, str]) -> str | None:
    try:
        data = json.loads((_docker_config_dir(env) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("currentContext") if isinstance(data, dict) else None


def _context_endpoint(name: str, env: Mapping[str, str]) -> EngineEndpoint:
    import hashlib

    digest = hashlib.sha256(name.encode()).hexdigest()
    root = _docker_config_dir(env) / "contexts"
    try:
        docker = json.loads((root / "meta" / digest / "meta.json").read_text(encoding="utf-8"))["Endpoints"]["docker"]
        host = str(docker["Host"])
    except (OSError, ValueError, KeyError, TypeError):
        raise docker_unavailable(
            f"The docker context {name!r} does not exist in {root}.",
            "List contexts with `docker context ls`, and `docker context use` one of them.",
        ) from None
    tls_dir = root / "tls" / digest / "docker"
    tls = (tls_dir / "ca.pem").is_file() or (tls_dir / "cert.pem").is_file()
    verify = tls and not docker.get("SkipTLSVerify")
    return EngineEndpoint(
        host=host, source=f"context {name}", tls=tls, tls_verify=verify, cert_dir=str(tls_dir) if tls else None
    )


def _connection(endpoint: EngineEndpoint) -> Any:
    """A fresh http.client connection to a unix socket or tcp (with TLS when the endpoint has it)."""
    import http.client

    timeout = float(os.environ.get("DOCKER_CLIENT_TIMEOUT", "60"))
    if endpoint.scheme == "unix":
        return _unix_connection(endpoint.host[len("unix://") :], timeout)
    if endpoint.scheme not in ("tcp", "http", "https"):
        raise docker_unavailable(
            f"DOCKER_HOST {endpoint.host} uses a transport ollama-stack does not know.", ENGINE_HINT
        )
    hostname = endpoint.hostname or "localhost"
    if endpoint.tls or endpoint.scheme == "https":
        return http.client.HTTPSConnection(hostname, endpoint.port or 2376, timeout=timeout, context=_tls(endpoint))
    return http.client.HTTPConnection(hostname, endpoint.port or 2375, timeout=timeout)


def _tls(endpoint: EngineEndpoint) -> Any:
    """Client TLS as the docker CLI sets it up from ca.pem, cert.pem and key.pem."""
    import ssl

    folder = Path(endpoint.cert_dir or _docker_config_dir())
    ca = folder / "ca.pem"
    if endpoint.tls_verify:
        context = ssl.create_default_context(cafile=str(ca) if ca.is_file() else None)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if (folder / "cert.pem").is_file() and (folder / "key.pem").is_file():
        context.load_cert_chain(str(folder / "cert.pem"), str(folder / "key.pem"))
    return context


def _unix_connection(socket_path: str, timeout: float) -> Any:
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

    return _UnixConnection("localhost", timeout=timeout)


class _PipeSocket:
    """What http.client needs of a socket, over the pipes of `ssh ... docker system dial-stdio`."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc

    def sendall(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def makefile(self, mode: str, *args: object, **kwargs: object) -> Any:
        # A file of its own per response (http.client closes it), reading the one pipe.
        assert self.proc.stdout is not None
        return os.fdopen(os.dup(self.proc.stdout.fileno()), "rb")

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def ssh_command(endpoint: EngineEndpoint) -> list[str]:
    """`ssh [-l user] [-p port] -- host`, as the docker CLI builds it from an ssh:// host."""
    args = ["ssh"]
    if endpoint.user:
        args += ["-l", endpoint.user]
    if endpoint.port:
        args += ["-p", str(endpoint.port)]
    if not sys.stdin.isatty():
        args += ["-o", "BatchMode=yes"]  # never a hidden password prompt in a script
    return [*args, "--", endpoint.hostname or ""]


class _SshConnection:
    """An HTTP connection to the engine through one `ssh HOST docker system dial-stdio` process."""

    def __init__(self, endpoint: EngineEndpoint) -> None:
        import http.client

        self.endpoint = endpoint
        self.stderr = ""

        class _Connection(http.client.HTTPConnection):
            def connect(inner) -> None:  # noqa: N805 - the http.client connection
                inner.sock = self._start()

        self.http = _Connection("docker", timeout=float(os.environ.get("DOCKER_CLIENT_TIMEOUT", "60")))
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> Any:
        import tempfile

        self._errors = tempfile.TemporaryFile()
        try:
            self.proc = subprocess.Popen(
                [*ssh_command(self.endpoint), "docker system dial-stdio"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errors,
            )
        except FileNotFoundError as exc:
            raise docker_unavailable(
                f"Cannot reach the Docker engine at {self.endpoint.host}: no `ssh` client on PATH.",
                "Install OpenSSH's client (the docker CLI needs it for ssh:// engines too).",
            ) from exc
        return _PipeSocket(self.proc)

    def failure(self) -> str:
        """What ssh said on its way out, when the connection broke."""
        if self.proc is None:
            return ""
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return ""
        self._errors.seek(0)
        lines = [line for line in self._errors.read().decode("utf-8", "replace").splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"ssh exited with {self.proc.returncode}"


def _http_request(
    conn: Any,
    endpoint: EngineEndpoint,
    method: str,
    path: str,
    query: dict[str, str] | None,
    body: bytes | None,
    on_line: Callable[[bytes], None] | None,
    keep: bool = False,
) -> tuple[int, bytes]:
    """One request; with `on_line`, a streamed body is fed line by line. Failures to connect are exit 4."""
    import http.client

    http_conn = conn.http if keep else conn
    try:
        response = send_request(conn, endpoint, method, path, query, body, keep)
        if on_line is None or response.status >= 400:
            return response.status, response.read()
        for line in response:
            on_line(line)
        return response.status, b""
    except (OSError, http.client.HTTPException) as exc:
        raise _unreachable(conn, endpoint, exc, keep) from exc
    finally:
        if not keep:
            http_conn.close()


def _unreachable(conn: Any, endpoint: EngineEndpoint, exc: BaseException, keep: bool) -> StackError:
    """The engine did not answer (exit 4), with ssh's own last words when it went through ssh."""
    reason = (conn.failure() if keep else "") or _short(exc)
    if keep:
        conn.http.close()
    return docker_unavailable(
        f"Cannot connect to the Docker engine at {endpoint.host} ({endpoint.source}): is it running? ({reason})",
        ENGINE_HINT,
    )


def send_request(
    conn: Any,
    endpoint: EngineEndpoint,
    method: str,
    path: str,
    query: dict[str, str] | None,
    body: bytes | Iterable[bytes] | None,
    keep: bool = False,
) -> Any:
    """Send one request and return its response unread, for the caller to stream.

    A bytes body is JSON; any other iterable goes out chunked as it is read (a tar for
    the archive endpoints), so memory stays flat whatever its size.
    """
    import http.client
    from urllib.parse import urlencode

    http_conn = conn.http if keep else conn
    url = path + ("?" + urlencode(query) if query else "")
    headers = {"Host": "docker", "User-Agent": "ollama-stack"}
    chunked = body is not None and not isinstance(body, bytes)
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
    elif chunked:
        headers["Content-Type"] = "application/x-tar"
    try:
        http_conn.request(method, url, body=body, headers=headers, encode_chunked=chunked)
        return http_conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        raise _unreachable(conn, endpoint, exc, keep) from exc
    except BaseException:
        # The body stopped mid-way (a refusal raised while streaming it, Ctrl-C): close, so
        # the engine sees the upload end instead of waiting for the rest with the container busy.
        http_conn.close()
        raise


def _connect(endpoint: EngineEndpoint) -> Any:
    """The docker SDK, for Windows named pipes only."""
    try:
        import docker
        import docker.errors
    except ImportError as exc:  # pragma: no cover - a broken install
        raise docker_unavailable("The docker Python package is not installed.", "Reinstall ollama-stack.") from exc
    try:
        client = docker.DockerClient(base_url=endpoint.host, timeout=int(os.environ.get("DOCKER_CLIENT_TIMEOUT", "60")))
    except docker.errors.DockerException as exc:
        log.debug("docker connection failed: %r", exc)
        raise docker_unavailable(
            f"Cannot connect to the Docker engine at {endpoint.host}: is it running? ({_short(exc)})", ENGINE_HINT
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


def _refused(status: int, body: bytes) -> StackError:
    """The engine's error answer as the user reads it (its own `message`)."""
    try:
        message = json.loads(body).get("message", "")
    except ValueError:
        message = body.decode("utf-8", "replace").strip()
    return StackError(f"The Docker engine refused the request: {message or status}.", slug="engine_error")
