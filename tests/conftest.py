"""Shared fixtures: every test gets its own home, never the user's."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point OLLAMA_STACK_HOME at a fresh folder so no test touches a real home."""
    home = tmp_path / "home"
    monkeypatch.setenv("OLLAMA_STACK_HOME", str(home))
    for key in list(__import__("os").environ):
        if key.startswith("COMPOSE_"):
            monkeypatch.delenv(key)
    return home
