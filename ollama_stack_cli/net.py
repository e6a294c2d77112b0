"""Host-side network checks: is a port free, does a service's endpoint answer.

Readiness is decided here, from the host, the way a user's browser would reach the
service, rather than by compose healthchecks that only run every few seconds.
"""

from __future__ import annotations

import errno
import http.client
import socket
from collections.abc import Iterable


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
            if exc.errno == errno.EADDRNOTAVAIL:
                from .errors import StackError

                raise StackError(
                    f"BIND_ADDRESS {host} is not an address of this machine.",
                    "Set BIND_ADDRESS to 127.0.0.1 (or another address this host has) in the .env.",
                    slug="invalid_env",
                ) from None
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
    """Probe (name, host, port, path) targets concurrently, one thread each."""
    import threading

    items = list(targets)
    results: dict[str, bool] = {}
    if len(items) == 1:
        name, host, port, path = items[0]
        results[name] = probe(host, port, path, timeout)
        return results

    def run(name: str, host: str, port: int, path: str) -> None:
        results[name] = probe(host, port, path, timeout)

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in items]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results
