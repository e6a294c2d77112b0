"""Remote-engine tier: a second real dockerd, reached over tcp, TLS and ssh, and docker contexts.

Session fixtures start, on loopback only and under a temp dir:

- a second `dockerd` (own data root, exec root, pid file, unix socket, and its OWN
  bridge, created first: never `--bridge none`, which deletes the host's docker0),
  listening with TLS on a tcp port (certificates made here with openssl), plus a
  plain-tcp forwarder to its socket;
- an `sshd` (Debian's openssh-server) on a loopback port, with generated keys, whose
  sessions reach the second engine (`SetEnv DOCKER_HOST`), and an `ssh` wrapper on
  PATH that gives the client its own config: the host alias `gpu-box`;
- a DOCKER_CONFIG with contexts for them (and the compose plugin linked into it).

Everything is stopped, and the bridge removed, on every path. Required in CI (fail,
never skip) like the integration tier.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tiers_required
from tests.integration.conftest import STUB_IMAGE, StackHome, docker_client, make_home

__all__ = ["docker_client"]  # the first engine's session fixture, shared with the integration tier

SSH_ALIAS = "gpu-box"
ADDRESS_POOL = "base=10.251.0.0/16,size=24"


def _missing(what: str) -> None:
    if tiers_required():
        pytest.fail(f"{what} (the remote-engine tier is required here)")
    pytest.skip(what)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(what: str, ready: Any, proc: subprocess.Popen[bytes], log: Path, attempts: int = 300) -> None:
    """Poll until `ready()`; fail with the log when the process died or never got there."""
    for _ in range(attempts):
        if ready():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up; log tail:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(folder: Path) -> tuple[Path, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate: (server dir, client dir)."""
    server, client = folder / "server", folder / "client"
    server.mkdir(parents=True)
    client.mkdir()
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
             "-keyout", "ca-key.pem", "-out", "ca.pem", cwd=folder)  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (folder / f"{name}.ext").write_text(ext)
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                 "-keyout", f"{name}/key.pem", "-out", f"{name}.csr", cwd=folder)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                 "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}/cert.pem", cwd=folder)  # fmt: skip
        shutil.copy(folder / "ca.pem", folder / name / "ca.pem")
    return server, client


