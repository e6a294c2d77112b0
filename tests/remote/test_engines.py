"""The CLI at a second, real engine: over tcp, TLS and ssh, through DOCKER_HOST and docker contexts.

Each stack lives on exactly one engine: what a command does on one leaves nothing on
the other. An unreachable engine is exit 4 from every command that needs one.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SSH_ALIAS, RemoteHome, SecondEngine

START = ("start", "--platform", "cpu", "--timeout", "90")


def _cycle(home: RemoteHome, **env: str) -> dict[str, Any]:
    """start, status, logs, stop at the second engine; the first engine never sees the project."""
    started = home.cli(*START, **env)
    assert started.code == 0, started.stderr
    assert len(home.on_second()) == 3 and home.home.containers() == []

    status = home.cli("status", "--json", **env)
    assert status.code == 0, status.stderr
    document = status.json()
    assert document["healthy"], document

    logs = home.cli("logs", "ollama", "--tail", "5", **env)
    assert logs.code == 0, logs.stderr
    assert logs.stdout.strip()

    stopped = home.cli("stop", **env)
    assert stopped.code == 0, stopped.stderr
    assert home.on_second() == [] and home.networks_on_second() == []
    assert home.home.containers() == [] and home.home.networks() == []
    assert home.cli("status", **env).code == 3
    return dict(document)


def test_docker_host_tcp(remote_home: RemoteHome) -> None:
    host = f"tcp://127.0.0.1:{remote_home.engine.tcp_port}"
    document = _cycle(remote_home, DOCKER_HOST=host)
    assert document["engine"] == {"host": host, "source": "DOCKER_HOST", "local": True}
    assert document["tunnel"] is None
    webui = next(s for s in document["services"] if s["name"] == "webui")
    assert webui["url"] == f"http://127.0.0.1:{remote_home.home.ports['webui']}"


def test_docker_host_tls(remote_home: RemoteHome) -> None:
    engine = remote_home.engine
    tls = {
        "DOCKER_HOST": f"tcp://127.0.0.1:{engine.tls_port}",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(engine.client_certs),
    }
    document = _cycle(remote_home, **tls)
    assert document["engine"]["host"] == tls["DOCKER_HOST"]


def test_tls_without_the_client_certificate_is_exit_4(remote_home: RemoteHome, tmp_path: Any) -> None:
    engine = remote_home.engine
    result = remote_home.cli(
        "status",
        DOCKER_HOST=f"tcp://127.0.0.1:{engine.tls_port}",
        DOCKER_TLS_VERIFY="1",
        DOCKER_CERT_PATH=str(tmp_path),  # no ca.pem, cert.pem, key.pem there
    )
    assert result.code == 4, result.stderr


def test_tls_context_and_docker_context_variable(remote_home: RemoteHome) -> None:
    document = _cycle(remote_home, DOCKER_CONTEXT="eng2-tls")
    assert document["engine"]["source"] == "context eng2-tls"


def test_ssh_context_in_use_is_a_remote_engine(remote_home: RemoteHome, second_engine: SecondEngine) -> None:
    # What a user does: `docker context use`, then plain commands, no variables.
    assert second_engine.docker("context", "use", "eng2-ssh").returncode == 0
    try:
        started = remote_home.cli(*START)
        assert started.code == 0, started.stderr
        assert "context eng2-ssh" in started.stdout + started.stderr
        assert len(remote_home.on_second()) == 3 and remote_home.home.containers() == []

        status = remote_home.cli("status", "--json")
        assert status.code == 0, status.stderr
        document = status.json()
        ports = remote_home.home.ports
        assert document["engine"] == {"host": f"ssh://{SSH_ALIAS}", "source": "context eng2-ssh", "local": False}
        assert document["healthy"], document  # read through the engine: gpu-box is not this machine to the CLI
        forwards = " ".join(f"-L {p}:127.0.0.1:{p}" for p in ports.values())  # in service order
        assert document["tunnel"] == f"ssh -N {forwards} {SSH_ALIAS}"
        assert {s["name"]: s["url"] for s in document["services"]} == {
            name: f"http://127.0.0.1:{port}" for name, port in ports.items()
        }
        table = remote_home.cli("status")
        assert "context eng2-ssh" in table.stdout and f"ssh -N {forwards} {SSH_ALIAS}" in table.stdout

        check = remote_home.cli("check", "--json")
        engine_check = next(c for c in check.json()["checks"] if c["name"] == "engine")
        assert "on another machine" in engine_check["detail"] and f"ssh://{SSH_ALIAS}" in engine_check["detail"]

        logs = remote_home.cli("logs", "webui", "--tail", "3")
        assert logs.code == 0, logs.stderr

        stopped = remote_home.cli("stop")
        assert stopped.code == 0, stopped.stderr
        assert remote_home.on_second() == [] and remote_home.networks_on_second() == []
    finally:
        second_engine.docker("context", "use", "default")


def test_port_checks_ask_the_remote_engine(remote_home: RemoteHome, second_engine: SecondEngine) -> None:
    # A container on the second engine holds WEBUI_PORT. To the CLI, gpu-box is another
    # machine, so it asks that engine (its containers' published ports), not this machine:
    # the start is refused before anything is created, naming the port and its key.
    port = remote_home.home.ports["webui"]
    holder = second_engine.client.containers.run(
        "ollama-stack-test/stub:latest", detach=True, ports={"8080/tcp": ("127.0.0.1", port)}, name=None
    )
    try:
        result = remote_home.cli(*START, DOCKER_CONTEXT="eng2-ssh")
        assert result.code == 1, result.stderr
        assert f"Port {port}" in result.stderr and "WEBUI_PORT" in result.stderr
        assert remote_home.on_second() == []
        check = remote_home.cli("check", "--json", DOCKER_CONTEXT="eng2-ssh")
        port_check = next(c for c in check.json()["checks"] if c["name"] == "port WEBUI_PORT")
        assert port_check["status"] == "fail" and "another container" in port_check["detail"]
    finally:
        holder.remove(force=True)


COMMANDS: list[tuple[str, ...]] = [
    START,
    ("stop",),
    ("restart", "--platform", "cpu"),
    ("status",),
    ("status", "--json"),
    ("logs",),
    ("logs", "webui"),
    ("check",),
    ("update", "--yes"),
    ("uninstall", "--yes"),
    ("extensions", "start", "time"),
    ("extensions", "stop", "time"),
    ("extensions", "sync"),
]


@pytest.mark.parametrize("context", ["unreachable", "unreachable-ssh"])
def test_an_unreachable_context_is_exit_4_everywhere_and_the_local_stack_runs_on(
    remote_home: RemoteHome, context: str
) -> None:
    local = remote_home.home
    started = remote_home.cli(*START, DOCKER_CONTEXT="default")
    assert started.code == 0, started.stderr
    before = sorted((c.id, c.status) for c in local.containers())

    for args in COMMANDS:
        result = remote_home.cli(*args, DOCKER_CONTEXT=context)
        assert result.code == 4, (args, result.code, result.stderr)
        assert "Traceback" not in result.stderr
    error = remote_home.cli("status", "--json", DOCKER_CONTEXT=context).json()["error"]
    assert error["code"] == "docker_unavailable" and f"context {context}" in error["message"]

    after = local.containers()
    assert sorted(c.id for c in after) == [c[0] for c in before]
    assert all(c.status == "running" for c in after)
    assert remote_home.cli("status", DOCKER_CONTEXT="default").code == 0
    assert remote_home.on_second() == []  # the reverse: a local stack leaves nothing on the second engine
