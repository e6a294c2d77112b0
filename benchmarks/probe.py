"""The start floor's health poll, shared by `run.py` and `floor.py start`.

One copy, so the floor run inside a Typer app polls exactly as the bare floor
does. Standard library only (`http.client`): the floor program imports it inside
its `start` command, so `--help` never pays for it.
"""

import http.client
import time

POLL_INTERVAL = 0.05  # the start floor polls every 50 ms


def probe(port: int, path: str) -> bool:
    """One GET on 127.0.0.1; any answer below 400 counts (the CLI's rule too)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status < 400
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def poll(targets: list[tuple[int, str]], timeout: float) -> list[tuple[int, str]]:
    """GET every (port, path) each POLL_INTERVAL until all answer; returns what never did."""
    pending = list(targets)
    deadline = time.monotonic() + timeout
    while True:
        pending = [t for t in pending if not probe(*t)]
        if not pending or time.monotonic() > deadline:
            return pending
        time.sleep(POLL_INTERVAL)
