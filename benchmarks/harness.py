"""Homes, timed commands and cleanup by label for `run.py`. Standard library only."""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from start_floor import answers

REPO = Path(__file__).resolve().parents[1]
STUB_IMAGE = "ollama-stack-test/stub:latest"
STANDIN_IMAGE = "ollama-stack-test/ollama-api:current"  # bash tests/images/real/build.sh ollama-api
LABELS = ("ollama-stack.installation", "com.docker.compose.project")
# .env key of each service's host port, and the path that answers once it is up.
ENDPOINTS = (("OLLAMA_PORT", "/api/version"), ("WEBUI_PORT", "/health"), ("MCP_PROXY_PORT", "/openapi.json"))
# The homes' .env keys: compose lets the environment override --env-file, so a
# caller's shell must not point a contender somewhere else.
ENV_KEYS = {"PROJECT_NAME", "OLLAMA_IMAGE", "WEBUI_IMAGE", "MCP_PROXY_IMAGE", "BIND_ADDRESS", "OLLAMA_STACK_HOME"}
ENV_KEYS |= {key for key, _ in ENDPOINTS} | {"WEBUI_SECRET_KEY", "MCP_PROXY_API_KEY", "MCP_PROXY_CONFIG_DIR"}


class BenchError(Exception):
    """A setup or command failure: reported in one line, exit 2."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class HomeSpec:
    role: str  # the name the table's templates use: {role.home}, {role.project}, {role.env}, {role.waits}
    extensions: int = 0  # user extensions written into the home (stdio, `echo`)
    secrets: bool = False  # write what `ollama-stack start` would generate (for the start floor's compose file)
    ollama_image: str = STUB_IMAGE  # the Ollama API stand-in where models are listed


@dataclass(frozen=True)
class Cmd:
    """One contender. Templates are formatted with the group's homes and the paths in run.py, then split."""

    key: str
    label: str  # how the report shows it
    argv: str
    role: str = "info"  # "floor", "reference" or "info": the result column when no goal applies
    vs: tuple[tuple[str, float | None], ...] = ()  # (key compared with, goal ratio or None)
    after: str = ""  # run unmeasured after every run, e.g. to stop what it started
    ready: str = ""  # a home whose endpoints must answer when the command returns (checked, not timed)


@dataclass(frozen=True)
class Group:
    name: str
    cmds: tuple[Cmd, ...]  # measured interleaved, in this order, after one warm-up round
    homes: tuple[HomeSpec, ...] = ()
    setup: tuple[str, ...] = ()  # before the warm-up, not timed
    teardown: tuple[str, ...] = ()
    start_runs: bool = False  # --start-runs applies
    settle: float = 0.0  # seconds to let the engine finish an `after` before the next run


@dataclass
class Home:
    home: str  # every attribute is shell-quoted, ready for a template
    project: str
    env: str
    waits: str  # PORT/PATH of each endpoint, for start_floor.py
    endpoints: list[tuple[int, str]]
    ollama_port: str


