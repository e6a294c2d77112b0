"""Open WebUI's tool servers, kept equal to the enabled extensions (SPEC 11).

Open WebUI reads `TOOL_SERVER_CONNECTIONS` from its environment on first boot only;
afterwards the `tool_server.connections` setting in its database wins. So the CLI
changes that one setting, at any time, through Open WebUI's own config code
(`open_webui.models.config.Config`), run by the webui container's Python: it works
whatever database the container uses, and every other admin setting stays as it
was. Open WebUI reads the setting on each use, so a change shows at once.

The CLI owns exactly the entries whose `info.id` is an extension name and whose
URL is the proxy's `/<that name>`; entries an admin made by hand are never touched.
"""

from __future__ import annotations

import json
from typing import Any

from .docker_client import Compose
from .errors import StackError
from .schemas import ToolServerSync, Visibility

SERVICE = "webui"
PROXY_URL = "http://mcp_proxy:8000/"
# Where the upstream image keeps `open_webui` (importable from here); harmless for a pip install.
WORKDIR = "/app/backend"
RESULT_MARKER = "OLLAMA_STACK_TOOL_SERVERS "
ALL_USERS_READ = [{"principal_type": "user", "principal_id": "*", "permission": "read"}]

# Runs inside the webui container. Reads {"entries", "prefix", "write"} on stdin,
# prints one marker line with what it found and (when writing) changed. Only the
# fields the CLI owns are compared and set, so whatever an admin added to one of
# our entries (a description, a header) survives a sync.
_SCRIPT = r"""
import asyncio, json, sys

OWNED = ("url", "path", "type", "auth_type", "key")


def owned_view(entry):
    config = entry.get("config") or {}
    return (
        {k: entry.get(k) for k in OWNED},
        config.get("enable"),
        config.get("access_grants") or [],
        (entry.get("info") or {}).get("id"),
    )


def merged(existing, wanted):
    entry = {**existing, **{k: wanted[k] for k in OWNED}}
    entry["config"] = {**(existing.get("config") or {}), **wanted["config"]}
    entry["info"] = {**wanted["info"], **(existing.get("info") or {}), "id": wanted["info"]["id"]}
    return entry


async def main():
    request = json.loads(sys.stdin.read())
    from open_webui.models.config import Config

    key = "tool_server.connections"
    current = await Config.get(key, []) or []
    prefix = request["prefix"]
    wanted = {entry["info"]["id"]: entry for entry in request["entries"]}

    def ours(entry):
        ident = (entry.get("info") or {}).get("id") if isinstance(entry, dict) else None
        return ident if isinstance(ident, str) and entry.get("url") == prefix + ident else None

    result = {"held": [], "added": [], "removed": [], "updated": []}
    new, seen = [], set()
    for entry in current:
        ident = ours(entry)
        if ident is None:
            new.append(entry)
            continue
        result["held"].append(ident)
        if ident not in wanted or ident in seen:
            result["removed"].append(ident)
            continue
        seen.add(ident)
        if owned_view(entry) != owned_view(wanted[ident]):
            result["updated"].append(ident)
            entry = merged(entry, wanted[ident])
        new.append(entry)
    for ident, entry in wanted.items():
        if ident not in seen:
            result["added"].append(ident)
            new.append(entry)
    if request["write"] and new != current:
        await Config.upsert({key: new})
    print("\nOLLAMA_STACK_TOOL_SERVERS " + json.dumps(result), flush=True)


asyncio.run(main())
"""


def tool_server_entries(names: list[str], api_key: str, visible_to: Visibility) -> list[dict[str, Any]]:
    """The tool server Open WebUI should hold for each enabled extension.

    Shaped like what Open WebUI's admin page saves (so a round trip through it
    compares equal); `info.id` keeps the tool id (`server:<name>`) stable whatever
    else is enabled, and the grant lets every user, not only admins, use the tools.
    """
    return [
        {
            "url": f"{PROXY_URL}{name}",
            "path": "openapi.json",
            "type": "openapi",
            "auth_type": "bearer",
            "forward_cookies": False,
            "headers": None,
            "key": api_key,
            "config": {"enable": True, "access_grants": ALL_USERS_READ if visible_to == "all" else []},
            "info": {"id": name, "name": name, "description": f"ollama-stack extension {name}"},
        }
        for name in names
    ]


def reconcile(compose: Compose, entries: list[dict[str, Any]], *, write: bool) -> ToolServerSync:
    """Make Open WebUI hold exactly `entries` of ours (or, without `write`, say what differs).

    Raises StackError when the webui container cannot run Open WebUI's code: it
    is not running, its image is not Open WebUI, or the code failed.
    """
    request = json.dumps({"entries": entries, "prefix": PROXY_URL, "write": write})
    result = compose.exec(SERVICE, ["python3", "-c", _SCRIPT], stdin=request, workdir=WORKDIR, timeout=120)
    found = _parse(result.stdout)
    if result.returncode != 0 or found is None:
        raise StackError(f"Open WebUI's settings could not be {'changed' if write else 'read'}: {_reason(result)}.")
    return ToolServerSync(
        outcome="synced" if write and _changed(found) else "unchanged",
        held=found["held"],
        added=found["added"],
        removed=found["removed"],
        updated=found["updated"],
    )


def _parse(stdout: str) -> dict[str, list[str]] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            try:
                data = json.loads(line[len(RESULT_MARKER) :])
            except ValueError:
                return None
            return {k: [str(v) for v in data.get(k, [])] for k in ("held", "added", "removed", "updated")}
    return None


def _changed(found: dict[str, list[str]]) -> bool:
    return bool(found["added"] or found["removed"] or found["updated"])


def _reason(result: Any) -> str:
    """compose's or Python's last words, already scrubbed of secrets by Compose.run."""
    text = f"{result.stderr}\n{result.stdout}"
    lowered = text.lower()
    if "is not running" in lowered or "no container found" in lowered:
        return "the webui container is not running"
    if "executable file not found" in lowered or "no such file or directory" in lowered and "python3" in lowered:
        return "the webui image has no python3, so it is not an Open WebUI image"
    if "modulenotfounderror" in lowered and "open_webui" in lowered:
        return "the webui image has no open_webui Python package, so it is not an Open WebUI image"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = next((line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else "")
    return last[:300] or f"exit code {result.returncode}"


def awaiting_first_account(url: str, timeout: float = 3.0) -> bool | None:
    """Whether Open WebUI at `url` has no account yet, so the next sign-up becomes its admin.

    Its public `/api/config` says `onboarding` exactly then. None when it does not
    answer like Open WebUI (not up, another image, a remote engine's port not tunnelled).
    """
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # the stack's own port, never a proxy
    try:
        with opener.open(f"{url.rstrip('/')}/api/config", timeout=timeout) as response:
            config = json.loads(response.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None
    if not isinstance(config, dict) or "features" not in config:
        return None
    return bool(config.get("onboarding"))
