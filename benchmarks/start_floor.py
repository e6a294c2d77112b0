"""The start floor of SPEC 9, as its own process: what `ollama-stack start` is measured against.

`docker compose up -d` on the given compose file and .env, then a GET on every
endpoint each 50 ms until all of them answer below 400; exit 0 then, 1 on timeout.
Standard library only, run with the same Python as the CLI and timed from spawn to
exit like every other contender, so it pays the interpreter start as the CLI does.

    python benchmarks/start_floor.py PROJECT ENV_FILE COMPOSE_FILE PORT/PATH [PORT/PATH ...]
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import time

POLL_INTERVAL = 0.05
TIMEOUT = 180.0


def answers(port: int, path: str) -> bool:
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


def main(argv: list[str]) -> int:
    project, env_file, compose_file, *waits = argv
    up = ["docker", "compose", "--project-name", project, "--env-file", env_file, "-f", compose_file, "up", "-d"]
    if subprocess.run(up, stdin=subprocess.DEVNULL).returncode:
        return 1
    pending = [(int(port), "/" + path) for port, _, path in (w.partition("/") for w in waits)]
    deadline = time.monotonic() + TIMEOUT
    while True:
        pending = [t for t in pending if not answers(*t)]
        if not pending:
            return 0
        if time.monotonic() > deadline:
            print(f"never answered: {pending}", file=sys.stderr)
            return 1
        time.sleep(POLL_INTERVAL)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
