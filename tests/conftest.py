"""Shared fixtures: every test gets its own home, never the user's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TIERS = ("integration", "e2e", "remote")


def tiers_required() -> bool:
    """In CI (or when asked), a tier whose engine or images are missing fails; it never skips."""
    return os.environ.get("OLLAMA_STACK_REQUIRE_DOCKER") == "1" or os.environ.get("CI") == "true"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test carries the marker of its tier's folder (select with -m, e.g. -m "not e2e")."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts:
                item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point OLLAMA_STACK_HOME at a fresh folder so no test touches a real home."""
    home = tmp_path / "home"
    monkeypatch.setenv("OLLAMA_STACK_HOME", str(home))
    for key in list(os.environ):
        if key.startswith("COMPOSE_"):
            monkeypatch.delenv(key)
    return home
