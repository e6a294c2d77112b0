#!/usr/bin/env python3
"""Benchmark `ollama-stack` against the floors of SPEC 9, side by side in one run.

    .venv/bin/python benchmarks/run.py [--runs N] [--start-runs N] [--quick]
                                       [--only help,status,start] [--json | --markdown]

Every measured command is a fresh process started from here and timed wall-clock
(spawn to exit), the way a user or a script pays for it. Contenders of one group
are interleaved (A, B, A, B, ...) so drift on the machine hits all of them alike.
The stacks run the stub image (`bash tests/images/build.sh`), so nothing is pulled.

Everything the run creates is labelled `ollama-stack.installation=bench-<id>-*`
and removed by that label at the end, also on Ctrl-C or SIGTERM.

Uses only the standard library plus the docker SDK that the dev venv already has.
Progress goes to stderr; the report (text, --json or --markdown) to stdout.
Exit status: 0 run completed (whatever the verdicts; --strict: 1 when a goal
FAILs), 2 setup error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from probe import POLL_INTERVAL, poll, probe

REPO = Path(__file__).resolve().parents[1]
FLOOR = REPO / "benchmarks" / "floor.py"
COMPOSE_FILE = REPO / "docker-compose.yml"
STUB_IMAGE = "ollama-stack-test/stub:latest"
LABEL = "ollama-stack.installation"
COMPOSE_LABEL = "com.docker.compose.project"
GOAL = 1.2
START_TIMEOUT = 180.0
EXTENSIONS = 20
# (service, .env key of its host port, path that answers when it is up)
ENDPOINTS = (
    ("ollama", "OLLAMA_PORT", "/api/version"),
    ("webui", "WEBUI_PORT", "/health"),
    ("mcp_proxy", "MCP_PROXY_PORT", "/openapi.json"),
)
# Keys of the homes' .env: never inherited from the caller's shell (compose lets the
# environment override --env-file, which would point a contender somewhere else).
ENV_KEYS = {
    "PROJECT_NAME",
    "OLLAMA_IMAGE",
    "WEBUI_IMAGE",
    "MCP_PROXY_IMAGE",
    "OLLAMA_PORT",
    "WEBUI_PORT",
    "MCP_PROXY_PORT",
    "BIND_ADDRESS",
    "WEBUI_SECRET_KEY",
    "MCP_PROXY_API_KEY",
    "MCP_PROXY_CONFIG_DIR",
}
GROUPS = ("help", "status", "start")


class BenchError(Exception):
    """A setup or command failure: reported in one line, exit 2."""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def find_cli() -> Path:
    for candidate in (Path(sys.executable).parent / "ollama-stack", REPO / ".venv" / "bin" / "ollama-stack"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise BenchError(
        "The ollama-stack console script was not found; run this with the dev venv's python "
        "(.venv/bin/python benchmarks/run.py) after `pip install -e .`."
    )


def child_env() -> dict[str, str]:
    """The caller's environment without anything that could redirect a contender."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COMPOSE_") and k not in ENV_KEYS and k != "OLLAMA_STACK_HOME"
    }


# --- homes -------------------------------------------------------------------


class PortPool:
    """Distinct free ports for every home of the run (the engine binds them later)."""

    def __init__(self) -> None:
        self.used: set[int] = set()

    def take(self, count: int) -> list[int]:
        ports: list[int] = []
        socks = []
        try:
            while len(ports) < count:
                sock = socket.socket()
                sock.bind(("127.0.0.1", 0))
                socks.append(sock)
                port = sock.getsockname()[1]
                if port not in self.used:
                    self.used.add(port)
                    ports.append(port)
            return ports
        finally:
            for sock in socks:
                sock.close()


@dataclass
class Home:
    path: Path
    project: str
    ports: dict[str, int]
    extensions: int = 0

    def endpoints(self) -> list[tuple[int, str]]:
        return [(self.ports[key], path) for _, key, path in ENDPOINTS]


