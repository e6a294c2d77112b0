"""The tool-server reconcile that runs inside the webui container, against a stand-in store.

The script only talks to `open_webui.models.config.Config`; a tiny fake of that one
class (a JSON file as the database) lets the merge rules be tested here, in a real
Python subprocess fed on stdin exactly as `docker exec` feeds it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ollama_stack_cli import openwebui

FAKE_CONFIG = """
import json, os
PATH = os.environ["FAKE_OWUI_DB"]

class Config:
    @staticmethod
    async def get(key, default=None):
        with open(PATH) as f:
            return json.load(f).get(key, default)

    @staticmethod
    async def upsert(updates):
        with open(PATH) as f:
            data = json.load(f)
        data.update(updates)
        data["writes"] = data.get("writes", 0) + 1
        with open(PATH, "w") as f:
            json.dump(data, f)
"""

ADMIN_ENTRY = {"url": "http://my-server:9000", "path": "openapi.json", "auth_type": "none", "key": "", "config": {}}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    package = tmp_path / "site" / "open_webui" / "models"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "config.py").write_text(FAKE_CONFIG)
    db = tmp_path / "db.json"
    db.write_text(json.dumps({"tool_server.connections": [], "ui.banners": [{"id": "b1"}]}))
    return db


def reconcile(store: Path, names: list[str], *, write: bool = True, visible: str = "all") -> dict[str, Any]:
    entries = openwebui.tool_server_entries(names, "k3y-secret", visible)  # type: ignore[arg-type]
    request = json.dumps({"entries": entries, "prefix": openwebui.PROXY_URL, "write": write})
    proc = subprocess.run(
        [sys.executable, "-c", openwebui._SCRIPT],
        input=request,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(store.parent / "site"), "FAKE_OWUI_DB": str(store)},
        check=True,
    )
    found = openwebui._parse(proc.stdout)
    assert found is not None, proc.stdout
    return found


def held(store: Path) -> list[dict[str, Any]]:
    connections: list[dict[str, Any]] = json.loads(store.read_text())["tool_server.connections"]
    return connections


def test_entries_carry_a_stable_id_and_a_grant_for_all_users() -> None:
    [entry] = openwebui.tool_server_entries(["time"], "k3y", "all")
    assert entry["url"] == "http://mcp_proxy:8000/time" and entry["path"] == "openapi.json"
    assert entry["info"]["id"] == "time" and entry["auth_type"] == "bearer" and entry["key"] == "k3y"
    assert entry["config"]["enable"] is True
    assert entry["config"]["access_grants"] == [{"principal_type": "user", "principal_id": "*", "permission": "read"}]
    [admins_only] = openwebui.tool_server_entries(["time"], "k3y", "admins")
    assert admins_only["config"]["access_grants"] == []


def test_enable_adds_only_its_entry_and_keeps_the_admins(store: Path) -> None:
    data = json.loads(store.read_text())
    data["tool_server.connections"] = [ADMIN_ENTRY]
    store.write_text(json.dumps(data))

    found = reconcile(store, ["time"])

    assert found["added"] == ["time"] and not found["removed"]
    assert held(store)[0] == ADMIN_ENTRY
    assert [e["info"]["id"] for e in held(store)[1:]] == ["time"]
    assert json.loads(store.read_text())["ui.banners"] == [{"id": "b1"}]


def test_a_second_extension_keeps_the_first_ones_id_and_place(store: Path) -> None:
    reconcile(store, ["time"])
    reconcile(store, ["fetch", "time"])
    assert [e["info"]["id"] for e in held(store)] == ["time", "fetch"]


def test_disable_removes_exactly_its_entry(store: Path) -> None:
    reconcile(store, ["fetch", "time"])
    data = json.loads(store.read_text())
    data["tool_server.connections"].append(ADMIN_ENTRY)
    store.write_text(json.dumps(data))

    found = reconcile(store, ["fetch"])

    assert found["removed"] == ["time"]
    assert [e.get("info", {}).get("id") for e in held(store)] == ["fetch", None]


def test_nothing_to_change_writes_nothing(store: Path) -> None:
    reconcile(store, ["time"])
    writes = json.loads(store.read_text())["writes"]
    found = reconcile(store, ["time"])
    assert not (found["added"] or found["removed"] or found["updated"])
    assert json.loads(store.read_text())["writes"] == writes


def test_an_admins_edits_to_our_entry_stay_while_what_we_own_is_restored(store: Path) -> None:
    reconcile(store, ["time"])
    data = json.loads(store.read_text())
    entry = data["tool_server.connections"][0]
    entry["info"]["description"] = "Clock tools"
    entry["key"] = "stale"
    store.write_text(json.dumps(data))

    found = reconcile(store, ["time"])

    assert found["updated"] == ["time"]
    [entry] = held(store)
    assert entry["key"] == "k3y-secret" and entry["info"]["description"] == "Clock tools"


def test_checking_reports_drift_without_writing(store: Path) -> None:
    found = reconcile(store, ["time"], write=False)
    assert found["added"] == ["time"]
    assert held(store) == [] and "writes" not in json.loads(store.read_text())


def test_visibility_change_is_an_update(store: Path) -> None:
    reconcile(store, ["time"])
    found = reconcile(store, ["time"], visible="admins")
    assert found["updated"] == ["time"]
    assert held(store)[0]["config"]["access_grants"] == []
