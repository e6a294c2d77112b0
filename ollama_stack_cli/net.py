"""Host-side network checks: is a port free, does a service's endpoint answer.

Readiness is decided here, from the host, the way a user's browser would reach the
service, rather than by compose healthchecks that only run every few seconds.
"""

from __future__ import annotations

import errno
import http.client
import socket
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (a TIME_WAIT leftover does not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def probe(host: str, port: int, path: str, timeout: float = 1.0) -> bool:
    """One GET; any answer below 400 means the service is up."""
    conn = http.client.HTTPConnection(host.strip("[]"), port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "ollama-stack"})
        response = conn.getresponse()
        response.read(65536)
        return response.status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def probe_many(targets: Iterable[tuple[str, str, int, str]], timeout: float = 1.0) -> dict[str, bool]:
    """Probe (name, host, port, path) targets concurrently."""
    items = list(targets)
    if not items:
        return {}
    if len(items) == 1:
        name, host, port, path = items[0]
        return {name: probe(host, port, path, timeout)}
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        results = pool.map(lambda t: (t[0], probe(t[1], t[2], t[3], timeout)), items)
        return dict(results)
