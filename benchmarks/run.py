#!/usr/bin/env python3
"""Benchmark `ollama-stack` against the floors of SPEC 9, side by side in one run.

    .venv/bin/python benchmarks/run.py [--runs N] [--start-runs N] [--only help,status,start]
                                       [--json | --markdown] [--load FILE] [--strict]

The contenders and goals are the table GROUPS below. Every command is a fresh process
timed from spawn to exit; a group's commands run interleaved (A, B, A, B, ...) after
one warm-up round, so drift on the machine hits them alike. Everything runs on the
stub image (`bash tests/images/build.sh`) and is removed by label at the end, also on
Ctrl-C, SIGTERM and SIGHUP. Progress goes to stderr, the report to stdout.
Exit status: 0 completed (--strict: 1 when a goal FAILs), 2 setup error, 130 interrupted.
"""

from __future__ import annotations

import argparse
import compileall
import json
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import report
from harness import REPO, STANDIN_IMAGE, STUB_IMAGE, Bench, BenchError, Cmd, Group, HomeSpec, log

GOAL = 1.2
EXTENSIONS = 20
START = "{cli} --home {%s.home} start --platform cpu --timeout 180"
COMPOSE = "{docker} compose --project-name {fl.project} --env-file {fl.env} -f {compose}"

GROUPS = [
    Group("help", (
        Cmd("cli_help", "`ollama-stack --help`", "{cli} --help", vs=(("floor_help", GOAL),)),
        Cmd("floor_help", "floor `--help`", "{py} {floor} --help", "floor"),
        Cmd("python", "`python -c pass` (interpreter start)", "{py} -c pass", "reference"),
    )),
    Group("status", (
        Cmd("cli_status0", "`ollama-stack status --json` (0 extensions)", "{cli} --home {s0.home} status --json",
            vs=(("floor_status0", GOAL), ("compose_ps", None))),
        Cmd("cli_status20", f"`ollama-stack status --json` ({EXTENSIONS} extensions)",
            "{cli} --home {s20.home} status --json", vs=(("floor_status20", GOAL), ("cli_status0", None))),
        Cmd("floor_status0", "floor `status` (0-extension stack)", "{py} {floor} status --project {s0.project}",
            "floor"),
        # The same work as floor_status0: their ratio shows how noisy the run was.
        Cmd("floor_status20", f"floor `status` ({EXTENSIONS}-extension stack)",
            "{py} {floor} status --project {s20.project}", "floor", vs=(("floor_status0", None),)),
        Cmd("compose_ps", "`docker compose -p P ps --format json`", "{docker} compose -p {s0.project} ps --format json",
            "reference"),
    ), homes=(HomeSpec("s0"), HomeSpec("s20", extensions=EXTENSIONS)),
        setup=(START % "s0", START % "s20"),
        teardown=("{cli} --home {s0.home} stop", "{cli} --home {s20.home} stop")),
    # Every measured start is from stopped with volumes kept; the warm-up round creates them.
    Group("start", (
        Cmd("cli_start", "`ollama-stack start` to healthy", START % "st", vs=(("floor_start", GOAL),),
            after="{cli} --home {st.home} stop", ready="st"),
        Cmd("floor_start", "start floor (`start_floor.py`: `compose up -d` + 50 ms polls)",
            "{py} {start_floor} {fl.project} {fl.env} {compose} {fl.waits}", "floor",
            after=COMPOSE + " down --timeout 10", ready="fl"),
    ), homes=(HomeSpec("st"), HomeSpec("fl", secrets=True)), start_runs=True, settle=0.5),
    # SPEC 9: `models list --json` against one stdlib `GET /api/tags`, on the Ollama API stand-in.
    Group("models", (
        Cmd("cli_models", "`ollama-stack models list --json`", "{cli} --home {m.home} models list --json",
            vs=(("floor_tags", GOAL),)),
        Cmd("floor_tags", "floor `GET /api/tags` (typer + http.client)", "{py} {floor} tags --port {m.ollama_port}",
            "floor"),
    ), homes=(HomeSpec("m", ollama_image=STANDIN_IMAGE),), setup=(START % "m",),
        teardown=("{cli} --home {m.home} stop",)),
]  # fmt: skip


