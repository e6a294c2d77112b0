"""start / status / stop / restart against the real engine, checked in Docker itself."""

from __future__ import annotations

import os
import stat

from .conftest import LABEL, StackHome

SERVICES = {"ollama": 11434, "webui": 8080, "mcp_proxy": 8000}


def test_start_creates_a_labelled_loopback_stack(stack_home: StackHome) -> None:
    result = stack_home.cli("start", "--platform", "cpu", "--timeout", "60", "--json")

    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["running"] is True and doc["healthy"] is True
    assert {s["name"] for s in doc["services"]} == set(SERVICES)

    containers = stack_home.containers()
    assert sorted(c.labels["com.docker.compose.service"] for c in containers) == sorted(SERVICES)
    for container in containers:
        assert container.status == "running"
        assert container.labels[LABEL] == stack_home.project
        service = container.labels["com.docker.compose.service"]
        bindings = container.attrs["HostConfig"]["PortBindings"][f"{SERVICES[service]}/tcp"]
        assert bindings == [{"HostIp": "127.0.0.1", "HostPort": str(stack_home.ports[service])}]
    assert [n.attrs["Labels"][LABEL] for n in stack_home.networks()] == [stack_home.project]
    assert sorted(v.name for v in stack_home.volumes()) == sorted(
        f"{stack_home.project}_{name}" for name in ("mcp_proxy_tools", "ollama_models", "open_webui_data")
    )
    by_name = {s["name"]: s for s in doc["services"]}
    for container in containers:
        service = container.labels["com.docker.compose.service"]
        assert by_name[service]["container_id"] == container.id[:12]
        assert by_name[service]["url"] == f"http://127.0.0.1:{stack_home.ports[service]}"


def test_first_start_generates_secrets_once_and_keeps_user_keys(stack_home: StackHome) -> None:
    with (stack_home.path / ".env").open("a") as handle:
        handle.write("# my note\nMY_OWN_KEY=keep-me\n")

    first = stack_home.cli("start", "--platform", "cpu", "--timeout", "60")
    assert first.code == 0, first.stderr
    env_file = stack_home.path / ".env"
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600
    values = dict(line.split("=", 1) for line in stack_home.env_text().splitlines() if "=" in line)
    secrets = {values["WEBUI_SECRET_KEY"], values["MCP_PROXY_API_KEY"]}
    assert all(len(secret) >= 32 for secret in secrets) and len(secrets) == 2
    assert "MY_OWN_KEY=keep-me" in stack_home.env_text() and "# my note" in stack_home.env_text()

    webui = next(c for c in stack_home.containers() if c.labels["com.docker.compose.service"] == "webui")
    assert f"WEBUI_SECRET_KEY={values['WEBUI_SECRET_KEY']}" in webui.attrs["Config"]["Env"]

    again = stack_home.cli("--verbose", "restart", "--platform", "cpu", "--timeout", "60")
    verbose_status = stack_home.cli("--verbose", "status")
    assert again.code == 0, again.stderr
    assert dict(line.split("=", 1) for line in stack_home.env_text().splitlines() if "=" in line) == values
    for output in (first, again, verbose_status):
        for secret in secrets:
            assert secret not in output.stdout + output.stderr


def test_start_of_a_healthy_stack_changes_nothing(stack_running: StackHome) -> None:
    before = {c.id: c.attrs["Created"] for c in stack_running.containers()}

    result = stack_running.cli("start", "--platform", "cpu")

    assert result.code == 0, result.stderr
    assert "already running" in result.stderr
    assert {c.id: c.attrs["Created"] for c in stack_running.containers()} == before


def test_status_reports_a_running_stack(stack_running: StackHome) -> None:
    human = stack_running.cli("status")
    doc = stack_running.cli("status", "--json")

    assert human.code == 0 and doc.code == 0, human.stderr + doc.stderr
    assert "healthy" in human.stdout and stack_running.project in human.stdout
    data = doc.json()
    assert data["project"] == stack_running.project
    assert data["platform"] == "cpu"
    assert data["home"] == str(stack_running.path)
    assert all(s["state"] == "running" and s["health"] == "healthy" for s in data["services"])
    ports = {s["name"]: s["ports"] for s in data["services"]}
    assert ports["mcp_proxy"] == [
        {"host_ip": "127.0.0.1", "host_port": stack_running.ports["mcp_proxy"], "container_port": 8000}
    ]


