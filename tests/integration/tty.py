"""Run the CLI under a pseudo-terminal, as a person at a terminal does."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Sequence

from .conftest import ENTRY_POINT, Result, StackHome


def run_tty(
    home: StackHome,
    *args: str,
    columns: int = 80,
    answers: Sequence[tuple[str, str]] = (),
    env: dict[str, str] | None = None,
    timeout: float = 180,
    interrupt_on: str | None = None,
) -> Result:
    """stdin, stdout and stderr on one pty of `columns` columns; `answers` are (prompt, reply);
    `interrupt_on`: press Ctrl-C (SIGINT to the command) once that text has been shown.

    Returns the exit code and everything the terminal showed (in `stdout`), with CRLF as LF.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    full_env = {**os.environ, **home.extra_env, "TERM": "xterm-256color", **(env or {})}
    for key in ("OLLAMA_STACK_HOME", "COLUMNS", "LINES", "NO_COLOR"):
        if env is None or key not in env:
            full_env.pop(key, None)
    proc = subprocess.Popen(
        [*ENTRY_POINT, "--home", str(home.path), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=full_env,
        cwd=str(home.path.parent),
        start_new_session=True,
    )
    os.close(slave)
    pending = list(answers)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
                if pending and pending[0][0].encode() in seen:
                    os.write(master, pending.pop(0)[1].encode())
                if interrupt_on and interrupt_on.encode() in seen:
                    os.killpg(proc.pid, signal.SIGINT)
                    interrupt_on = None
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode("utf-8", "replace").replace("\r\n", "\n")
    return Result(code, text, "")