def write_home(root: Path, project: str, pool: PortPool, *, floor: bool = False, extensions: int = 0) -> Home:
    """A home like a user's, pointed at the stub image, with its own project and ports."""
    path = root / project
    path.mkdir(parents=True)
    ports = dict(zip((key for _, key, _ in ENDPOINTS), pool.take(3), strict=True))
    lines = [
        f"PROJECT_NAME={project}",
        f"OLLAMA_IMAGE={STUB_IMAGE}",
        f"WEBUI_IMAGE={STUB_IMAGE}",
        f"MCP_PROXY_IMAGE={STUB_IMAGE}",
    ] + [f"{key}={port}" for key, port in ports.items()]
    if floor:
        # The compose file requires these; `ollama-stack start` generates them for its own homes.
        config_dir = path / "mcpo"
        config_dir.mkdir()
        (config_dir / "config.json").write_text('{"mcpServers": {}}\n')
        lines += [
            f"WEBUI_SECRET_KEY={uuid.uuid4().hex}",
            f"MCP_PROXY_API_KEY={uuid.uuid4().hex}",
            f"MCP_PROXY_CONFIG_DIR={config_dir}",
        ]
    (path / ".env").write_text("\n".join(lines) + "\n")
    for i in range(extensions):
        name = f"bench-ext-{i:02d}"
        ext_dir = path / "extensions" / name
        ext_dir.mkdir(parents=True)
        doc = {
            "name": name,
            "description": f"Benchmark extension {i}",
            "version": "1.0.0",
            "mcp": {"transport": "stdio", "command": "echo", "args": []},
        }
        (ext_dir / "mcp-config.json").write_text(json.dumps(doc, indent=2) + "\n")
    return Home(path=path, project=project, ports=ports, extensions=extensions)


# --- measuring ---------------------------------------------------------------