class Bench:
    """One run: its homes, its projects (all `bench-<id>-<role>`) and the cleanup of both."""

    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.root = Path(tempfile.mkdtemp(prefix=f"ollama-stack-bench-{self.run_id}-"))
        self.projects: list[str] = []
        self.ports: set[int] = set()
        self.interrupted = False

    def free_ports(self, count: int) -> list[int]:
        socks = [socket.socket() for _ in range(count + 8)]
        try:
            for s in socks:
                s.bind(("127.0.0.1", 0))
            ports = [p for p in (s.getsockname()[1] for s in socks) if p not in self.ports][:count]
        finally:
            for s in socks:
                s.close()
        self.ports.update(ports)
        return ports

    def home(self, spec: HomeSpec) -> Home:
        """A home like a user's, on the stub image, with its own project and free ports."""
        project = f"bench-{self.run_id}-{spec.role}"
        self.projects.append(project)  # registered before anything exists, for the cleanup
        path = self.root / project
        path.mkdir(parents=True)
        ports = dict(zip((key for key, _ in ENDPOINTS), self.free_ports(3), strict=True))
        lines = [f"PROJECT_NAME={project}", f"OLLAMA_IMAGE={spec.ollama_image}", f"WEBUI_IMAGE={STUB_IMAGE}"]
        lines += [f"MCP_PROXY_IMAGE={STUB_IMAGE}"] + [f"{key}={port}" for key, port in ports.items()]
        if spec.secrets:
            (path / "mcpo").mkdir()
            (path / "mcpo" / "config.json").write_text('{"mcpServers": {}}\n')
            lines += [f"WEBUI_SECRET_KEY={uuid.uuid4().hex}", f"MCP_PROXY_API_KEY={uuid.uuid4().hex}"]
            lines += [f"MCP_PROXY_CONFIG_DIR={path / 'mcpo'}"]
        (path / ".env").write_text("\n".join(lines) + "\n")
        for i in range(spec.extensions):
            name = f"bench-ext-{i:02d}"
            mcp = {"transport": "stdio", "command": "echo", "args": []}
            doc = {"name": name, "description": f"Benchmark extension {i}", "version": "1.0.0", "mcp": mcp}
            (path / "extensions" / name).mkdir(parents=True)
            (path / "extensions" / name / "mcp-config.json").write_text(json.dumps(doc, indent=2) + "\n")
        endpoints = [(ports[key], p) for key, p in ENDPOINTS]
        q = shlex.quote
        waits = " ".join(q(f"{port}{p}") for port, p in endpoints)
        return Home(q(str(path)), q(project), q(str(path / ".env")), waits, endpoints, str(ports["OLLAMA_PORT"]))

    def run(self, argv: list[str], ok: bool = True) -> subprocess.CompletedProcess[str]:
        """Run one command in its own session, so a Ctrl-C reaches only us and we end it.

        On any interruption the command's whole process group is killed (the docker
        CLI runs compose as a child, which would otherwise keep working after we return).
        """
        env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k not in ENV_KEYS}
        proc = subprocess.Popen(
            argv, cwd=self.root, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate()
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait()
            raise
        if ok and proc.returncode:
            tail = "\n    ".join((err or out).strip().splitlines()[-6:])
            raise BenchError(f"`{shlex.join(argv)}` exited {proc.returncode}:\n    {tail}")
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def timed(self, argv: list[str]) -> float:
        """Wall-clock milliseconds from spawn to exit, output piped."""
        t0 = time.perf_counter()
        self.run(argv)
        return (time.perf_counter() - t0) * 1000

    def check_ready(self, home: Home) -> None:
        pending = [e for e in home.endpoints if not answers(*e)]
        if pending:
            raise BenchError(f"the command returned before {pending} answered")

    def cleanup(self) -> None:
        """Remove by label what the run's projects created, then the temp homes.

        Ctrl-C and SIGTERM wait meanwhile: a half-done cleanup is worse than a slow one.
        """
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.projects:
                log(f"cleanup: removing containers, networks and volumes of {len(self.projects)} bench project(s)")
            for project in self.projects:
                self.remove_project(project)
            subprocess.run(["rm", "-rf", str(self.root)], check=False)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def remove_project(self, project: str, timeout: float = 60.0) -> None:
        """Containers, then networks, then volumes with either label, until a pass finds none.

        After an interruption, two empty passes a second apart: a killed compose may
        still have had a request in flight.
        """
        empty, deadline = 0, time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = 0
            for kind, rm in (("container", ["rm", "-f"]), ("network", ["rm"]), ("volume", ["rm", "-f"])):
                ls = ["docker", kind, "ls", "-q", *(["-a"] if kind == "container" else [])]
                ids = set()
                for label in LABELS:
                    listed = self.run([*ls, "--filter", f"label={label}={project}"], ok=False)
                    ids |= set(listed.stdout.split()) if listed.returncode == 0 else {"?"}
                found += len(ids)
                if ids - {"?"}:
                    self.run(["docker", kind, *rm, *sorted(ids - {"?"})], ok=False)
            empty = empty + 1 if found == 0 else 0
            if empty >= (2 if self.interrupted else 1):
                return
            time.sleep(1.0)
        log(
            f"cleanup: {project}: leftovers after {timeout:.0f} s; remove them with\n"
            f"    docker ps -aq --filter label={LABELS[0]}={project} | xargs -r docker rm -f; "
            f"docker network prune --filter label={LABELS[0]}={project}; "
            f"docker volume ls -q --filter label={LABELS[0]}={project} | xargs -r docker volume rm"
        )