def test_stop_removes_containers_and_network_but_keeps_volumes(stack_running: StackHome) -> None:
    volumes = sorted(v.name for v in stack_running.volumes())

    stopped = stack_running.cli("stop", "--json")

    assert stopped.code == 0, stopped.stderr
    assert stopped.json()["running"] is False
    assert stack_running.containers() == []
    assert stack_running.networks() == []
    assert sorted(v.name for v in stack_running.volumes()) == volumes and volumes

    status = stack_running.cli("status", "--json")
    assert status.code == 3
    assert status.json()["running"] is False
    assert {s["state"] for s in status.json()["services"]} == {"absent"}

    again = stack_running.cli("stop")
    assert again.code == 0, again.stderr
    assert "nothing to stop" in again.stderr


def test_status_of_a_never_started_home_creates_nothing(stack_home: StackHome) -> None:
    before = sorted(p.name for p in stack_home.path.iterdir())

    result = stack_home.cli("status")

    assert result.code == 3
    assert "not running" in result.stdout
    assert sorted(p.name for p in stack_home.path.iterdir()) == before


def test_two_installations_run_side_by_side(stack_running: StackHome, tmp_path, docker_client) -> None:
    from .conftest import make_home

    other = make_home(tmp_path / "second", docker_client)
    try:
        started = other.cli("start", "--platform", "cpu", "--timeout", "60")
        assert started.code == 0, started.stderr

        status = stack_running.cli("status", "--json").json()
        assert any(other.project in warning for warning in status["warnings"])

        assert other.cli("stop").code == 0
        assert other.containers() == []
        assert {c.status for c in stack_running.containers()} == {"running"}
        assert stack_running.cli("status").code == 0
    finally:
        other.cleanup()


def test_logs_never_show_the_generated_secrets(stack_running: StackHome) -> None:
    values = dict(line.split("=", 1) for line in stack_running.env_text().splitlines() if "=" in line)
    raw = next(c for c in stack_running.containers() if c.labels["com.docker.compose.service"] == "mcp_proxy")
    # The stub logs its argv, as servers do: the proxy's key is really in its log.
    assert values["MCP_PROXY_API_KEY"] in raw.logs().decode()

    for args in (("logs", "--tail", "all"), ("logs", "mcp_proxy"), ("--verbose", "logs", "mcp_proxy")):
        logs = stack_running.cli(*args)
        assert logs.code == 0, logs.stderr
        assert "stub: serving" in logs.stdout
        assert "--api-key ***" in logs.stdout, logs.stdout
        for key in ("WEBUI_SECRET_KEY", "MCP_PROXY_API_KEY"):
            assert values[key] not in logs.stdout + logs.stderr


def test_logs_of_one_service_and_unknown_targets(stack_running: StackHome) -> None:
    one = stack_running.cli("logs", "webui", "--tail", "5")
    typo = stack_running.cli("logs", "webiu")

    assert one.code == 0 and "webui-1" in one.stdout and "ollama-1" not in one.stdout
    assert typo.code == 2
    assert "Did you mean 'webui'?" in typo.stderr and "mcp_proxy" in typo.stderr


def test_restart_recreates_the_running_stack(stack_running: StackHome) -> None:
    before = {c.labels["com.docker.compose.service"]: c.id for c in stack_running.containers()}

    result = stack_running.cli("restart", "--platform", "cpu", "--timeout", "60", "--json")

    assert result.code == 0, result.stderr
    after = {c.labels["com.docker.compose.service"]: c for c in stack_running.containers()}
    assert sorted(after) == sorted(before)
    for service, container in after.items():
        assert container.id != before[service] and container.status == "running", service
    assert result.json()["healthy"] is True
