"""Headless Chromium (Debian's package) for looking at Open WebUI as a person would."""

from __future__ import annotations

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


def dump_dom(url: str) -> str:
    """The page's DOM after its scripts ran (virtual time), as Chromium serializes it."""
    with tempfile.TemporaryDirectory(prefix="e2e-chromium-") as profile:
        result = _run(url, ["--dump-dom"], Path(profile))
    assert result.returncode == 0 and result.stdout, f"chromium failed ({result.returncode}): {result.stderr[-1500:]}"
    return result.stdout


def screenshot(url: str, target: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="e2e-chromium-") as profile:
        result = _run(url, [f"--screenshot={target}"], Path(profile))
    assert result.returncode == 0 and target.exists(), f"chromium failed ({result.returncode}): {result.stderr[-1500:]}"
    return target
