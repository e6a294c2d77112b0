"""Parsing the engine's list output and translating compose's errors."""

from __future__ import annotations

from ollama_stack_cli.docker_client import _container_info, translate_compose_error
from ollama_stack_cli.schemas import StackEnv


def _raw(status: str, state: str = "running") -> dict:
    return {
        "Id": "0123456789abcdef",
        "Names": ["/p-webui-1"],
        "Image": "img",
        "State": state,
        "Status": status,
        "Labels": {"com.docker.compose.service": "webui", "com.docker.compose.project": "p"},
        "Ports": [
            # What Docker 20.10+ lists for one wildcard publish: an IPv4 and an IPv6 binding.
            {"IP": "0.0.0.0", "PrivatePort": 8080, "PublicPort": 9000, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 8080, "PublicPort": 9000, "Type": "tcp"},
            {"PrivatePort": 11434, "Type": "tcp"},
        ],
    }


def test_container_health_and_uptime_from_status_text() -> None:
    info = _container_info(_raw("Up 5 minutes (healthy)"))
    assert (info.docker_health, info.uptime) == ("healthy", "5 minutes")
    assert (info.id, info.name) == ("0123456789ab", "p-webui-1")
    assert [(p.host_ip, p.host_port, p.container_port) for p in info.ports] == [("0.0.0.0", 9000, 8080)]
    assert _container_info(_raw("Up 3 seconds (health: starting)")).docker_health == "starting"
    assert _container_info(_raw("Up 1 hour (unhealthy)")).docker_health == "unhealthy"
    exited = _container_info(_raw("Exited (1) 2 minutes ago", state="exited"))
    assert (exited.docker_health, exited.uptime) == ("none", None)


def test_compose_errors_become_actionable() -> None:
    gpu = translate_compose_error(
        "up", 'Error response from daemon: could not select device driver "nvidia" with capabilities: [[gpu]]'
    )
    assert gpu.slug == "gpu_unavailable" and "--platform cpu" in (gpu.hint or "")
    port = translate_compose_error("up", "Bind for 127.0.0.1:8080 failed: port is already allocated")
    assert port.slug == "port_in_use"
    pull = translate_compose_error("up", "Error response from daemon: pull access denied for x")
    assert pull.slug == "image_unavailable"
    other = translate_compose_error("up", "something\nError: the real reason\n")
    assert "the real reason" in other.message and other.slug == "compose_failed"


def test_url_host_for_wildcard_and_ipv6_binds() -> None:
    assert StackEnv(BIND_ADDRESS="0.0.0.0").url_host == "127.0.0.1"
    assert StackEnv(BIND_ADDRESS="::1").url_host == "[::1]"
    assert StackEnv().is_loopback and not StackEnv(BIND_ADDRESS="0.0.0.0").is_loopback