def run_cmd(cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """Run one command in its own session, so a Ctrl-C reaches only us and we end it.

    On any interruption the command's whole process group is killed (the docker CLI
    runs compose as a child, which would otherwise keep working after we return);
    what it had created is removed by label in the cleanup.
    """
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate()
    except BaseException:
        kill_group(proc)
        raise
    if proc.returncode not in ok:
        tail = (stderr or stdout).strip().splitlines()[-6:]
        raise BenchError(f"`{' '.join(map(str, cmd))}` exited {proc.returncode}:\n    " + "\n    ".join(tail))
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def wait_endpoints(targets: list[tuple[int, str]], timeout: float = START_TIMEOUT) -> None:
    pending = poll(targets, timeout)
    if pending:
        raise BenchError(f"endpoints never answered: {pending}")


@dataclass
class Contender:
    """One measured thing: `measure()` returns milliseconds; `after()` runs unmeasured."""

    key: str
    label: str  # how the report shows it
    group: str
    measure: Callable[[], float]
    after: Callable[[], None] | None = None
    samples: list[float] = field(default_factory=list)


def timed_cmd(cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> Callable[[], float]:
    def measure() -> float:
        t0 = time.perf_counter()
        run_cmd(cmd, cwd, ok)
        return (time.perf_counter() - t0) * 1000

    return measure


def run_group(name: str, contenders: list[Contender], runs: int, warmup: int = 1) -> None:
    """Warm up each contender, then A, B, A, B, ... `runs` rounds."""
    if warmup:
        log(f"[{name}] warm-up ({warmup} round{'s' if warmup != 1 else ''}, not counted)")
    for _ in range(warmup):
        for c in contenders:
            c.measure()
            if c.after:
                c.after()
    for i in range(runs):
        for c in contenders:
            c.samples.append(c.measure())
            if c.after:
                c.after()
        line = "  ".join(f"{c.key}={c.samples[-1]:.0f}" for c in contenders)
        log(f"[{name}] round {i + 1}/{runs}: {line} (ms)")


# --- the benchmark -----------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = uuid.uuid4().hex[:8]
        self.root = Path(tempfile.mkdtemp(prefix=f"ollama-stack-bench-{self.run_id}-"))
        self.projects: list[str] = []
        self.pool = PortPool()
        self.cli = str(find_cli())
        self.py = sys.executable
        self.docker = shutil.which("docker") or "docker"
        self.contenders: dict[str, Contender] = {}
        self.client: Any = None
        self.interrupted = False

    # setup ------------------------------------------------------------------

    def preflight(self) -> None:
        try:
            import docker  # type: ignore[import-untyped]
        except ImportError as exc:
            raise BenchError("The docker SDK is missing: run this with the dev venv (.venv/bin/python).") from exc
        try:
            self.client = docker.from_env()
            self.client.ping()
        except Exception as exc:  # noqa: BLE001 - any failure means "no engine"
            raise BenchError(f"The Docker engine is not reachable: {exc}") from exc
        try:
            self.client.images.get(STUB_IMAGE)
        except docker.errors.ImageNotFound:
            raise BenchError(
                f"The stub image {STUB_IMAGE} is missing. Build it first:\n    bash {REPO / 'tests/images/build.sh'}"
            ) from None
        run_cmd([self.docker, "compose", "version"], self.root)
        self.compile_package()

    def compile_package(self) -> None:
        """Byte-compile the CLI's sources, as `pip install` does for a user's install.

        The dev venv installs the package editable, and where PYTHONDONTWRITEBYTECODE
        is set (as on the CI machines) Python never caches its bytecode: every run
        would recompile ~4000 lines, a cost no installed copy pays.
        """
        import compileall

        import ollama_stack_cli

        package = Path(ollama_stack_cli.__file__).parent
        if not compileall.compile_dir(str(package), quiet=1):
            raise BenchError(f"Could not byte-compile {package}.")

    def home(self, role: str, **kwargs: Any) -> Home:
        project = f"bench-{self.run_id}-{role}"
        self.projects.append(project)  # registered before anything exists, for cleanup
        return write_home(self.root, project, self.pool, **kwargs)

    def add(self, c: Contender) -> Contender:
        self.contenders[c.key] = c
        return c

    def ostack(self, home: Home, *args: str) -> list[str]:
        return [self.cli, "--home", str(home.path), *args]

    def compose(self, home: Home, *args: str) -> list[str]:
        return [
            self.docker,
            "compose",
            "--project-name",
            home.project,
            "--env-file",
            str(home.path / ".env"),
            "-f",
            str(COMPOSE_FILE),
            *args,
        ]

    # groups -----------------------------------------------------------------

    def bench_help(self, runs: int) -> None:
        cwd = self.root
        group = [
            self.add(Contender("cli_help", "`ollama-stack --help`", "help", timed_cmd([self.cli, "--help"], cwd))),
            self.add(
                Contender("floor_help", "floor `--help`", "help", timed_cmd([self.py, str(FLOOR), "--help"], cwd))
            ),
            self.add(
                Contender(
                    "python", "`python -c pass` (interpreter start)", "help", timed_cmd([self.py, "-c", "pass"], cwd)
                )
            ),
        ]
        run_group("help", group, runs)

    def bench_status(self, runs: int) -> None:
        cwd = self.root
        h0 = self.home("s0")
        h20 = self.home("s20", extensions=EXTENSIONS)
        for h in (h0, h20):
            log(f"[status] starting {h.project} ({h.extensions} extensions) with ollama-stack (not counted)")
            run_cmd(self.ostack(h, "start", "--platform", "cpu", "--timeout", str(int(START_TIMEOUT))), cwd)
            doc = json.loads(run_cmd(self.ostack(h, "status", "--json"), cwd).stdout)
            if not doc.get("healthy"):
                raise BenchError(f"{h.project} is not healthy after start: {doc}")
        group = [
            self.add(
                Contender(
                    "cli_status0",
                    "`ollama-stack status --json` (0 extensions)",
                    "status",
                    timed_cmd(self.ostack(h0, "status", "--json"), cwd),
                )
            ),
            self.add(
                Contender(
                    "floor_status0",
                    "floor `status` (0-extension stack)",
                    "status",
                    timed_cmd([self.py, str(FLOOR), "status", "--project", h0.project], cwd),
                )
            ),
            self.add(
                Contender(
                    "cli_status20",
                    f"`ollama-stack status --json` ({EXTENSIONS} extensions)",
                    "status",
                    timed_cmd(self.ostack(h20, "status", "--json"), cwd),
                )
            ),
            self.add(
                Contender(
                    "floor_status20",
                    f"floor `status` ({EXTENSIONS}-extension stack)",
                    "status",
                    timed_cmd([self.py, str(FLOOR), "status", "--project", h20.project], cwd),
                )
            ),
            self.add(
                Contender(
                    "compose_ps",
                    "`docker compose -p P ps --format json`",
                    "status",
                    timed_cmd([self.docker, "compose", "-p", h0.project, "ps", "--format", "json"], cwd),
                )
            ),
            self.add(
                Contender(
                    "cli_status_table",
                    "`ollama-stack status` (table)",
                    "status",
                    timed_cmd(self.ostack(h0, "status"), cwd),
                )
            ),
        ]
        run_group("status", group, runs)
        for h in (h0, h20):
            log(f"[status] stopping {h.project} (not counted)")
            run_cmd(self.ostack(h, "stop"), cwd)

    def bench_start(self, runs: int) -> None:
        cwd = self.root
        hc = self.home("start")
        hf = self.home("floor", floor=True)
        ht = self.home("typerfloor", floor=True)
        settle = 0.5  # let the engine finish tearing down before the next start

        cli_stop = self.add(
            Contender("cli_stop", "`ollama-stack stop`", "stop", timed_cmd(self.ostack(hc, "stop"), cwd))
        )
        compose_down = self.add(
            Contender(
                "compose_down",
                "`docker compose down`",
                "stop",
                timed_cmd(self.compose(hf, "down", "--timeout", "10"), cwd),
            )
        )
        recording = {"on": False}

        def stop_cli() -> None:
            ms = cli_stop.measure()
            if recording["on"]:
                cli_stop.samples.append(ms)
            time.sleep(settle)

        def down_floor() -> None:
            ms = compose_down.measure()
            if recording["on"]:
                compose_down.samples.append(ms)
            time.sleep(settle)

        def down_floor_unrecorded() -> None:
            compose_down.measure()
            time.sleep(settle)

        def down_typer_floor() -> None:
            run_cmd(self.compose(ht, "down", "--timeout", "10"), cwd)
            time.sleep(settle)

        up = self.compose(hf, "up", "-d")
        endpoints = hf.endpoints()

        def floor_start() -> float:
            t0 = time.perf_counter()
            run_cmd(up, cwd)
            wait_endpoints(endpoints)
            return (time.perf_counter() - t0) * 1000

        def cli_start() -> float:
            t0 = time.perf_counter()
            run_cmd(self.ostack(hc, "start", "--platform", "cpu", "--timeout", str(int(START_TIMEOUT))), cwd)
            ms = (time.perf_counter() - t0) * 1000
            # The CLI says it is ready; make sure it really is (not counted).
            pending = [t for t in hc.endpoints() if not probe(*t)]
            if pending:
                raise BenchError(f"ollama-stack start returned before {pending} answered")
            return ms

        typer_floor = [self.py, str(FLOOR), "start", "--project", ht.project, "--env-file", str(ht.path / ".env")]
        typer_floor += ["--file", str(COMPOSE_FILE)]
        for port, path in ht.endpoints():
            typer_floor += ["--wait", f"{port}{path}"]

        group = [
            self.add(Contender("cli_start", "`ollama-stack start` to healthy", "start", cli_start, stop_cli)),
            self.add(
                Contender("floor_start", "`docker compose up -d` + poll every 50 ms", "start", floor_start, down_floor)
            ),
            self.add(
                Contender(
                    "typer_floor_start",
                    "floor `start` (the same, in a minimal Typer app)",
                    "start",
                    timed_cmd(typer_floor, cwd),
                    down_typer_floor,
                )
            ),
        ]
        if not self.args.quick:
            group.append(
                self.add(
                    Contender(
                        "compose_wait",
                        "`docker compose up -d --wait`",
                        "start",
                        timed_cmd(self.compose(hf, "up", "-d", "--wait"), cwd),
                        down_floor_unrecorded,
                    )
                )
            )
        # Warm-up: first start creates volumes (and the CLI home's secrets); both keep
        # volumes afterwards, so every measured start is "from stopped, volumes kept".
        log("[start] warm-up (first start of each project, not counted)")
        for c in group[:3]:
            c.measure()
            c.after()  # type: ignore[misc]
        recording["on"] = True
        run_group("start", group, runs, warmup=0)

    # cleanup ----------------------------------------------------------------

    def cleanup(self) -> None:
        """Remove by label everything the run's projects created, then the temp homes."""
        # A half-done cleanup is worse than a slow one: Ctrl-C and SIGTERM wait meanwhile.
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.client is not None and self.projects:
                log(f"cleanup: removing containers, networks and volumes of {len(self.projects)} bench project(s)")
                for project in self.projects:
                    self._remove_project(project)
            shutil.rmtree(self.root, ignore_errors=True)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _remove_project(self, project: str, timeout: float = 60.0) -> None:
        """Remove the project's containers, then networks, then volumes, until none is left.

        Passes repeat while anything remains (a removal the engine is still finishing
        answers 409; a killed compose may have left a request in flight). After an
        interruption the project counts as clean only after two empty passes a second apart.
        """
        import docker.errors  # type: ignore[import-untyped]

        filters = [{"label": f"{LABEL}={project}"}, {"label": f"{COMPOSE_LABEL}={project}"}]
        deadline = time.monotonic() + timeout
        empty_passes = 0
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            found = 0
            for kind in ("containers", "networks", "volumes"):
                seen = set()
                for f in filters:
                    try:
                        if kind == "containers":
                            items = self.client.containers.list(all=True, filters=f, sparse=True)
                        else:
                            items = getattr(self.client, kind).list(filters=f)
                    except docker.errors.DockerException as exc:
                        last_error = exc
                        found += 1
                        continue
                    for item in items:
                        if item.id in seen:
                            continue
                        seen.add(item.id)
                        found += 1
                        try:
                            if kind == "networks":
                                item.remove()
                            else:
                                item.remove(force=True)
                        except docker.errors.NotFound:
                            pass
                        except docker.errors.DockerException as exc:
                            last_error = exc
            empty_passes = empty_passes + 1 if found == 0 else 0
            if empty_passes >= (2 if self.interrupted else 1):
                return
            time.sleep(1.0)
        log(
            f"cleanup: {project}: leftovers after {timeout:.0f} s ({last_error}); remove them with\n"
            f"    docker ps -aq --filter label={LABEL}={project} | xargs -r docker rm -f; "
            f"docker network prune --filter label={LABEL}={project}; "
            f"docker volume ls -q --filter label={LABEL}={project} | xargs -r docker volume rm"
        )


# --- report ------------------------------------------------------------------


@dataclass
class Row:
    key: str
    label: str
    group: str
    samples: list[float]
    vs: str | None = None  # key of the row this one is compared with
    vs_label: str | None = None
    ratio: float | None = None  # median / baseline median: the verdict
    goal: float | None = None
    result: str = "info"  # PASS, FAIL, info, floor, reference
    min_ratio: float | None = None  # min / baseline min: less sensitive to a busy machine

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def minimum(self) -> float:
        return min(self.samples)

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "command": self.label,
            "group": self.group,
            "runs": len(self.samples),
            "median_ms": round(self.median, 1),
            "min_ms": round(self.minimum, 1),
            "max_ms": round(max(self.samples), 1),
            "samples_ms": [round(s, 1) for s in self.samples],
            "vs": self.vs,
            "vs_command": self.vs_label,
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "min_ratio": None if self.min_ratio is None else round(self.min_ratio, 3),
            "goal": self.goal,
            "result": self.result,
        }


# (contender, baseline, goal or None). Rows are printed in this order; contenders
# that are only baselines are listed by PLAIN below.
COMPARISONS: list[tuple[str, str, float | None]] = [
    ("cli_help", "floor_help", GOAL),
    ("cli_status0", "floor_status0", GOAL),
    ("cli_status0", "compose_ps", None),
    ("cli_status20", "floor_status20", GOAL),
    ("cli_status20", "cli_status0", None),
    ("cli_status_table", "floor_status0", None),
    ("floor_status20", "floor_status0", None),  # same work twice: shows the run's noise
    ("cli_start", "floor_start", GOAL),
    ("cli_start", "typer_floor_start", None),
    ("cli_start", "compose_wait", None),
    ("typer_floor_start", "floor_start", None),  # what a Typer process costs before any work
    ("cli_stop", "compose_down", None),
]
PLAIN = {
    "floor_help": "floor",
    "python": "reference",
    "floor_status0": "floor",
    "floor_status20": "floor",
    "compose_ps": "reference",
    "floor_start": "floor",
    "typer_floor_start": "info",
    "compose_wait": "reference",
    "compose_down": "reference",
}
ORDER = [
    "cli_help",
    "floor_help",
    "python",
    "cli_status0",
    "cli_status20",
    "cli_status_table",
    "floor_status0",
    "floor_status20",
    "compose_ps",
    "cli_start",
    "floor_start",
    "typer_floor_start",
    "compose_wait",
    "cli_stop",
    "compose_down",
]


def build_rows(contenders: dict[str, Contender]) -> list[Row]:
    done = {k: c for k, c in contenders.items() if c.samples}
    rows: list[Row] = []
    for key in ORDER:
        if key not in done:
            continue
        c = done[key]
        compared = [(b, g) for a, b, g in COMPARISONS if a == key and b in done]
        for base, goal in compared:
            ratio = statistics.median(c.samples) / statistics.median(done[base].samples)
            result = PLAIN.get(key, "info") if goal is None else ("PASS" if ratio <= goal else "FAIL")
            min_ratio = min(c.samples) / min(done[base].samples)
            rows.append(Row(key, c.label, c.group, c.samples, base, done[base].label, ratio, goal, result, min_ratio))
        if not compared:
            rows.append(Row(key, c.label, c.group, c.samples, result=PLAIN.get(key, "info")))
    return rows


def machine_info(client: Any) -> dict[str, Any]:
    from importlib import metadata

    def cpu_model() -> str:
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.processor() or "unknown"

    def mem_total() -> str:
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
        except OSError:
            pass
        return "unknown"

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False)
            return out.stdout.strip()
        except OSError:
            return ""

    versions: dict[str, str | None] = {}
    for dist in ("ollama-stack", "typer", "docker", "pydantic", "rich"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    try:
        server = client.version()
        docker_version = f"{server.get('Version')} (API {server.get('ApiVersion')})"
    except Exception:  # noqa: BLE001
        docker_version = "unknown"
    compose = subprocess.run(
        ["docker", "compose", "version", "--short"], capture_output=True, text=True, check=False
    ).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--", "ollama_stack_cli"))
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory": mem_total(),
        "kernel": f"{platform.system()} {platform.release()}",
        "loadavg": loadavg(),
        "loadavg_end": None,
        "docker_server": docker_version,
        "docker_compose": compose,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": versions,
        "commit": commit + ("-dirty" if dirty else "") if commit else None,
    }


