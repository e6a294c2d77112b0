"""Headless Chromium (Debian's package) for looking at Open WebUI as a person would."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
    "--virtual-time-budget=10000",
    # Without it about half the loads end on the app's error page: under virtual time,
    # Chromium fails to fetch some of the ~100 JS modules ("Failed to fetch dynamically
    # imported module"; the server answered every one with 200). It is the headless
    # browser, not Open WebUI: a person's browser never showed it.
    "--disable-http-cache",
]


def chromium() -> str:
    """The browser binary; missing fails the tier like a missing image would."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("no chromium: `apt-get install chromium` (Debian's package runs headless here)", pytrace=False)


def _run(url: str, action: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *action, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def dump_dom(url: str, until: str, attempts: int = 6) -> str:
    """The page's DOM after its scripts ran (virtual time), once it matches `until`.

    Like a person pressing reload: a load sometimes ends on the app's "500 Internal
    Error" page when headless Chromium drops a module fetch (see FLAGS); the next works.
    """
    dom = ""
    for _ in range(attempts):
        with tempfile.TemporaryDirectory(prefix="e2e-chromium-") as profile:
            result = _run(url, ["--dump-dom"], Path(profile))
        assert result.returncode == 0 and result.stdout, (
            f"chromium failed ({result.returncode}): {result.stderr[-1500:]}"
        )
        dom = result.stdout
        if re.search(until, dom, re.IGNORECASE):
            return dom
    raise AssertionError(f"{url} never showed {until!r} in {attempts} loads; last DOM ends: {dom[-2000:]}")


def screenshot(url: str, target: Path, min_bytes: int, attempts: int = 6) -> bytes:
    """A PNG of the page as a 1280x900 window shows it (look at it: OLLAMA_STACK_E2E_ARTIFACTS).

    Reloaded (as in dump_dom) while it is smaller than `min_bytes`: the app's 500 page is ~9 KB.
    """
    png = b""
    for _ in range(attempts):
        with tempfile.TemporaryDirectory(prefix="e2e-chromium-") as profile:
            result = _run(url, [f"--screenshot={target}"], Path(profile))
        failed = f"chromium failed ({result.returncode}): {result.stderr[-1500:]}"
        assert result.returncode == 0 and target.exists(), failed
        png = target.read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n", f"{target} is not a PNG"
        if len(png) >= min_bytes:
            return png
    raise AssertionError(f"{url}: screenshot {target} stayed {len(png)} bytes (< {min_bytes}) in {attempts} loads")