class TcpForwarder:
    """A plain-tcp endpoint on loopback that forwards every connection to a unix socket."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = int(self.listener.getsockname()[1])
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            try:
                upstream.connect(self.socket_path)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.closed = True
        self.listener.close()


@dataclass
class SecondEngine:
    """The second dockerd and the ways to reach it."""

    root: Path
    socket_path: str
    tcp_port: int
    tls_port: int
    client_certs: Path
    ssh_port: int
    ssh_bin: Path  # holds the `ssh` wrapper; put it first on PATH
    docker_config: Path
    client: Any = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def path_env(self) -> str:
        return f"{self.ssh_bin}{os.pathsep}{os.environ.get('PATH', '')}"

    def env(self, **values: str) -> dict[str, str]:
        """The environment of a user of this machine: own docker config, the ssh wrapper, no engine variables."""
        base = {"DOCKER_HOST": "", "DOCKER_CONTEXT": "", "DOCKER_TLS_VERIFY": "", "DOCKER_CERT_PATH": ""}
        return {**base, "DOCKER_CONFIG": str(self.docker_config), "PATH": self.path_env, **values}

    def docker(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, **self.env(**env)}
        return subprocess.run(["docker", *args], env=full_env, capture_output=True, text=True, timeout=300, check=False)


def _bridge(name: str) -> str:
    """Create the engine's own bridge on a /24 no interface of this machine uses yet.

    Addresses come from 10.250.0.0/16 (and the engine's networks from ADDRESS_POOL),
    outside the first engine's default pools (172.17-31.x, 192.168.x): a network the
    first engine creates meanwhile can never overlap them.
    """
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True).stdout
    for third in range(1, 255):
        if f" 10.250.{third}." not in used:
            subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
            subprocess.run(["ip", "addr", "add", f"10.250.{third}.1/24", "dev", name], check=True)
            subprocess.run(["ip", "link", "set", name, "up"], check=True)
            return f"10.250.{third}.1/24"
    raise RuntimeError("no free 10.250.x.0/24 for the second engine's bridge")


def _start_dockerd(engine: SecondEngine, bridge: str, server_certs: Path) -> None:
    log = engine.root / "dockerd.log"
    proc = subprocess.Popen(
        ["dockerd", "--host", f"unix://{engine.socket_path}", "--host", f"tcp://127.0.0.1:{engine.tls_port}",
         "--tlsverify", "--tlscacert", str(server_certs / "ca.pem"), "--tlscert", str(server_certs / "cert.pem"),
         "--tlskey", str(server_certs / "key.pem"),
         "--data-root", str(engine.root / "data"), "--exec-root", str(engine.root / "exec"),
         "--pidfile", str(engine.root / "docker.pid"), "--bridge", bridge, "--iptables=false", "--ip-masq=false",
         "--default-address-pool", ADDRESS_POOL],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    engine.procs.append(proc)
    import docker

    def ready() -> bool:
        try:
            client = docker.DockerClient(base_url=f"unix://{engine.socket_path}")
            client.ping()
        except Exception:  # noqa: BLE001 - not up yet
            return False
        engine.client = client
        return True

    _wait_for("the second dockerd", ready, proc, log)


def _start_sshd(engine: SecondEngine) -> None:
    ssh_dir = engine.root / "ssh"
    ssh_dir.mkdir()
    for key in ("host_key", "id"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh_dir / key)], check=True)
    (ssh_dir / "authorized_keys").write_text((ssh_dir / "id.pub").read_text())
    config = ssh_dir / "sshd_config"
    config.write_text(
        f"Port {engine.ssh_port}\nListenAddress 127.0.0.1\nHostKey {ssh_dir / 'host_key'}\n"
        f"PidFile {ssh_dir / 'sshd.pid'}\nAuthorizedKeysFile {ssh_dir / 'authorized_keys'}\n"
        "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        f"SetEnv DOCKER_HOST=unix://{engine.socket_path}\n"
    )
    client_config = ssh_dir / "ssh_config"
    client_config.write_text(
        f"Host {SSH_ALIAS}\n  HostName 127.0.0.1\n  Port {engine.ssh_port}\n  User root\n"
        f"Host *\n  IdentityFile {ssh_dir / 'id'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {ssh_dir / 'known_hosts'}\n  StrictHostKeyChecking accept-new\n  BatchMode yes\n"
        "  ConnectTimeout 10\n  LogLevel ERROR\n"
    )
    engine.ssh_bin.mkdir()
    wrapper = engine.ssh_bin / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("ssh")} -F {client_config} "$@"\n')
    wrapper.chmod(0o755)
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    log = ssh_dir / "sshd.log"
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"

    def ready() -> bool:
        probe = subprocess.run(
            [str(wrapper), SSH_ALIAS, "docker", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            check=False,
        )
        return probe.returncode == 0

    for attempt in range(5):  # a free port can be taken by someone else before sshd binds it
        if attempt:
            engine.ssh_port = _free_port()
            for path in (config, client_config):
                path.write_text(re.sub(r"Port \d+", f"Port {engine.ssh_port}", path.read_text()))
        proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        engine.procs.append(proc)
        try:
            _wait_for("sshd", ready, proc, log, attempts=100)
            return
        except RuntimeError:
            if "Address already in use" not in log.read_text(errors="replace"):
                raise
            _stop(proc)
    raise RuntimeError("sshd found no free loopback port in 5 attempts")


def _contexts(engine: SecondEngine) -> None:
    engine.docker_config.mkdir()
    plugins = engine.docker_config / "cli-plugins"
    plugins.mkdir()
    import sysconfig

    compose = Path(sysconfig.get_paths()["purelib"]) / "compose" / "docker-compose"
    if not compose.exists():
        compose = Path(shutil.which("docker-compose") or Path.home() / ".docker/cli-plugins/docker-compose")
    (plugins / "docker-compose").symlink_to(compose.resolve())
    certs = engine.client_certs
    for name, host in (
        ("eng2-ssh", f"ssh://{SSH_ALIAS}"),
        ("eng2-tcp", f"tcp://127.0.0.1:{engine.tcp_port}"),
        ("eng2-tls", f"tcp://127.0.0.1:{engine.tls_port},ca={certs}/ca.pem,cert={certs}/cert.pem,key={certs}/key.pem"),
        ("unreachable", "tcp://127.0.0.1:9"),
        ("unreachable-ssh", f"ssh://root@127.0.0.1:{_free_port()}"),
    ):
        result = engine.docker("context", "create", name, "--docker", f"host={host}")
        assert result.returncode == 0, result.stderr


@pytest.fixture(scope="session")
def second_engine(docker_client: Any) -> Iterator[SecondEngine]:
    for tool in ("dockerd", "sshd", "ssh", "openssl", "ip"):
        if not (shutil.which(tool) or (tool == "sshd" and Path("/usr/sbin/sshd").exists())):
            _missing(f"`{tool}` is not installed")
    root = Path(tempfile.mkdtemp(prefix="os-eng2-"))
    bridge = f"osb{secrets.token_hex(3)}"
    server_certs, client_certs = make_certs(root / "certs")
    engine = SecondEngine(
        root=root,
        socket_path=str(root / "docker.sock"),
        tcp_port=0,
        tls_port=_free_port(),
        client_certs=client_certs,
        ssh_port=_free_port(),
        ssh_bin=root / "bin",
        docker_config=root / "docker-config",
    )
    forwarder = None
    bridge_made = False
    try:
        _bridge(bridge)
        bridge_made = True
        _start_dockerd(engine, bridge, server_certs)
        forwarder = TcpForwarder(engine.socket_path)
        engine.tcp_port = forwarder.port
        saved = subprocess.Popen(["docker", "save", STUB_IMAGE], stdout=subprocess.PIPE)
        loaded = subprocess.run(
            ["docker", "-H", f"unix://{engine.socket_path}", "load"],
            stdin=saved.stdout,
            capture_output=True,
            check=False,
        )
        saved.wait()
        assert loaded.returncode == 0, loaded.stderr
        _start_sshd(engine)
        _contexts(engine)
        yield engine
    finally:
        if forwarder is not None:
            forwarder.close()
        if engine.client is not None:
            for container in engine.client.containers.list(all=True):
                container.remove(force=True)
        for proc in reversed(engine.procs):
            _stop(proc)
        if bridge_made:
            subprocess.run(["ip", "link", "del", bridge], check=False)
        subprocess.run(["umount", "-R", str(root / "exec")], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


@dataclass
class RemoteHome:
    """A home whose CLI runs as a user with the second engine's contexts and ssh config."""

    home: StackHome
    engine: SecondEngine

    def cli(self, *args: str, **env: str) -> Any:
        return self.home.cli(*args, env=self.engine.env(**env))

    def on_second(self) -> list[Any]:
        return self.engine.client.containers.list(
            all=True, filters={"label": f"ollama-stack.installation={self.project}"}
        )

    def networks_on_second(self) -> list[Any]:
        return self.engine.client.networks.list(filters={"label": f"ollama-stack.installation={self.project}"})

    def volumes_on_second(self) -> list[Any]:
        return self.engine.client.volumes.list(filters={"label": f"ollama-stack.installation={self.project}"})

    @property
    def project(self) -> str:
        return self.home.project


@pytest.fixture
def remote_home(tmp_path: Path, docker_client: Any, second_engine: SecondEngine) -> Iterator[RemoteHome]:
    home = make_home(tmp_path, docker_client)
    yield RemoteHome(home, second_engine)
    # The stack's containers, backup/restore helpers a failed command left, and the tests' probes.
    for label in ("ollama-stack.installation", "ollama-stack.helper", "ostest.remote-probe"):
        for container in second_engine.client.containers.list(all=True, filters={"label": f"{label}={home.project}"}):
            container.remove(force=True)
    for network in second_engine.client.networks.list(filters={"label": f"ollama-stack.installation={home.project}"}):
        network.remove()
    for volume in second_engine.client.volumes.list(filters={"label": f"ollama-stack.installation={home.project}"}):
        volume.remove(force=True)
    home.cleanup()