def loadavg() -> str | None:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else None


def busy_warning() -> str | None:
    """Say so when other work competes for the CPUs: ratios then carry that noise."""
    if not hasattr(os, "getloadavg"):
        return None
    load1 = os.getloadavg()[0]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if load1 > 0.5 * cpus:
        return (
            f"warning: 1-minute load is {load1:.2f} on {cpus} CPU(s); other work competes with the "
            "benchmark, so expect noisy medians (compare the min ratio too, or rerun on a quiet machine)"
        )
    return None


def machine_line(m: dict[str, Any]) -> str:
    pk = m["packages"]
    return (
        f"{m['cpu_model']}, {m['nproc']} CPUs ({m['cpus_usable']} usable), {m['memory']}; {m['kernel']}; "
        f"Docker {m['docker_server']}, compose {m['docker_compose']}; {m['python']}; "
        f"typer {pk['typer']}, docker SDK {pk['docker']}, pydantic {pk['pydantic']}, rich {pk['rich']}; "
        f"ollama-stack {pk['ollama-stack']} @ {m['commit']}; load {m['loadavg']} at start"
        + (f", {m['loadavg_end']} at end" if m.get("loadavg_end") else "")
        + f"; {m['date']}"
    )


def fmt_ratio(value: float | None, goal: float | None = None) -> str:
    if value is None:
        return ""
    text = f"{value:.2f}x"
    if goal is not None and (round(value, 2) <= goal) != (value <= goal):
        text = f"{value:.3f}x"  # two decimals would hide which side of the goal it is
    return text