def measure_group(bench: Bench, group: Group, runs: int, paths: dict[str, Any]) -> dict[str, list[float]]:
    values = paths | {spec.role: bench.home(spec) for spec in group.homes}

    def argv(template: str) -> list[str]:
        return shlex.split(template.format(**values))

    for template in group.setup:
        log(f"[{group.name}] setup (not timed): {template}")
        bench.run(argv(template))
    samples: dict[str, list[float]] = {c.key: [] for c in group.cmds}
    for n in range(runs + 1):  # round 0 is the warm-up
        last = {}
        for c in group.cmds:
            last[c.key] = bench.timed(argv(c.argv))
            if c.ready:
                bench.check_ready(values[c.ready])
            if c.after:
                bench.run(argv(c.after))
                time.sleep(group.settle)
            if n:
                samples[c.key].append(last[c.key])
        times = "  ".join(f"{key}={ms:.0f}" for key, ms in last.items())
        log(f"[{group.name}] {f'round {n}/{runs}' if n else 'warm-up (not counted)'}: {times} (ms)")
    for template in group.teardown:
        bench.run(argv(template))
    return samples


def preflight() -> dict[str, Any]:
    cli = Path(sys.executable).parent / "ollama-stack"
    if not cli.is_file():
        raise BenchError(f"No ollama-stack next to {sys.executable}: use the dev venv's python (pip install -e .).")
    docker = shutil.which("docker")
    if docker is None:
        raise BenchError("The docker CLI is not on PATH.")
    bench = Bench()
    try:
        bench.run([docker, "compose", "version"])
        bench.run([docker, "image", "inspect", STUB_IMAGE])
    except BenchError as exc:
        raise BenchError(f"{exc}\n  (needs a running engine, compose v2 and: bash tests/images/build.sh)") from None
    finally:
        bench.cleanup()
    # An editable install never caches bytecode where PYTHONDONTWRITEBYTECODE is set;
    # `pip install` compiles it, so do the same rather than time a recompile per run.
    if not compileall.compile_dir(str(REPO / "ollama_stack_cli"), quiet=1):
        raise BenchError("Could not byte-compile ollama_stack_cli.")
    here = REPO / "benchmarks"
    q = shlex.quote
    return {"cli": q(str(cli)), "py": q(sys.executable), "docker": q(docker), "floor": q(str(here / "floor.py")),
            "start_floor": q(str(here / "start_floor.py")), "compose": q(str(REPO / "docker-compose.yml"))}  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    names = [g.name for g in GROUPS]
    p = argparse.ArgumentParser(description="Benchmark ollama-stack against the SPEC 9 floors.")
    p.add_argument("--runs", type=int, help="measured rounds of every group (default 10, start 5)")
    p.add_argument("--start-runs", type=int, help="measured rounds of start (default: --runs or 5)")
    p.add_argument("--only", default=",".join(names), help=f"comma-separated groups: {', '.join(names)}")
    p.add_argument("--strict", action="store_true", help="exit 1 when a goal FAILs")
    p.add_argument("--load", metavar="FILE", help="measure nothing: re-render a previous --json output")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print the results as one JSON document")
    fmt.add_argument("--markdown", action="store_true", help="print a README-ready Markdown table")
    args = p.parse_args(argv)
    args.groups = [g.strip() for g in args.only.split(",") if g.strip()]
    if unknown := set(args.groups) - set(names):
        p.error(f"unknown group(s) {', '.join(sorted(unknown))}; choose from {', '.join(names)}")
    args.start_runs = args.start_runs or args.runs or 5
    args.runs = args.runs or 10
    if min(args.runs, args.start_runs) < 1:
        p.error("runs must be at least 1")
    return args


def _terminate(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load:
        doc = json.loads(Path(args.load).read_text())
    else:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGHUP, _terminate)
        try:
            paths = preflight()
        except BenchError as exc:
            log(f"error: {exc}")
            return 2
        machine = report.machine()
        log(f"machine: {report.machine_line(machine)}")
        load1, cpus = float(machine["loadavg"].split()[0]), machine["cpus_usable"] or 1
        if load1 > 0.5 * cpus:
            log(f"warning: 1-minute load is {load1:.2f} on {cpus} CPU(s): expect noisy medians, compare the min ratios")
        groups = [g for g in GROUPS if g.name in args.groups]
        bench, samples = Bench(), dict[str, list[float]]()
        log(f"run id {bench.run_id}, homes in {bench.root}")
        try:
            for g in groups:
                samples |= measure_group(bench, g, args.start_runs if g.start_runs else args.runs, paths)
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
        machine["loadavg_end"] = report.loadavg()
        settings = {"runs": args.runs, "start_runs": args.start_runs, "groups": args.groups, "goal": GOAL,
                    "extensions": EXTENSIONS, "image": STUB_IMAGE}  # fmt: skip
        rows = report.rows(groups, {k: [round(x, 1) for x in v] for k, v in samples.items()})
        doc = {"machine": machine, "settings": settings, "rows": rows, "summary": report.summary(rows)}
    if args.json:
        print(json.dumps(doc, indent=2))
    else:
        print(report.render(doc["rows"], doc["machine"], doc["settings"], args.markdown))
    return 1 if args.strict and any(r["result"] == "FAIL" for r in doc["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