def fmt_goal(row: Row) -> str:
    return "" if row.goal is None else f"<= {row.goal}x"


def render_text(rows: list[Row], m: dict[str, Any], settings: dict[str, Any]) -> str:
    headers = ["command", "runs", "median ms", "min ms", "vs", "ratio", "goal", "result", "min ratio"]
    table = [
        [
            r.label.replace("`", ""),
            str(len(r.samples)),
            f"{r.median:.0f}",
            f"{r.minimum:.0f}",
            (r.vs_label or "").replace("`", ""),
            fmt_ratio(r.ratio, r.goal),
            fmt_goal(r),
            r.result,
            fmt_ratio(r.min_ratio),
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(headers)]
    numeric = {1, 2, 3, 5, 8}

    def line(cells: list[str]) -> str:
        cells = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(cells).rstrip()

    out = [
        f"Machine: {machine_line(m)}",
        f"Runs: {settings['runs']} per fast command, "
        f"{settings['start_runs']} per start; interleaved; wall-clock spawn-to-exit.",
        "",
        line(headers),
        line(["-" * w for w in widths]),
    ]
    group = None
    for r, cells in zip(rows, table, strict=True):
        if group is not None and r.group != group:
            out.append("")
        group = r.group
        out.append(line(cells))
    out += ["", summary_line(rows)]
    return "\n".join(out)


def render_markdown(rows: list[Row], m: dict[str, Any], settings: dict[str, Any]) -> str:
    out = [
        f"Machine: {machine_line(m)}.",
        "",
        f"{settings['runs']} runs per fast command, {settings['start_runs']} per start, interleaved; "
        "wall-clock from spawn to exit.",
        "",
        "| Command | Runs | Median (ms) | Min (ms) | Compared with | Ratio | Goal | Result | Min ratio |",
        "|---|--:|--:|--:|---|--:|---|---|--:|",
    ]
    for r in rows:
        result = f"**{r.result}**" if r.result in ("PASS", "FAIL") else r.result
        out.append(
            f"| {r.label} | {len(r.samples)} | {r.median:.0f} | {r.minimum:.0f} | {r.vs_label or ''} | "
            f"{fmt_ratio(r.ratio, r.goal)} | {fmt_goal(r).replace('<=', '≤')} | {result} | {fmt_ratio(r.min_ratio)} |"
        )
    out += ["", summary_line(rows)]
    return "\n".join(out)


def summary_line(rows: list[Row]) -> str:
    goals = [r for r in rows if r.goal is not None]
    failed = [r for r in goals if r.result == "FAIL"]
    text = f"Goals: {len(goals) - len(failed)}/{len(goals)} PASS"
    if failed:
        text += " (FAIL: " + "; ".join(f"{r.label.replace('`', '')} {fmt_ratio(r.ratio, r.goal)}" for r in failed) + ")"
    return text


# --- main --------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Benchmark ollama-stack against the SPEC 9 floors.")
    p.add_argument("--runs", type=int, help="measured runs per command (default 10 fast / 5 starts)")
    p.add_argument("--start-runs", type=int, help="measured runs per start contender (default: --runs or 5)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="3 fast / 2 start runs and skip `docker compose up --wait` (~15 s per run on engines "
        "without start_interval)",
    )
    p.add_argument(
        "--only", default=",".join(GROUPS), help=f"comma-separated groups to run: {', '.join(GROUPS)} (default: all)"
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when any goal FAILs")
    p.add_argument(
        "--load", metavar="FILE", help="measure nothing: re-render a previous --json output (e.g. with --markdown)"
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the results as one JSON document")
    fmt.add_argument("--markdown", action="store_true", help="print a README-ready Markdown table")
    args = p.parse_args(argv)
    args.groups = [g.strip() for g in args.only.split(",") if g.strip()]
    unknown = [g for g in args.groups if g not in GROUPS]
    if unknown:
        p.error(f"unknown group(s) {', '.join(unknown)}; choose from {', '.join(GROUPS)}")
    fast_default, start_default = (3, 2) if args.quick else (10, 5)
    args.fast_runs = args.runs or fast_default
    args.start_runs = args.start_runs or args.runs or start_default
    if args.fast_runs < 1 or args.start_runs < 1:
        p.error("runs must be at least 1")
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def rows_from_json(doc: dict[str, Any]) -> list[Row]:
    samples = {d["key"]: d["samples_ms"] for d in doc["rows"]}
    for d in doc["rows"]:
        if "min_ratio" not in d and d["vs"] in samples:
            d["min_ratio"] = min(d["samples_ms"]) / min(samples[d["vs"]])
    return [
        Row(
            d["key"],
            d["command"],
            d["group"],
            d["samples_ms"],
            d["vs"],
            d["vs_command"],
            d["ratio"],
            d["goal"],
            d["result"],
            d.get("min_ratio"),
        )
        for d in doc["rows"]
    ]


def emit(args: argparse.Namespace, rows: list[Row], machine: dict[str, Any], settings: dict[str, Any]) -> int:
    if args.json:
        doc = {
            "machine": machine,
            "settings": settings,
            "rows": [r.as_dict() for r in rows],
            "summary": summary_line(rows),
        }
        print(json.dumps(doc, indent=2))
    elif args.markdown:
        print(render_markdown(rows, machine, settings))
    else:
        print(render_text(rows, machine, settings))
    if args.strict and any(r.result == "FAIL" for r in rows):
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load:
        doc = json.loads(Path(args.load).read_text())
        return emit(args, rows_from_json(doc), doc["machine"], doc["settings"])
    signal.signal(signal.SIGTERM, _terminate)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, _terminate)
    try:
        bench = Bench(args)
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    try:
        bench.preflight()
        machine = machine_info(bench.client)
        log(f"machine: {machine_line(machine)}")
        warning = busy_warning()
        if warning:
            log(warning)
        log(f"run id {bench.run_id}, homes in {bench.root}")
        if "help" in args.groups:
            bench.bench_help(args.fast_runs)
        if "status" in args.groups:
            bench.bench_status(args.fast_runs)
        if "start" in args.groups:
            bench.bench_start(args.start_runs)
    except BenchError as exc:
        log(f"error: {exc}")
        bench.interrupted = True
        return 2
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        bench.interrupted = True
        return 130
    finally:
        bench.cleanup()

    machine["loadavg_end"] = loadavg()
    rows = build_rows(bench.contenders)
    settings = {
        "runs": args.fast_runs,
        "start_runs": args.start_runs,
        "groups": args.groups,
        "quick": args.quick,
        "goal": GOAL,
        "poll_interval_ms": POLL_INTERVAL * 1000,
        "extensions": EXTENSIONS,
        "image": STUB_IMAGE,
    }
    return emit(args, rows, machine, settings)


if __name__ == "__main__":
    sys.exit(main())
